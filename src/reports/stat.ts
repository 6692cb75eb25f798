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

/**
 * SQL select-list items for one statistic over rows with columns `part` (a participant's account) and `biz`.
 * value: the per-row amount summed into the cell; contrib: the row's account is described by the cell;
 * own: the row's account's own part of the value (for the dominance rule).
 */
export function statSql (name: string, value: string, contrib: string, own: string): string {
  return `sum(${value})::text AS ${name}_v,
    count(*) FILTER (WHERE part AND (${contrib})) AS ${name}_n,
    COALESCE(max(${own}) FILTER (WHERE part AND (${contrib})), 0)::text AS ${name}_max,
    COALESCE(bool_or(biz) FILTER (WHERE part AND (${contrib})), false) AS ${name}_biz`
}

export function readStat (row: Record<string, unknown>, name: string): Stat {
  return {
    value: String(row[`${name}_v`] ?? '0'),
    n: Number(row[`${name}_n`] ?? 0),
    max: String(row[`${name}_max`] ?? '0'),
    biz: row[`${name}_biz`] === true,
  }
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
