import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate.js'
import { createTestDb } from '../../support/postgres.js'

const copyMigrations = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-migrations-'))
  fs.cpSync(MIGRATIONS_DIR, dir, { recursive: true })
  return dir
}

t.test('migrations apply once, in Prisma\'s table, and a rerun is a no-op', async (t) => {
  const db = await createTestDb({ migrate: false })
  t.teardown(db.drop)
  const first = await migrate(db.url)
  const names = fs.readdirSync(MIGRATIONS_DIR).filter(n => fs.statSync(path.join(MIGRATIONS_DIR, n)).isDirectory()).sort()
  t.same(first.applied, names, 'every migration applied, in name order')
  const second = await migrate(db.url)
  t.same(second.applied, [], 'nothing applied twice')
  t.same(second.skipped, names)
  const c = new pg.Client({ connectionString: db.url })
  await c.connect()
  const rows = (await c.query('SELECT migration_name, checksum, finished_at FROM _prisma_migrations ORDER BY migration_name')).rows
  await c.end()
  t.same(rows.map(r => r.migration_name), names)
  t.ok(rows.every(r => /^[0-9a-f]{64}$/.test(r.checksum) && r.finished_at != null), 'sha256 checksums and finish times recorded')
})

t.test('several instances migrating at once apply each migration once', async (t) => {
  const db = await createTestDb({ migrate: false })
  t.teardown(db.drop)
  const results = await Promise.all([migrate(db.url), migrate(db.url), migrate(db.url)])
  const total = results.flatMap(r => r.applied)
  t.equal(new Set(total).size, total.length, 'no migration applied by two instances')
  t.equal(total.length, fs.readdirSync(MIGRATIONS_DIR).length, 'and every migration applied by one of them')
})

t.test('an edited migration is refused', async (t) => {
  const db = await createTestDb({ migrate: false })
  t.teardown(db.drop)
  const dir = copyMigrations()
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  await migrate(db.url, dir)
  const first = fs.readdirSync(dir).sort()[0]
  fs.appendFileSync(path.join(dir, first, 'migration.sql'), '\n-- edited\n')
  await t.rejects(migrate(db.url, dir), /was edited after it was applied/)
})

t.test('a failing migration leaves nothing half-applied', async (t) => {
  const db = await createTestDb({ migrate: false })
  t.teardown(db.drop)
  const dir = copyMigrations()
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.mkdirSync(path.join(dir, '99990101000000_broken'))
  fs.writeFileSync(path.join(dir, '99990101000000_broken', 'migration.sql'), 'CREATE TABLE half_done (id int);\nSELECT no_such_function();\n')
  await t.rejects(migrate(db.url, dir), /99990101000000_broken failed/)
  const c = new pg.Client({ connectionString: db.url })
  await c.connect()
  const table = await c.query(`SELECT to_regclass('half_done') AS t`)
  const rec = await c.query(`SELECT count(*)::int AS n FROM _prisma_migrations WHERE migration_name = '99990101000000_broken'`)
  await c.end()
  t.equal(table.rows[0].t, null, 'the broken migration\'s table was rolled back')
  t.equal(rec.rows[0].n, 0, 'and it is not recorded as applied')
})
