import t from 'tap'
import { calendarOf } from '../../src/domain/zone.js'
import { bucketEnd, DAY_MS, isoDate, parseInstant, reportRange, splitPeriods, tile, type Bucket } from '../../src/domain/periods.js'

const d = (s: string) => Date.parse(`${s}T00:00:00Z`)
const show = (bs: Bucket[]) => bs.map(b => `${b.grain}:${new Date(b.start).toISOString().slice(0, 10)}`)

t.test('a range is rounded outwards to whole UTC days', async (t) => {
  t.same(reportRange('2026-01-01T10:00:00Z', '2026-02-01T00:00:01Z'), { from: d('2026-01-01'), to: d('2026-02-02') })
  t.same(reportRange('2026-01-01', '2026-02-01'), { from: d('2026-01-01'), to: d('2026-02-01') })
  t.same(reportRange(undefined, undefined, Date.parse('2026-11-27T03:00:00Z')), { from: d('2025-12-01'), to: d('2026-12-01') },
    'default: the twelve months up to the start of next month')
  t.throws(() => reportRange('2026-02-01', '2026-01-01'), { code: 'INVALID_QUERY' })
  t.throws(() => reportRange('last tuesday', undefined), { code: 'INVALID_QUERY' })
  t.throws(() => reportRange('2026-01-01T00:00:00', undefined), { code: 'INVALID_QUERY' }, 'a time without an offset is ambiguous')
  // Date.parse would roll these over to 2 and 3 March
  t.throws(() => reportRange('2026-02-30T00:00:00Z', undefined), { code: 'INVALID_QUERY' }, 'a time on a day that does not exist')
  t.throws(() => reportRange(undefined, '2026-02-31T10:00:00+01:00'), { code: 'INVALID_QUERY' }, 'with an offset too')
  t.same(reportRange('2024-02-29T12:00:00Z', '2024-03-01T00:00:00Z'), { from: Date.UTC(2024, 1, 29), to: Date.UTC(2024, 2, 1) }, 'a leap day is a day')
  // PostgreSQL has no year 0: refused here, not by the database
  t.throws(() => parseInstant('0000-01-01', 'from'), { code: 'INVALID_QUERY' }, 'year 0')
  t.throws(() => parseInstant('0001-01-01T00:30:00+01:00', 'from'), { code: 'INVALID_QUERY' }, 'an instant of year 0 written in year 1 with an offset')
  t.equal(parseInstant('0001-01-01', 'from'), Date.parse('0001-01-01T00:00:00Z'), 'year 1 is the first')
  // a local day of a year below 100 in a zone: not read as 19xx (Date.UTC's reading of such years)
  const early = parseInstant('0050-06-01', 'from', calendarOf('Europe/London'))!
  t.ok(Math.abs(early - Date.parse('0050-06-01T00:00:00Z')) < 3_600_000, `0050-06-01 in London begins near its UTC midnight (${new Date(early).toISOString()})`)
})

t.test('periods are calendar days, ISO weeks or months, clipped to the range', async (t) => {
  const weeks = splitPeriods(d('2026-01-01'), d('2026-01-20'), 'week')
  t.same(weeks.map(p => [p.start, p.end]), [[d('2026-01-01'), d('2026-01-05')], [d('2026-01-05'), d('2026-01-12')],
    [d('2026-01-12'), d('2026-01-19')], [d('2026-01-19'), d('2026-01-20')]], 'Thursday to Monday, then whole weeks, then a clipped Monday')
  t.same(weeks.map(p => show(p.buckets)), [['d:2026-01-01', 'd:2026-01-02', 'd:2026-01-03', 'd:2026-01-04'], ['w:2026-01-05'], ['w:2026-01-12'], ['d:2026-01-19']])
  const months = splitPeriods(d('2026-01-15'), d('2026-03-01'), 'month')
  t.same(months.map(p => p.buckets.length), [11, 1], 'a clipped month: 4 days, a week, 6 days; a whole one is one bucket')
  t.throws(() => splitPeriods(d('2020-01-01'), d('2026-01-01'), 'day'), { code: 'INVALID_QUERY' }, 'too many periods')
})

t.test('tiling takes whole months, then whole weeks that do not straddle a month that could be whole', async (t) => {
  t.same(show(tile(d('2026-01-01'), d('2026-04-01'))), ['m:2026-01-01', 'm:2026-02-01', 'm:2026-03-01'])
  // Monday 26 January: a week would run into February, which is whole in the range, so days until February
  t.same(show(tile(d('2026-01-26'), d('2026-03-01'))), ['d:2026-01-26', 'd:2026-01-27', 'd:2026-01-28', 'd:2026-01-29',
    'd:2026-01-30', 'd:2026-01-31', 'm:2026-02-01'])
  // an ISO week across a month end, alone in the range: one week bucket
  t.same(show(tile(d('2026-01-26'), d('2026-02-02'))), ['w:2026-01-26'])
  // every tiling covers the range exactly, without gaps or overlaps
  for (let s = d('2025-12-20'); s < d('2026-02-10'); s += 86_400_000 * 3) {
    for (let e = s + 86_400_000; e < d('2026-04-10'); e += 86_400_000 * 5) {
      let at = s
      for (const b of tile(s, e)) { if (b.start !== at) t.fail('gap or overlap'); at = bucketEnd(b) }
      if (at !== e) t.fail(`tiling of ${s}..${e} ends at ${at}`)
    }
  }
  t.pass('tilings are exact')
})

t.test('isoDate gives the UTC date as the Date object does, at every instant of a day', async (t) => {
  const viaDate = (d: number) => new Date(d).toISOString().slice(0, 10)
  let checked = 0
  const agree = (d: number) => { checked++; if (isoDate(d) !== viaDate(d)) t.fail(`${d}: ${isoDate(d)} against ${viaDate(d)}`) }
  // every day from 1960 to 2100, at its first and last millisecond and at noon (before 1970 the instants are
  // negative, and the day is the floor)
  for (let d = Date.UTC(1960, 0, 1); d < Date.UTC(2101, 0, 1); d += DAY_MS) { agree(d); agree(d + DAY_MS - 1); agree(d + DAY_MS / 2) }
  // across the four-digit years, leap centuries included, and at the ends of the arithmetic's range
  for (let d = Date.UTC(0, 2, 1) - 400 * DAY_MS; d < Date.UTC(9999, 11, 31) + 400 * DAY_MS; d += 997 * DAY_MS + 12_345) agree(d)
  for (const [y, m, day] of [[0, 2, 1], [0, 1, 29], [1600, 1, 29], [1900, 1, 28], [2000, 1, 29], [9999, 11, 31], [10000, 0, 1]]) {
    const d = new Date(0).setUTCFullYear(y, m, day)
    agree(d); agree(d - 1); agree(d + DAY_MS - 1)
  }
  t.ok(checked > 150_000, `${checked} instants agree`)
  t.throws(() => isoDate(NaN), RangeError, 'not a time: thrown, as the Date throws')
})
