import pg from 'pg'
import t from 'tap'
import { inUtc } from '../../src/db/session.js'
import { createTestDb } from '../../support/postgres.js'

// The options every session of the service starts with (src/db/session.ts): UTC, added to what the URL asks.

t.test('inUtc adds the time zone to the options a connection string already has, keeping the rest', async (t) => {
  const opts = (url: string) => new URLSearchParams(url.slice(url.indexOf('?') + 1)).get('options')
  t.equal(opts(inUtc('postgres://u@h:5432/db')), '-c TimeZone=UTC')
  const kept = inUtc('postgres://u@h1,h2/db?target_session_attrs=read-write&options=-c%20search_path%3Dx', '-c synchronous_commit=off')
  t.ok(kept.startsWith('postgres://u@h1,h2/db?'), 'the hosts and database as they were')
  t.equal(new URLSearchParams(kept.slice(kept.indexOf('?') + 1)).get('target_session_attrs'), 'read-write', 'other parameters kept')
  t.equal(opts(kept), '-c search_path=x -c synchronous_commit=off -c TimeZone=UTC', 'the URL\'s options first, then the extra, then UTC')
  const withFragment = inUtc('postgres://u@h/db?sslmode=disable#note')
  t.ok(withFragment.endsWith('#note'), 'a fragment stays last')
  t.equal(new URLSearchParams(withFragment.slice(withFragment.indexOf('?') + 1, withFragment.indexOf('#'))).get('options'), '-c TimeZone=UTC',
    'the options are written before it, where they are read')
})

t.test('a session opened with it runs in UTC on a database set to another zone, with the URL\'s own options too', async (t) => {
  const db = await createTestDb()
  t.teardown(async () => { await db.drop() })
  const admin = new pg.Client({ connectionString: db.url })
  await admin.connect()
  await admin.query(`ALTER DATABASE "${new URL(db.url).pathname.slice(1)}" SET timezone = 'Europe/London'`)
  await admin.end()
  const c = new pg.Client({ connectionString: inUtc(`${db.url}${db.url.includes('?') ? '&' : '?'}options=-c%20work_mem%3D7MB`, '-c synchronous_commit=off') })
  await c.connect()
  t.teardown(async () => { await c.end() })
  const r = (await c.query(`SELECT current_setting('TimeZone') AS zone, current_setting('work_mem') AS work_mem,
    current_setting('synchronous_commit') AS sync`)).rows[0]
  t.same(r, { zone: 'UTC', work_mem: '7MB', sync: 'off' })
})

t.test('PGOPTIONS still applies to a URL without options of its own, as pg applied it before', async (t) => {
  const db = await createTestDb()
  t.teardown(async () => { await db.drop() })
  const before = process.env.PGOPTIONS
  process.env.PGOPTIONS = '-c work_mem=5MB'
  t.teardown(() => { if (before == null) delete process.env.PGOPTIONS; else process.env.PGOPTIONS = before })
  const c = new pg.Client({ connectionString: inUtc(db.url) })
  await c.connect()
  t.teardown(async () => { await c.end() })
  const r = (await c.query(`SELECT current_setting('TimeZone') AS zone, current_setting('work_mem') AS work_mem`)).rows[0]
  t.same(r, { zone: 'UTC', work_mem: '5MB' })
})
