// A statistic as the disclosure rules need it: the value, how many distinct participant accounts it describes,
// the largest single account's part of it, and whether any of those accounts is a business.
export interface Stat {
  /** decimal string */
  value: string
  n: number
  /** decimal string: the largest single contribution (same unit as value) */
  max: string
  biz: boolean
}

const SCALE = 6
const TEN6 = 10n ** BigInt(SCALE)

/** A decimal string with at most 6 decimals as an integer count of millionths (exact, no float). */
export function toMicros (s: string): bigint {
  const neg = s.startsWith('-')
  const [int, frac = ''] = (neg ? s.slice(1) : s).split('.')
  if (frac.length > SCALE && /[1-9]/.test(frac.slice(SCALE))) throw new Error(`more than ${SCALE} decimals: ${s}`)
  const v = BigInt(int) * TEN6 + BigInt((frac.slice(0, SCALE)).padEnd(SCALE, '0'))
  return neg ? -v : v
}

export function fromMicros (v: bigint): string {
  const neg = v < 0n
  const a = neg ? -v : v
  return `${neg ? '-' : ''}${a / TEN6}.${(a % TEN6).toString().padStart(SCALE, '0')}`
}

/** The larger of two amounts in millionths: an account's own part of a two-sided figure (paid or received). */
export const larger = (a: bigint, b: bigint): bigint => a > b ? a : b
