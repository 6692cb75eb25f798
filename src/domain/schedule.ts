import { DomainError } from './errors.js'
import type { Calendar } from './zone.js'

// The due dates of a standing order, as calendar dates ("YYYY-MM-DD") of its currency's time zone: an order due on
// the 1st is paid on the 1st there (the scheduler, src/scheduler/standing-orders.ts, looks at the local date of
// each order's currency). Pure code: the scheduler and the service use it, tests check it alone.
//
// week: `day` is the ISO weekday (1 Monday .. 7 Sunday); the first due date is the first such weekday on or after
// the start. month: `day` is the day of the month; in a month without it (day 31 in April, 29-31 in February) the
// order is due on the month's last day.

export interface Schedule { every: 'week' | 'month', day: number }

const DAY_MS = 86_400_000
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/

export const toDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10)
export const dateMs = (d: string): number => Date.parse(`${d}T00:00:00Z`)
export const addDays = (d: string, n: number): string => toDate(dateMs(d) + n * DAY_MS)
/** The calendar date of an instant: in UTC, or the local date in a currency's time zone (as its reports cut days). */
export const dateOf = (t: Date, cal?: Calendar): string => cal == null ? t.toISOString().slice(0, 10) : toDate(cal.civil(t.getTime()))

/** A client's calendar date, refused unless it is a real date between 2000 and 2999. */
export function parseDate (raw: string, field: string): string {
  const m = DATE_RE.exec(raw)
  const ok = m != null && toDate(Date.parse(`${raw}T00:00:00Z`) || 0) === raw && Number(m[1]) >= 2000 && Number(m[1]) <= 2999
  if (!ok) throw new DomainError('VALIDATION_FAILED', `${field} must be a date such as 2026-01-31`, [{ pointer: `/${field}`, detail: 'not a date (YYYY-MM-DD, years 2000-2999)' }])
  return raw
}

export function checkSchedule (s: Schedule): void {
  const max = s.every === 'week' ? 7 : 31
  if (!Number.isInteger(s.day) || s.day < 1 || s.day > max) {
    throw new DomainError('VALIDATION_FAILED', `schedule.day must be 1-${max} for every ${s.every}`,
      [{ pointer: '/schedule/day', detail: s.every === 'week' ? 'ISO weekday: 1 Monday .. 7 Sunday' : 'day of the month, 1-31' }])
  }
}

const lastDay = (y: number, m: number) => new Date(Date.UTC(y, m + 1, 0)).getUTCDate()
/** The due date in month m (0-based) of year y. */
const inMonth = (y: number, m: number, day: number) => toDate(Date.UTC(y, m, Math.min(day, lastDay(y, m))))

/** The first due date on or after `from`. */
export function firstDue (s: Schedule, from: string): string {
  const ms = dateMs(from)
  const d = new Date(ms)
  if (s.every === 'week') {
    const iso = ((d.getUTCDay() + 6) % 7) + 1
    return toDate(ms + ((s.day - iso + 7) % 7) * DAY_MS)
  }
  const y = d.getUTCFullYear()
  const m = d.getUTCMonth()
  const here = inMonth(y, m, s.day)
  return here >= from ? here : inMonth(y, m + 1, s.day)
}

/** The due date after `due` (itself a due date of the schedule). */
export function nextDue (s: Schedule, due: string): string {
  if (s.every === 'week') return addDays(due, 7)
  const d = new Date(dateMs(due))
  return inMonth(d.getUTCFullYear(), d.getUTCMonth() + 1, s.day)
}

/** The due dates from `next` (a due date) up to and including `through`, and never after `endsOn`; with the due
 *  date after them (null when the order has no more). At most `max` dates (a catch-up is done in portions). */
export function dueDates (s: Schedule, next: string, through: string, endsOn: string | null, max = 1000): { dates: string[], next: string | null } {
  const dates: string[] = []
  let d: string | null = next
  while (d != null && d <= through && dates.length < max) {
    if (endsOn != null && d > endsOn) { d = null; break }
    dates.push(d)
    d = nextDue(s, d)
  }
  if (d != null && endsOn != null && d > endsOn) d = null
  return { dates, next: d }
}
