import { DomainError } from './errors.js'

// Report periods and the stored buckets that tile them. Everything is in whole UTC days: the aggregates are kept
// per UTC day, ISO week (Monday) and calendar month, so a report's from/to are rounded outwards to midnight UTC.

export type Interval = 'day' | 'week' | 'month'
export type Grain = 'd' | 'w' | 'm'

/** A UTC day as milliseconds since the epoch (always a midnight). */
export type Day = number

export interface Bucket { grain: Grain, start: Day }
export interface Period { start: Day, end: Day, buckets: Bucket[] }

export const DAY_MS = 86_400_000
// What one report may ask, so no request can hold a read connection for long: a year of days (366) fits, and so
// do ten years of months; a range or a series longer than this is a 400 (docs/api.md, "Reports and exports").
/** More periods than this in one report is refused. */
export const MAX_PERIODS = 400
/** A range longer than this many days (ten years and their leap days) is refused. */
export const MAX_RANGE_DAYS = 3660

export const isoDate = (d: Day): string => new Date(d).toISOString().slice(0, 10)
export const isoTime = (d: Day): string => new Date(d).toISOString()

const floorDay = (ms: number): Day => Math.floor(ms / DAY_MS) * DAY_MS
const ceilDay = (ms: number): Day => Math.ceil(ms / DAY_MS) * DAY_MS
const monthStart = (d: Day): Day => { const x = new Date(d); return Date.UTC(x.getUTCFullYear(), x.getUTCMonth(), 1) }
const addMonths = (d: Day, n: number): Day => { const x = new Date(d); return Date.UTC(x.getUTCFullYear(), x.getUTCMonth() + n, x.getUTCDate()) }
/** Monday of the ISO week holding d. */
const weekStart = (d: Day): Day => d - ((new Date(d).getUTCDay() + 6) % 7) * DAY_MS

export function parseInstant (raw: string | undefined, field: string): number | undefined {
  if (raw == null || raw === '') return undefined
  // a bare date is midnight UTC; anything else must carry its offset (RFC 3339)
  const ok = /^\d{4}-\d{2}-\d{2}$/.test(raw) || /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(raw)
  const ms = ok ? Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(raw) ? `${raw}T00:00:00Z` : raw) : NaN
  if (Number.isNaN(ms)) {
    throw new DomainError('INVALID_QUERY', `${field} must be a date (2026-01-31) or an RFC 3339 time (2026-01-31T00:00:00Z)`)
  }
  return ms
}

/**
 * The report's range, rounded outwards to whole UTC days. Defaults: `to` is the start of next month, `from`
 * twelve months before it.
 */
export function reportRange (from: string | undefined, to: string | undefined, now = Date.now()): { from: Day, to: Day } {
  const t = parseInstant(to, 'to')
  const f = parseInstant(from, 'from')
  const end = t != null ? ceilDay(t) : addMonths(monthStart(floorDay(now)), 1)
  const start = f != null ? floorDay(f) : addMonths(monthStart(end - DAY_MS), -11)
  if (start >= end) throw new DomainError('INVALID_QUERY', 'from must be before to')
  if (start < Date.UTC(1970, 0, 1) || end > Date.UTC(9999, 0, 1)) throw new DomainError('INVALID_QUERY', 'from and to must lie between 1970 and 9999')
  const days = (end - start) / DAY_MS
  if (days > MAX_RANGE_DAYS) {
    throw new DomainError('INVALID_QUERY', `the range spans ${days} days; one report covers at most ${MAX_RANGE_DAYS} (ten years): ask for a shorter range`)
  }
  return { from: start, to: end }
}

/** The calendar periods of an interval that meet [from, to), each clipped to it. */
export function splitPeriods (from: Day, to: Day, interval: Interval): Period[] {
  const next = interval === 'day' ? (d: Day) => d + DAY_MS
    : interval === 'week' ? (d: Day) => weekStart(d) + 7 * DAY_MS
      : (d: Day) => addMonths(monthStart(d), 1)
  const out: Period[] = []
  for (let s = from; s < to;) {
    const e = Math.min(next(s), to)
    if (out.length === MAX_PERIODS) {
      throw new DomainError('INVALID_QUERY', `that range has more than ${MAX_PERIODS} ${interval}s; one report has at most ${MAX_PERIODS} periods: ask for a shorter range or a longer interval`)
    }
    out.push({ start: s, end: e, buckets: tile(s, e) })
    s = e
  }
  return out
}

/**
 * Tiles [start, end) with as few stored buckets as a greedy walk finds: a whole month where one fits, else a
 * whole ISO week (unless it would straddle the start of a month that could be taken whole), else a day.
 */
export function tile (start: Day, end: Day): Bucket[] {
  const out: Bucket[] = []
  for (let p = start; p < end;) {
    if (monthStart(p) === p && addMonths(p, 1) <= end) {
      out.push({ grain: 'm', start: p }); p = addMonths(p, 1); continue
    }
    const nextMonth = addMonths(monthStart(p), 1)
    if (weekStart(p) === p && p + 7 * DAY_MS <= end &&
        (p + 7 * DAY_MS <= nextMonth || addMonths(nextMonth, 1) > end)) {
      out.push({ grain: 'w', start: p }); p += 7 * DAY_MS; continue
    }
    out.push({ grain: 'd', start: p }); p += DAY_MS
  }
  return out
}

/** When a bucket ends (exclusive). */
export function bucketEnd (b: Bucket): Day {
  return b.grain === 'd' ? b.start + DAY_MS : b.grain === 'w' ? b.start + 7 * DAY_MS : addMonths(b.start, 1)
}
