import fs from 'node:fs'
import pg from 'pg'
import t from 'tap'
import { createTestDb } from '../../support/postgres.js'

// schema.prisma mirrors the SQL migrations (Prisma's CLI cannot diff here: it needs a native engine). This test
// reads schema.prisma and the migrated database and fails on any table, column, type, nullability or named
// index that one has and the other lacks.
interface Field { name: string, column: string, type: string, optional: boolean, list: boolean, db?: string }
interface Model { table: string, fields: Field[], indexes: string[] }

function parseSchema (text: string): Model[] {
  const models: Model[] = []
  for (const m of text.matchAll(/^model (\w+) \{([\s\S]*?)^\}/gm)) {
    const body = m[2]
    const table = /@@map\("([^"]+)"\)/.exec(body)?.[1] ?? m[1]
    const fields: Field[] = []
    const indexes: string[] = []
    for (const line of body.split('\n').map(l => l.trim())) {
      if (line.startsWith('@@')) {
        const map = /map: "([^"]+)"/.exec(line)
        if (map != null) indexes.push(map[1])
        continue
      }
      const f = /^(\w+)\s+(\w+)(\[\])?(\?)?\s*(.*)$/.exec(line)
      if (f == null) continue
      const [, name, type, list, opt, attrs] = f
      if (/@relation|^[A-Z]/.test(attrs) || !['String', 'Int', 'BigInt', 'Boolean', 'DateTime', 'Decimal', 'Json', 'Bytes', 'Float'].includes(type)) continue
      fields.push({ name, column: /@map\("([^"]+)"\)/.exec(attrs)?.[1] ?? name, type, optional: opt != null, list: list != null, db: /@db\.(\w+(\([^)]*\))?)/.exec(attrs)?.[1] })
      const uniq = /@unique\(map: "([^"]+)"\)/.exec(attrs)
      if (uniq != null) indexes.push(uniq[1])
    }
    models.push({ table, fields, indexes })
  }
  return models
}

function expectedType (f: Field): string {
  if (f.list) return 'ARRAY'
  if (f.db === 'Uuid') return 'uuid'
  if (f.db?.startsWith('Decimal')) return `numeric${f.db.slice(7).replace(/\s/g, '')}`
  if (f.db?.startsWith('Timestamptz')) return 'timestamp with time zone'
  if (f.db === 'Date') return 'date'
  if (f.db?.startsWith('Char')) return 'character'
  return { String: 'text', Int: 'integer', BigInt: 'bigint', Boolean: 'boolean', DateTime: 'timestamp without time zone', Json: 'jsonb', Decimal: 'numeric', Bytes: 'bytea', Float: 'double precision' }[f.type] ?? f.type
}

t.test('schema.prisma and the migrated database agree', async (t) => {
  const db = await createTestDb()
  t.teardown(db.drop)
  const models = parseSchema(fs.readFileSync(new URL('../../prisma/schema.prisma', import.meta.url), 'utf8'))
  t.ok(models.length >= 8, `schema.prisma has the models (${models.length})`)
  const c = new pg.Client({ connectionString: db.url })
  await c.connect()
  t.teardown(async () => { await c.end() })
  const cols = (await c.query<{ table_name: string, column_name: string, data_type: string, is_nullable: string, numeric_precision: number | null, numeric_scale: number | null }>(
    `SELECT table_name, column_name, data_type, is_nullable, numeric_precision, numeric_scale
       FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'
        -- partitions are storage of their parent table, which is the model
        AND table_name NOT IN (SELECT relname FROM pg_class WHERE relispartition)`)).rows
  const indexes = new Set((await c.query<{ name: string }>(`SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public'`)).rows.map(r => r.name))

  const dbTables = new Set(cols.map(r => r.table_name))
  t.same([...dbTables].filter(x => !models.some(m => m.table === x)), [], 'every table in the database is a model')
  for (const m of models) {
    t.ok(dbTables.has(m.table), `table ${m.table} exists`)
    const dbCols = cols.filter(r => r.table_name === m.table)
    t.same(dbCols.map(r => r.column_name).filter(x => !m.fields.some(f => f.column === x)), [], `${m.table}: every column is a field`)
    for (const f of m.fields) {
      const col = dbCols.find(r => r.column_name === f.column)
      if (col == null) { t.fail(`${m.table}.${f.column} is missing from the database`); continue }
      const actual = col.data_type === 'numeric' && col.numeric_precision != null ? `numeric(${col.numeric_precision},${col.numeric_scale})` : col.data_type
      t.equal(actual, expectedType(f), `${m.table}.${f.column} type`)
      t.equal(col.is_nullable === 'YES', f.optional, `${m.table}.${f.column} nullability`)
    }
    for (const ix of m.indexes) t.ok(indexes.has(ix), `${m.table}: index ${ix} exists`)
  }
})
