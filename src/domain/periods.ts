import { DomainError } from './errors.js'
import { utc, UTC, type Calendar } from './zone.js'

// Report periods and the stored buckets that tile them. Everything is in whole local days of the currency's time
// zone (zone.ts): the aggregates are kept per local day, ISO week (Monday) and calendar month, so a report's
// from/to are rounded outwards to local midnight. A period's start and end are instants (ms since the epoch: a
// local midnight, so a day is 23 or 25 hours long when the clocks change); its buckets are civil dates (zone.ts:
// the date's midnight in UTC, as the database keys them), and tile() and bucketEnd() work on civil dates only.

export type Interval = 'day' | 'week' | 'month'
export type Grain = 'd' | 'w' | 'm'

/** A civil date (a local day of the currency's zone) as the milliseconds of that date's midnight in UTC; for a
 *  period's start and end, an instant. */
export type Day = number

export interface Bucket { grain: Grain, start: Day }
/** start, end: instants (local midnights); buckets: civil dates, tiling the local days from start to end */
export interface Period { start: Day, end: Day, buckets: Bucket[] }

export const DAY_MS = 86_400_000
// What one report may ask, so no request can hold a read connection for long: a year of days (366) fits, and so
// do ten years of months; a range or a series longer than this is a 400 (docs/api.md, "Reports and exports").
/** More periods than this in one report is refused. */
export const MAX_PERIODS = 400
/** A range longer than this many days (ten years and their leap days) is refused. */
export const MAX_RANGE_DAYS = 3660

const two = (n: number) => n < 10 ? `0${n}` : `${n}`
/** The UTC date of an instant, YYYY-MM-DD. By arithmetic (civil from days, as in Howard Hinnant's date algorithms)
 *  rather than through a Date and its ISO string: a report makes thousands of bucket keys, and that was several
 *  times slower. Years outside 0000-9999 (and NaN) go through the Date, as before. */
export function isoDate (d: Day): string {
  const days = Math.floor(d / DAY_MS)
  // 0000-03-01 to 9999-12-31, where the era arithmetic below starts and the four-digit year ends
  if (!(days >= -719_468 && days <= 2_932_896)) return new Date(d).toISOString().slice(0, 10)
  const z = days + 719_468
  const era = Math.floor(z / 146_097)
  const doe = z - era * 146_097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1
  const month = mp < 10 ? mp + 3 : mp - 9
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0)
  return `${String(year).padStart(4, '0')}-${two(month)}-${two(day)}`
}
/** An instant as RFC 3339, with the zone's offset at it (Z in UTC, and wherever the offset is zero). */
export const isoTime = (d: Day, cal: Calendar = UTC): string => cal.isoTime(d)

const monthStart = (d: Day): Day => { const x = new Date(d); return utc(x.getUTCFullYear(), x.getUTCMonth(), 1) }
const addMonths = (d: Day, n: number): Day => { const x = new Date(d); return utc(x.getUTCFullYear(), x.getUTCMonth() + n, x.getUTCDate()) }
/** Monday of the ISO week holding d. */
const weekStart = (d: Day): Day => d - ((new Date(d).getUTCDay() + 6) % 7) * DAY_MS

/** The first instant PostgreSQL takes, of year 1 (Date.UTC would read a year below 100 as 19xx). */
export const FIRST_INSTANT = Date.parse('0001-01-01T00:00:00Z')

export function parseInstant (raw: string | undefined, field: string, cal: Calendar = UTC): number | undefined {
  if (raw == null || raw === '') return undefined
  // a bare date is the start of that local day; anything else must carry its offset (RFC 3339)
  const date = /^\d{4}-\d{2}-\d{2}$/.test(raw)
  // hours 00-23 and minutes 00-59, in the time and its offset, as RFC 3339 has them: Date.parse reads 24:00 as the
  // next day's midnight
  const ok = date || /^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/i.test(raw)
  const ms = ok ? Date.parse(date ? `${raw}T00:00:00Z` : toMillis(raw)) : NaN
  // Date.parse rolls an impossible day over (2026-02-30T00:00Z is 2 March): a date, alone or in a time, must exist
  const day = raw.slice(0, 10)
  const dayMs = Date.parse(`${day}T00:00:00Z`)
  // and lie in the years PostgreSQL takes (it has no year 0: 0000-01-01 was a 422 from the database)
  if (Number.isNaN(ms) || Number.isNaN(dayMs) || isoDate(dayMs) !== day || ms < FIRST_INSTANT || dayMs < FIRST_INSTANT) {
    throw new DomainError('INVALID_QUERY', `${field} must be a date (2026-01-31) or an RFC 3339 time (2026-01-31T00:00:00Z)`)
  }
  return date ? cal.instant(ms) : ms
}

