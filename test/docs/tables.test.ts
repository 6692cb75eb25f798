import fs from 'node:fs'
import t from 'tap'
import { between, configTable, errorTable, routeTable, sqlFunctionTable, TABLES } from '../../scripts/docs-tables.js'
import { ERROR_STATUS } from '../../src/domain/errors.js'
import { ConfigSchema } from '../../src/config.js'

// The docs' generated tables (npm run docs) are what the code says now: the route table against openapi.yaml, the
// configuration table against the config schema, the SQL functions against the migrations.

const read = (f: string) => fs.readFileSync(new URL(`../../${f}`, import.meta.url), 'utf8')

for (const table of TABLES) {
  t.test(`${table.file}: the ${table.marker} table is current (else: npm run docs)`, async t => {
    const committed = between(read(table.file), table.marker)
    t.not(committed, null, `${table.file} has the ${table.marker} markers`)
    t.equal(committed, table.make())
  })
}

t.test('the route table has one row per operation of openapi.yaml', async t => {
  const doc = read('openapi.yaml')
  const operations = [...doc.matchAll(/^ {4}(get|post|put|patch|delete):$/gm)].length
  const rows = routeTable(doc).split('\n').slice(2)
  t.equal(rows.length, operations)
  t.match(rows.find(r => r.includes('`/v1/currencies/{code}/transfers/batch`')), /^\| POST \|.*\| bearer \|/)
  t.match(rows.find(r => r.includes('`/health`')), /^\| GET \| `\/health` \| none \|/)
})

t.test('the configuration table has one row per variable, each with a meaning', async t => {
  const rows = configTable().split('\n').slice(2)
  const names = Object.keys((ConfigSchema as unknown as { properties: object }).properties)
  t.same(rows.map(r => /^\| `(\w+)`/.exec(r)?.[1]), names)
  for (const r of rows) t.notMatch(r, /\|\s*\|$/, `${r.slice(0, 40)}...: a /** */ comment in src/config.ts says what it means`)
  t.match(rows.find(r => r.startsWith('| `PORT`')), /^\| `PORT` \| `3000` \| integer 0–65535 \|/)
})

t.test('the error table has one row per code, each with its status and a meaning', async t => {
  const rows = errorTable().split('\n').slice(2)
  t.same(rows.map(r => /^\| \d{3} \| `(\w+)`/.exec(r)?.[1]), Object.keys(ERROR_STATUS))
  for (const r of rows) t.notMatch(r, /\|\s*\|$/, `${r.slice(0, 40)}...: a /** */ comment in src/domain/errors.ts says when it is answered`)
  t.match(rows.find(r => r.includes('`INSUFFICIENT_FUNDS`')), /^\| 422 \| `INSUFFICIENT_FUNDS` \| The payer's balance/)
})

t.test('the SQL function table names the migration that holds each current body', async t => {
  const rows = sqlFunctionTable().split('\n').slice(2)
  const row = rows.find(r => r.startsWith('| `ledger_post_movements()`'))
  t.ok(row, 'ledger_post_movements() is listed')
  // the functions the money-path migration dropped are gone
  for (const gone of ['ledger_post()', 'ledger_post_at()', 'ledger_post_payments()', 'transfer_legs()']) t.notOk(rows.some(r => r.startsWith(`| \`${gone}\``)), `${gone} is not listed`)
  for (const r of rows) {
    const [, fn, migration] = /^\| `(\w+)\(\)` \| `(\w+)` \|/.exec(r) ?? []
    t.match(read(`prisma/migrations/${migration}/migration.sql`), new RegExp(`create\\s+(or\\s+replace\\s+)?function\\s+(public\\.)?${fn}\\b`, 'i'), `${fn}() is made in ${migration}`)
  }
})
