import fs from 'node:fs'
import t from 'tap'
import YAML from 'yaml'
import { generateOpenApiYaml, servedOperations } from '../src/openapi.js'

// openapi.yaml is the contract. It is generated from the route schemas (`npm run openapi`); this test fails
// when the committed file is stale, and checks that the running app and the file list the same operations.
// (Every response the other tests see is validated against the file by test/helper.ts.)
const committed = fs.readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8')

t.test('the committed openapi.yaml is what the route schemas generate', async (t) => {
  const generated = await generateOpenApiYaml()
  t.ok(generated === committed, 'openapi.yaml is up to date (run `npm run openapi` and commit it)')
})

t.test('every path and method in openapi.yaml exists in the app, and the other way round', async (t) => {
  const doc = YAML.parse(committed) as { openapi: string, paths: Record<string, Record<string, unknown>> }
  t.equal(doc.openapi, '3.1.0')
  const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map(m => `${m.toUpperCase()} ${path}`)))
  const served = new Set(await servedOperations())
  for (const op of documented) t.ok(served.has(op), `${op} is served`)
  for (const op of served) t.ok(documented.has(op), `${op} is documented`)
  t.ok(served.size >= 19, `the app serves the v1 surface (${served.size} operations)`)
})

t.test('problem responses are documented as application/problem+json', async (t) => {
  const doc = YAML.parse(committed) as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>> }
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      for (const [status, res] of Object.entries(op.responses)) {
        if (Number(status) >= 400) t.ok(res.content?.['application/problem+json'] != null, `${method.toUpperCase()} ${path} ${status}`)
      }
    }
  }
})
