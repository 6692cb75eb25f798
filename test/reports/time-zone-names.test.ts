import t from 'tap'
import { calendarOf, knownToIntl } from '../../src/domain/zone.js'
import { buildTestApp, issue, scenario } from '../helper.js'

// A currency's zone is read by two calendars: PostgreSQL's (its buckets, circ_bucket_start/end) and the service's
// (its periods, src/domain/zone.ts). PostgreSQL reads a name that is also a time zone abbreviation as that
// abbreviation, a fixed offset: "CET" is always +01:00 there, while the IANA zone CET (and JavaScript) keeps
// summer time, so a CET currency's summer days were cut an hour apart by the two and its reports were wrong.
t.test('every zone name the service accepts has the same local days in PostgreSQL and in the service', async (t) => {
  const ctx = await buildTestApp(t)
  const create = async (code: string, timeZone: string) => await ctx.call('POST', '/v1/currencies', {
    token: ctx.issuerToken, body: { code, name: `${code} Pound`, timeZone },
  })
  for (const [i, zone] of ['CET', 'EET', 'MET', 'WET', 'cet'].entries()) {
    const r = await create(`ABB${i}`, zone)
    t.equal(r.status, 422, `${zone}: an abbreviation to PostgreSQL, refused`)
    t.equal(r.body.code, 'VALIDATION_FAILED')
  }
  t.equal((await create('PAR', 'Europe/Paris')).status, 201, 'the place name is the way to ask for it')
  t.equal((await create('UTCC', 'UTC')).status, 201, 'UTC means the same either way')
  t.equal((await ctx.call('PATCH', '/v1/currencies/PAR', { token: ctx.issuerToken, body: { timeZone: 'CET' } })).status, 422)

  // every other name both know: the same day starts in 2026 and 2027
  const names = (await ctx.app.pool.query<{ name: string }>(`
    SELECT name FROM pg_timezone_names n
     WHERE NOT EXISTS (SELECT 1 FROM pg_timezone_abbrevs a WHERE lower(a.abbrev) = lower(n.name)) ORDER BY name`)).rows.map(r => r.name).filter(knownToIntl)
  const wrong: string[] = []
  for (const zone of names) {
    const cal = calendarOf(zone)
    const starts = (await ctx.app.pool.query<{ d: string, ms: string }>(`
      SELECT d::date::text AS d, (extract(epoch FROM circ_bucket_end((d - interval '1 day')::date, 'd', $1)) * 1000)::bigint::text AS ms
        FROM generate_series('2026-01-01'::date, '2027-12-31'::date, interval '1 day') d`, [zone])).rows
    const off = starts.find(r => cal.instant(Date.parse(`${r.d}T00:00:00Z`)) !== Number(r.ms))
    if (off != null) wrong.push(`${zone} from ${off.d}`)
  }
  t.ok(names.length > 500, `${names.length} zones`)
  t.same(wrong, [], 'no zone cuts a day differently')
})

// Setting the zone a currency already has is no change (200, audited), and must not throw its kept reports away:
// an issuer could otherwise replay it to make every report of a large currency be computed again.
t.test('PATCH with the zone the currency has keeps its cached reports', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '50.00')
  const r = await ctx.call('GET', `/v1/currencies/${s.code}/reports/circulation?from=2026-01-01&to=2027-01-01&interval=month`, { token: ctx.issuerToken })
  t.equal(r.status, 200)
  const kept = async () => Number((await ctx.app.pool.query('SELECT count(*) AS n FROM circ_composite')).rows[0].n)
  const before = await kept()
  t.ok(before > 0, 'the report kept its months')
  const same = await ctx.call('PATCH', `/v1/currencies/${s.code}`, { token: ctx.issuerToken, body: { timeZone: 'UTC' } })
  t.equal(same.status, 200)
  t.equal(await kept(), before, 'still kept')
})

// A currency with transfers can no longer change its zone, so refusing (or keeping the same zone) needs no lock.
// The request used to lock every account of the currency first: one PATCH, replayed by an issuer, held up the
// payments of a whole large currency, and a posting under way held up the PATCH. Here a posting's lock is held on
// one account while both requests run: they must answer without waiting for it.
t.test('PATCH of a currency with transfers waits for no posting', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '50.00')
  const holder = await ctx.app.pool.connect()
  try {
    await holder.query('BEGIN')
    await holder.query('SELECT id FROM account WHERE id = $1 FOR NO KEY UPDATE', [s.member.accountId])
    const pid = Number((await holder.query('SELECT pg_backend_pid() AS pid')).rows[0].pid)
    // a request that waits on the posting's lock shows up in pg_locks as blocked by the holder
    const blocked = async (): Promise<boolean> => (await ctx.app.pool.query(
      'SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))', [pid])).rows.length > 0
    for (const [zone, status] of [['Europe/London', 409], ['UTC', 200]] as const) {
      const answer = ctx.call('PATCH', `/v1/currencies/${s.code}`, { token: ctx.issuerToken, body: { timeZone: zone } })
      const state = { settled: false }
      void answer.then(() => { state.settled = true }, () => { state.settled = true })
      while (!state.settled) {
        if (await blocked()) { t.fail(`${zone}: the PATCH waits for the posting's lock`); await holder.query('ROLLBACK'); break }
      }
      t.equal((await answer).status, status, `${zone}: answered while the posting holds its lock`)
    }
  } finally {
    await holder.query('ROLLBACK').catch(() => {})
    holder.release()
  }
})
