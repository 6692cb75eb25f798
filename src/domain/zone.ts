import { DomainError } from './errors.js'

/** Date.UTC for every year: Date.UTC reads a year from 0 to 99 as 1900 to 1999. */
export function utc (year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number {
  const d = new Date(0)
  d.setUTCFullYear(year, month, day)
  d.setUTCHours(hour, minute, second, 0)
  return d.getTime()
}

// A currency's calendar: its IANA time zone, and the local days (as civil dates) its reports, buckets and holding
// days are cut at. A civil date is kept as the milliseconds of that date's midnight in UTC, so calendar arithmetic
// (next day, ISO week, month) works on it as Date.UTC does, whatever the zone; `instant` turns it into the moment
// the local day begins, `civil` an instant into its local day.
//
// Where a local midnight does not exist or happens twice, the day starts where PostgreSQL puts it
// (`date::timestamp AT TIME ZONE zone`: in a gap, at the offset before the change; in a repeat, at the second
// one), so that the buckets circ_drain() fills (circ_bucket_start/end, migration *_currency_time_zone) and the
// periods cut here agree to the microsecond. Europe/London changes at 01:00 UTC, never at midnight.

const DAY_MS = 86_400_000

export class Calendar {
  private readonly fmt: Intl.DateTimeFormat | null
  /** UTC day number -> the zone's offset (ms) all through it, or null when it changes during that day */
  private readonly offsets = new Map<number, number | null>()
  private readonly starts = new Map<number, number>()

  constructor (readonly zone: string) {
    this.fmt = zone === 'UTC' ? null
      : new Intl.DateTimeFormat('en-US', {
        timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
      })
  }

  get utc (): boolean { return this.fmt == null }

  /** The zone's offset from UTC at an instant, in ms (local = UTC + offset). */
  offset (ms: number): number {
    if (this.fmt == null) return 0
    const day = Math.floor(ms / DAY_MS)
    let o = this.offsets.get(day)
    if (o === undefined) {
      const a = this.exactOffset(day * DAY_MS)
      const b = this.exactOffset(day * DAY_MS + DAY_MS - 1000)
      o = a === b ? a : null
      this.offsets.set(day, o)
    }
    return o ?? this.exactOffset(ms)
  }

  private exactOffset (ms: number): number {
    const s = Math.floor(ms / 1000) * 1000
    const p: Record<string, number> = {}
    for (const x of this.fmt!.formatToParts(s)) if (x.type !== 'literal') p[x.type] = Number(x.value)
    return utc(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - s
  }

  /** The instant the local day `civil` begins. */
  instant (civil: number): number {
    if (this.fmt == null) return civil
    let t = this.starts.get(civil)
    if (t === undefined) {
      // the local wall time civil 00:00 read with the offsets around it, as PostgreSQL resolves it: a time that
      // exists twice is taken at the later offset; one that does not exist, at the offset before the change
      const before = civil - this.offset(civil - DAY_MS)
      const after = civil - this.offset(civil + DAY_MS)
      const fits = (x: number) => x + this.offset(x) === civil
      t = fits(after) ? (fits(before) ? Math.max(before, after) : after) : before
      this.starts.set(civil, t)
    }
    return t
  }

  /** The local day (civil) an instant falls in. */
  civil (ms: number): number {
    if (this.fmt == null) return Math.floor(ms / DAY_MS) * DAY_MS
    const c = Math.floor((ms + this.offset(ms)) / DAY_MS) * DAY_MS
    // a repeated midnight: the hour before the day's (second) start still belongs to the day before
    return ms < this.instant(c) ? c - DAY_MS : c
  }

  /** An instant as RFC 3339 with the zone's offset there (Z where the offset is zero), to the millisecond. */
  isoTime (ms: number): string {
    const o = this.offset(ms)
    if (o === 0) return new Date(ms).toISOString()
    const local = new Date(ms + o).toISOString().slice(0, -1)
    const a = Math.abs(o) / 60_000
    return `${local}${o < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`
  }
}

const calendars = new Map<string, Calendar>()

/** The calendar of a zone (one per zone, so its caches are shared). */
export function calendarOf (zone: string): Calendar {
  let c = calendars.get(zone)
  if (c == null) { c = new Calendar(zone); calendars.set(zone, c) }
  return c
}

export const UTC = calendarOf('UTC')

/** Whether this JavaScript runtime knows the zone (PostgreSQL must know it too, under exactly this name: the
 *  currency service asks pg_timezone_names). */
export function knownToIntl (zone: string): boolean {
  try {
    // eslint-disable-next-line no-new
    new Intl.DateTimeFormat('en-US', { timeZone: zone })
    return true
  } catch {
    return false
  }
}

export function badZone (zone: string, why?: string): DomainError {
  const detail = why == null
    ? `${JSON.stringify(zone)} is not an IANA time zone name this service knows (e.g. "Europe/London", "UTC")`
    : `${JSON.stringify(zone)} is not accepted: ${why}`
  return new DomainError('VALIDATION_FAILED', `timeZone ${detail}`, [{ pointer: '/timeZone', detail }])
}

/** A report's snapshot found its currency in another zone than the one its periods were cut in: the zone was
 *  changed (PATCH, by any instance) after the report read it. The report is cut again in `zone`. */
export class ZoneChanged extends Error {
  constructor (readonly zone: string) {
    super(`the currency's time zone is now ${zone}`)
    this.name = 'ZoneChanged'
  }
}