/** An RFC 3339 time with its fraction cut to milliseconds, for Date.parse and new Date(): V8 reads a fraction of ten
 *  digits or more wrongly (.0810440001 as .810), and keeps no more than milliseconds anyway. */
export const toMillis = (raw: string): string => raw.replace(/(\.\d{3})\d+/, '$1')

/**
 * parseInstant(), to the microsecond the ledger keeps times in, as microseconds since 1970 (the transfers export's
 * bounds). Date.parse cuts a time's fraction to the millisecond, so a bound copied from an exported timeset
 * (12:00:00.345678) would let in, or leave out, the transfers of that millisecond on the wrong side of it. Digits
 * past the sixth round the bound up to the next microsecond, which selects exactly the transfers at or after it.
 */
export function parseInstantMicros (raw: string | undefined, field: string, cal: Calendar = UTC): bigint | undefined {
  const ms = parseInstant(raw, field, cal)
  if (ms == null) return undefined
  // parseInstant has checked the form (a fraction, if any, follows the seconds) and taken its first three digits
  const frac = /T\d{2}:\d{2}:\d{2}\.(\d+)/.exec(raw!)?.[1] ?? ''
  return BigInt(ms) * 1000n + BigInt(frac.slice(3, 6).padEnd(3, '0')) + (/[1-9]/.test(frac.slice(6)) ? 1n : 0n)
}

/** Microseconds since 1970 as an RFC 3339 time in UTC with six decimals, for PostgreSQL's timestamptz. */
export function microsIso (us: bigint): string {
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n)
  return new Date(Number(ms)).toISOString().replace(/Z$/, `${String(us - ms * 1000n).padStart(3, '0')}Z`)
}

/** A range must hold some time: `from` before `to` (the reports compare the local days they round to, the
 *  transfers export the instants as given, to the microsecond). */
export function checkOrder<T extends number | bigint> (from: T, to: T): void {
  if (from >= to) throw new DomainError('INVALID_QUERY', 'from must be before to')
}

/**
 * The report's range (instants), rounded outwards to whole local days of the calendar. Defaults: `to` is the
 * start of next month, `from` twelve months before it.
 */
export function reportRange (from: string | undefined, to: string | undefined, now = Date.now(), cal: Calendar = UTC): { from: Day, to: Day } {
  const t = parseInstant(to, 'to', cal)
  const f = parseInstant(from, 'from', cal)
  // in civil dates: the local day each falls in
  const end = t != null ? (cal.instant(cal.civil(t)) === t ? cal.civil(t) : cal.civil(t) + DAY_MS) : addMonths(monthStart(cal.civil(now)), 1)
  const start = f != null ? cal.civil(f) : addMonths(monthStart(end - DAY_MS), -11)
  checkOrder(start, end)
  if (start < Date.UTC(1970, 0, 1) || end > Date.UTC(9999, 0, 1)) throw new DomainError('INVALID_QUERY', 'from and to must lie between 1970 and 9999')
  const days = (end - start) / DAY_MS
  if (days > MAX_RANGE_DAYS) {
    throw new DomainError('INVALID_QUERY', `the range spans ${days} days; one report covers at most ${MAX_RANGE_DAYS} (ten years): ask for a shorter range`)
  }
  return { from: cal.instant(start), to: cal.instant(end) }
}

/** The calendar periods of an interval that meet [from, to) (instants at local midnights), each clipped to it. */
export function splitPeriods (from: Day, to: Day, interval: Interval, cal: Calendar = UTC): Period[] {
  // A local date the zone skipped (Samoa went from 29 to 31 December 2011) begins at the same instant as the next
  // one: it lasts no time and holds no transfer, so it is no period. Left in, it was a period ending where it
  // started, sharing its start with the next, and every figure divided by its length came out NaN.
  return splitDays(cal.civil(from), cal.civil(to), interval)
    .map(p => ({ start: cal.instant(p.start), end: cal.instant(p.end), buckets: p.buckets }))
    .filter(p => p.start < p.end)
}

/** The buckets that tile [from, to) (instants at local midnights). */
export function tileRange (from: Day, to: Day, cal: Calendar = UTC): Bucket[] {
  return tile(cal.civil(from), cal.civil(to))
}

/** The civil dates a period covers: its first day, and the day after its last. */
export function periodDays (p: Period): { start: Day, end: Day } {
  return { start: p.buckets[0].start, end: bucketEnd(p.buckets[p.buckets.length - 1]) }
}

/** splitPeriods on civil dates. */
function splitDays (from: Day, to: Day, interval: Interval): Period[] {
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
 * Tiles the civil dates [start, end) with as few stored buckets as a greedy walk finds: a whole month where one fits, else a
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

/** The civil date after a bucket's last day. */
export function bucketEnd (b: Bucket): Day {
  return b.grain === 'd' ? b.start + DAY_MS : b.grain === 'w' ? b.start + 7 * DAY_MS : addMonths(b.start, 1)
}
