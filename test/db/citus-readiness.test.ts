import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import t from 'tap'
import { createTestDb } from '../../support/postgres.js'

// docs/scaling.md says how Circulate runs on Citus, distributed by currency_id. Citus cannot be installed here, so
// this test holds the migrated schema to the rules Citus would: every table has a role in the doc; a distributed
// table carries currency_id; every primary key, unique key and foreign key of a distributed table includes
// currency_id (a foreign key to a reference table need not), or the doc lists it under "Keys not ready" with why.

const doc = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/scaling.md'), 'utf8')
const between = (begin: string, end: string) => doc.slice(doc.indexOf(begin) + begin.length, doc.indexOf(end))
const roles = new Map([...between('<!-- citus-tables: begin -->', '<!-- citus-tables: end -->').matchAll(/^\| `([a-z0-9_]+)` \| (distributed|reference|local) \|/gm)]
  .map(m => [m[1]!, m[2]!]))
const excused = new Set([...between('<!-- citus-keys: begin -->', '<!-- citus-keys: end -->').matchAll(/^- `([a-z0-9_]+\.[a-z0-9_]+)`: \S/gm)].map(m => m[1]!))

t.test('the schema is ready to be distributed by currency_id, or docs/scaling.md says why not', async (t) => {
  t.ok(roles.size > 10 && excused.size > 0, 'docs/scaling.md has its two lists')
  const db = await createTestDb()
  const c = new pg.Client({ connectionString: db.url })
  await c.connect()
  t.teardown(async () => { await c.end(); await db.drop() })

  const tables = (await c.query<{ name: string, has: boolean }>(`
    SELECT c.relname AS name, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'currency_id' AND NOT a.attisdropped) AS has
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
     WHERE c.relkind IN ('r', 'p') ORDER BY 1`)).rows
  for (const tb of tables) {
    const role = roles.get(tb.name)
    if (role == null) { t.fail(`table ${tb.name} has no role in docs/scaling.md ("Table roles"): add its line`); continue }
    if (role === 'distributed') t.ok(tb.has || excused.has(`${tb.name}.currency_id`), `${tb.name} is distributed, so it carries currency_id (or "Keys not ready" says why not)`)
  }

  // keys (primary, unique constraints, unique indexes) and foreign keys of every table, with whether they include
  // currency_id and, for a foreign key, the table it points at
  const keys = (await c.query<{ tbl: string, name: string, kind: string, has: boolean, target: string | null }>(`
    SELECT r.relname AS tbl, con.conname AS name, con.contype::text AS kind, ft.relname AS target,
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attname = 'currency_id' AND a.attnum = ANY (con.conkey)) AS has
      FROM pg_constraint con JOIN pg_class r ON r.oid = con.conrelid
      JOIN pg_namespace n ON n.oid = r.relnamespace AND n.nspname = 'public'
      LEFT JOIN pg_class ft ON ft.oid = con.confrelid
     WHERE con.contype IN ('p', 'u', 'f')
    UNION ALL
    SELECT r.relname, ic.relname, 'i', NULL,
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attname = 'currency_id' AND a.attnum = ANY (i.indkey))
      FROM pg_index i JOIN pg_class r ON r.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
      JOIN pg_namespace n ON n.oid = r.relnamespace AND n.nspname = 'public'
     WHERE i.indisunique AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)`)).rows
  let ready = 0
  for (const k of keys) {
    const role = roles.get(k.tbl)
    const id = `${k.tbl}.${k.name}`
    if (role === 'distributed') {
      if (k.kind === 'f' && roles.get(k.target ?? '') === 'reference') { ready++; continue }
      if (k.has) { ready++; continue }
      t.ok(excused.has(id), `${id} (${k.kind}) on a distributed table lacks currency_id: docs/scaling.md must list it under "Keys not ready"`)
    } else if (role === 'reference' && k.kind === 'f' && roles.get(k.target ?? '') === 'distributed') {
      t.ok(excused.has(id), `${id}: a reference table pointing at a distributed one must be listed under "Keys not ready"`)
    }
  }
  t.ok(ready > 0, `${ready} keys are ready as they are`)
})
