import { Decimal } from 'decimal.js'
import { DomainError } from './errors.js'

// Money is exact: decimal strings in JSON, decimal.js in code, NUMERIC in PostgreSQL. Never a JS number.
// Precision well above NUMERIC(24,6) so no intermediate result is ever rounded by decimal.js itself.
const D = Decimal.clone({ precision: 60, rounding: Decimal.ROUND_HALF_UP })
export { D as Money }
export type Money = Decimal

/** Digits an amount may have in all (integer and fraction), so every amount fits NUMERIC(24,6) with room to sum. */
export const MAX_AMOUNT_DIGITS = 15

// Plain decimal notation only: no sign, exponent, spaces, leading zeros or a bare point. "1e3" and "+5" are refused.
const AMOUNT_RE = /^(0|[1-9][0-9]*)(\.[0-9]+)?$/

/**
 * Parses a client-supplied amount for a currency with `decimals` minor digits. Refuses (never rounds) more
 * decimals than the currency has, zero, negatives, exponents and anything that is not a decimal string.
 */
export function parseAmount (raw: unknown, decimals: number, field = 'amount'): Money {
  const fail = (why: string): never => {
    throw new DomainError('INVALID_AMOUNT', `${field} ${why}`, [{ pointer: `/${field}`, detail: why }])
  }
  if (typeof raw !== 'string') fail('must be a decimal string such as "12.60", not a JSON ' + jsonType(raw))
  const s = raw as string
  if (!AMOUNT_RE.test(s)) fail(`must be a positive decimal string such as "12.60"; got ${JSON.stringify(s.slice(0, 40))}`)
  const [int, frac = ''] = s.split('.')
  if (frac.length > decimals) fail(`has ${frac.length} decimal places; this currency has ${decimals}`)
  if (int.length + frac.length > MAX_AMOUNT_DIGITS) fail(`has more than ${MAX_AMOUNT_DIGITS} digits`)
  const value = new D(s)
  if (value.isZero()) fail('must be greater than zero')
  return value
}

/** Parses a limit (floor or ceiling): like an amount, but zero and negatives are allowed. */
export function parseLimit (raw: string, decimals: number, field: string): Money {
  const neg = raw.startsWith('-')
  const body = neg ? raw.slice(1) : raw
  if (body === '0' || /^0\.0+$/.test(body)) return new D(0)
  const v = parseAmount(body, decimals, field)
  return neg ? v.neg() : v
}

/** A fraction such as a fee rate: "0.02" is 2%. Up to 6 decimals, from 0 up to (not including) 1. */
export function parseRate (raw: string, field: string): Money {
  if (!/^0(\.[0-9]{1,6})?$/.test(raw)) {
    throw new DomainError('VALIDATION_FAILED', `${field} must be a fraction from "0" to "0.999999" (e.g. "0.02" for 2%)`,
      [{ pointer: `/${field.replaceAll('.', '/')}`, detail: 'must be a fraction such as "0.02"' }])
  }
  return new D(raw)
}

/** The receiver's fee: amount × rate, rounded half-up to the currency's minor unit (2% of 12.60 is 0.25). */
export function feeFor (amount: Money, rate: Money, decimals: number): Money {
  return amount.times(rate).toDecimalPlaces(decimals, D.ROUND_HALF_UP)
}

/** Half-up to dp decimals, as text; never "-0.00": a value that rounds to zero is zero, whatever its sign. */
export function roundedText (value: Money | string, dp: number): string {
  const r = new D(value).toDecimalPlaces(dp, D.ROUND_HALF_UP)
  return (r.isZero() ? r.abs() : r).toFixed(dp)
}

/** Formats to exactly the currency's decimals: "12.60", never "12.6" or a float. */
export function formatMoney (value: Money | string, decimals: number): string {
  return new D(value).toFixed(decimals)
}

function jsonType (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}
