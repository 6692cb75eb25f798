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
  t.equal(generated, committed, 'openapi.yaml is up to date (run `npm run openapi` and commit it)')
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

// The router refuses a path parameter past its maxParamLength before any route runs (414 URI_TOO_LONG,
// src/plugins/problem.ts): every operation with a path parameter lists it, and no other can answer it.
t.test('414 is documented on exactly the operations with a path parameter', async (t) => {
  const doc = YAML.parse(committed) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      t.equal(op.responses['414'] != null, path.includes('{'), `${method.toUpperCase()} ${path}`)
    }
  }
})

// Fastify reads a request's body whatever the route, so any POST, PUT, PATCH or DELETE can answer 415 (a type other
// than JSON) and 413 (too large), one that takes no body as well (a cancel, a retry, a revocation).
t.test('413 and 415 are documented on every operation that may carry a body', async (t) => {
  const doc = YAML.parse(committed) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (!['post', 'put', 'patch', 'delete'].includes(method)) continue
      for (const status of ['413', '415']) t.ok(op.responses[status] != null, `${method.toUpperCase()} ${path} ${status}`)
    }
  }
})

// What other people's tools make of the contract: a validating proxy refuses a request the document says is
// invalid, and a generated client sends what the document says to send. So the document may not contradict itself
// or the service: a parameter with a default is one a client may leave out, a public route needs no token, a
// header's schema is a schema.
t.test('openapi.yaml says nothing a validating proxy or a generated client would get wrong', async (t) => {
  type Schema = Record<string, any>
  const doc = YAML.parse(committed) as {
    servers?: Array<{ url: string }>, security?: unknown[],
    paths: Record<string, Record<string, { operationId?: string, security?: unknown[], parameters?: Schema[], requestBody?: Schema, responses: Record<string, Schema> }>>,
  }
  t.ok((doc.servers ?? []).length > 0, 'servers is not empty')
  t.same(doc.security, [{ bearer: [] }], 'bearer tokens by default')
  const ids = new Set<string>()
  // anyone may call these (the README's table); every other operation needs a token
  const PUBLIC = ['GET /health', 'GET /ready', 'POST /v1/auth/token', 'POST /v1/auth/password/reset', 'GET /.well-known/jwks.json', 'GET /v1/currencies/{code}', 'GET /v1/currencies/{code}/businesses',
    // the SMS gateway's webhook: no token, its own signature (X-Twilio-Signature)
    'POST /v1/sms/inbound']
  const withDefaults = (s: Schema | undefined): Schema[] => s == null ? [] : [s, ...(Object.values(s.properties ?? {}) as Schema[]).flatMap(withDefaults), ...(s.anyOf ?? []).flatMap(withDefaults), ...withDefaults(s.items)]
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const name = `${method.toUpperCase()} ${path}`
      t.ok(op.operationId != null && !ids.has(op.operationId), `${name}: a unique operationId (${op.operationId})`)
      ids.add(op.operationId!)
      if (PUBLIC.includes(name)) t.same(op.security, [], `${name}: public, so security: []`)
      else t.equal(op.security, undefined, `${name}: needs the bearer token`)
      for (const p of op.parameters ?? []) {
        if (p.in === 'path') t.equal(p.required, true, `${name}: path parameter ${p.name} is required`)
        if (p.schema?.default !== undefined) t.not(p.required, true, `${name}: ${p.in} parameter ${p.name} has a default, so it is not required`)
      }
      const body = op.requestBody?.content?.['application/json']?.schema as Schema | undefined
      for (const s of withDefaults(body)) {
        for (const req of s.required ?? []) t.equal(s.properties?.[req]?.default, undefined, `${name}: body field ${req} has a default, so it is not required`)
      }
      for (const [status, res] of Object.entries(op.responses)) {
        for (const [h, header] of Object.entries((res.headers ?? {}) as Record<string, Schema>)) {
          t.ok(header.schema != null && header.schema.schema == null && header.schema.type != null, `${name} ${status}: header ${h} has a plain schema`)
        }
      }
    }
  }
})
