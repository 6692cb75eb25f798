import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate.js'
import { createTestDb } from '../../support/postgres.js'

// Usernames became unique case-insensitively (migration 20261201020000_usernames_case_insensitive). A database
// made before it may hold names that differ only in case: the migration keeps the first, renames the others and
// records each rename in the audit trail.
const MIGRATION = '20261201020000_usernames_case_insensitive'

t.test('existing users whose names differ only in case are renamed, audited, and unique in any case from then on', async (t) => {
  const db = await createTestDb({ migrate: false })
  t.teardown(db.drop)
  const before = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-migrations-'))
  t.teardown(() => { fs.rmSync(before, { recursive: true, force: true }) })
  for (const name of fs.readdirSync(MIGRATIONS_DIR).filter(n => n < MIGRATION)) fs.cpSync(path.join(MIGRATIONS_DIR, name), path.join(before, name), { recursive: true })
  await migrate(db.url, before)

  const c = new pg.Client({ connectionString: db.url })
  await c.connect()
  t.teardown(async () => { await c.end() })
  const add = async (username: string) => (await c.query<{ id: string }>(
    `INSERT INTO app_user (username, password_hash, role, name, created_at) VALUES ($1, 'x', 'platform_issuer', 'P', clock_timestamp()) RETURNING id`, [username])).rows[0].id
  const ann = await add('Ann')
  const ann2 = await add('ann')
  const ann3 = await add('ANN')
  const long = 'L'.repeat(64)
  const long1 = await add(long)
  const long2 = await add(long.toLowerCase())
  const bob = await add('bob')

  const r = await migrate(db.url)
  t.ok(r.applied.includes(MIGRATION))
  const names = new Map((await c.query<{ id: string, username: string }>('SELECT id, username FROM app_user')).rows.map(x => [x.id, x.username]))
  t.equal(names.get(ann), 'Ann', 'the first created keeps its name')
  t.equal(names.get(bob), 'bob', 'a name without a twin is untouched')
  t.equal(names.get(long1), long)
  for (const [id, from] of [[ann2, 'ann'], [ann3, 'ANN'], [long2, long.toLowerCase()]] as const) {
    const to = names.get(id)!
    t.equal(to, `${from.slice(0, 54)}~${id.slice(-8)}`, `${from.slice(0, 10)}... becomes ${to}`)
    t.ok(to.length <= 64, 'still a valid login name')
  }
  t.equal(new Set([...names.values()].map(n => n.toLowerCase())).size, names.size, 'every name now unique in any case')
  const audit = (await c.query<{ target: string, detail: { from: string, to: string } }>(`SELECT target, detail FROM audit_event WHERE action = 'user.rename' ORDER BY id`)).rows
  t.same(audit.map(a => [a.target, a.detail.from, a.detail.to]).sort(), [[ann2, 'ann', names.get(ann2)], [ann3, 'ANN', names.get(ann3)], [long2, long.toLowerCase(), names.get(long2)]].sort(),
    'each rename is in the audit trail')
  await t.rejects(c.query(`INSERT INTO app_user (username, password_hash, role, name) VALUES ('aNN', 'x', 'platform_issuer', 'P')`),
    { code: '23505' }, 'a new name that differs only in case is refused by the database')
})
