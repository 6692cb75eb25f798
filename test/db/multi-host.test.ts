import pg from 'pg'
import t from 'tap'
import { connectClient, HostResolver, parseDatabaseUrl } from '../../src/db/hosts.js'
import { migrate } from '../../src/db/migrate.js'
import { freePort } from '../../support/ports.js'
import { buildTestApp, issue, scenario } from '../helper.js'
import { assertInvariants, invariantViolations } from '../../support/invariants.js'
import { startCluster } from '../../support/pg-cluster.js'

// A DATABASE_URL with several hosts (src/db/hosts.ts): parsing, then a real primary and a real standby made by
// pg_basebackup, the standby listed first, a dead port in the list; the service must write to the primary, and
// after the primary is killed and the standby promoted, follow it without a restart.

t.test('multi-host URLs are read as libpq reads them', async (t) => {
  const p = parseDatabaseUrl('postgresql://u:s%40cret@db1:5433,db2,[::1]:6000/circulate?sslmode=disable&target_session_attrs=read-write')
  t.same(p.hosts, [{ host: 'db1', port: 5433 }, { host: 'db2', port: 5432 }, { host: '::1', port: 6000 }])
  t.equal(p.attrs, 'read-write')
  t.equal(p.multi, true)
  t.equal(p.urlFor(p.hosts[2]!), 'postgresql://u:s%40cret@[::1]:6000/circulate?sslmode=disable', 'target_session_attrs is not passed to pg')
  t.equal(p.urlFor(p.hosts[1]!), 'postgresql://u:s%40cret@db2:5432/circulate?sslmode=disable')

  const one = parseDatabaseUrl('postgres://localhost/x')
  t.equal(one.multi, false, 'one host without target_session_attrs goes to pg unchanged')
  t.equal(one.attrs, 'any')
  t.equal(parseDatabaseUrl('postgres://a,b/x').attrs, 'read-write', 'several hosts default to the writable one')
  t.equal(parseDatabaseUrl('postgres://a,b/x?target_session_attrs=any').attrs, 'any')
  t.equal(parseDatabaseUrl('postgres://a/x?target_session_attrs=primary').multi, true)
  t.throws(() => parseDatabaseUrl('postgres://a,b/x?target_session_attrs=standby'), /not supported/)
  t.throws(() => parseDatabaseUrl('postgres://a:99999/x'), /bad port/)
  t.throws(() => parseDatabaseUrl('postgres://a:b:c/x'), /cannot read the host/)
})

t.test('no host answers: a 08001 error that the service maps to 503, not a hang', async (t) => {
  const dead = [await freePort(), await freePort()]
  const r = new HostResolver(`postgresql://postgres@127.0.0.1:${dead[0]},127.0.0.1:${dead[1]}/x`, 1000)
  const err = await r.pick().catch((e: unknown) => e) as { code?: string, message: string }
  t.equal(err.code, '08001')
  t.match(err.message, /no writable database host/)
})

t.test('primary + standby: writes go to the primary, and follow it after a failover', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster({ sync: true })
  t.teardown(() => { cluster.destroy() })
  const admin = new pg.Client({ connectionString: cluster.primary.url() })
  await admin.connect()
  await admin.query('CREATE DATABASE circulate')
  await admin.end()
  const dead = await freePort()
  // the standby first and a dead port: the service must skip both
  const url = `postgresql://postgres@127.0.0.1:${cluster.standby.port},127.0.0.1:${dead},127.0.0.1:${cluster.primary.port}/circulate?target_session_attrs=read-write`
  await migrate(url)

  const ctx = await buildTestApp(t, { DB_ACQUIRE_TIMEOUT_MS: 3000 }, { db: { url, drop: async () => {} } })
  t.same(ctx.app.dbHosts?.active, { host: '127.0.0.1', port: cluster.primary.port }, 'the primary was chosen')
  // the event hub's LISTEN connection reads the same URL (pg alone cannot: "Invalid URL")
  await ctx.app.events.hub.listen()
  t.equal(ctx.app.events.hub.isListening, true, 'the event hub listens through the multi-host URL')
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const pay = async (key: string) => await ctx.app.inject({
    method: 'POST', url: `/v1/currencies/${s.code}/payments`,
    headers: { authorization: `Bearer ${s.member.token}`, 'idempotency-key': key },
    payload: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
  })
  const before: string[] = []
  for (let i = 0; i < 5; i++) {
    const r = await pay(`before-${i}`)
    t.equal(r.statusCode, 201)
    before.push(r.json().id)
  }

  // the primary dies (synchronous replication: every 201 above is on the standby), the standby is promoted
  cluster.crash(cluster.primary)
  const down = await pay('while-down')
  t.equal(down.statusCode, 503, 'while no host accepts writes: 503, never 500')
  t.match(down.headers['content-type'], /^application\/problem\+json/)
  const failedOverAt = Date.now()
  cluster.promote(cluster.standby)

  // payments resume on the new primary without a restart (the first may meet a dropped connection: 503)
  let resumed = null
  let refused = 0
  for (let i = 0; i < 50 && resumed == null; i++) {
    const r = await pay('after-1')
    if (r.statusCode === 201) resumed = r
    else { t.equal(r.statusCode, 503, 'only 503 meanwhile'); refused++; await new Promise(resolve => setTimeout(resolve, 100)) }
  }
  t.ok(resumed, `payments resumed ${Date.now() - failedOverAt} ms after the promotion (${refused} refused)`)
  t.same(ctx.app.dbHosts?.active, { host: '127.0.0.1', port: cluster.standby.port }, 'the service follows the new primary')
  // and the hub, having lost its connection with the old primary, listens again on the new one
  for (let i = 0; i < 150 && !ctx.app.events.hub.isListening; i++) await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(ctx.app.events.hub.isListening, true, 'the event hub listens again after the failover')

  // every payment answered 201 before the crash is on the new primary exactly once; a retry replays it
  const replay = await pay('before-2')
  t.equal(replay.statusCode, 201)
  t.equal(replay.json().id, before[2], 'a retry with the same key replays the original')
  t.equal(replay.headers['idempotent-replayed'], 'true')
  const db = await connectClient(url)
  t.teardown(async () => { await db.end().catch(() => {}) })
  const found = await db.query<{ id: string, n: number }>('SELECT id::text, count(*)::int AS n FROM transfer WHERE id::text = ANY($1) GROUP BY id', [before])
  t.equal(found.rows.length, before.length, 'every acknowledged payment is there')
  t.same(found.rows.map(r => r.n), before.map(() => 1), 'exactly once')
  assertInvariants(t, await invariantViolations(db), 'after the failover')
  const r = await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: ctx.issuerToken })
  t.equal(r.body.balance, '94.00', '100 issued, 6 payments of 1.00 (no fee on app)')
})
