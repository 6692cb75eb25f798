// Hostile HTTP requests generated from openapi.yaml with fast-check: every operation, with path, query, headers
// and bodies that start from the documented schema and are then broken (wrong types, boundary numbers, huge and
// strange strings, missing and extra fields, bad JSON, bad content types, bad tokens), plus raw malformed HTTP.
import fc from 'fast-check'
import fs from 'node:fs'
import YAML from 'yaml'

type Schema = {
  type?: string | string[], enum?: unknown[], const?: unknown, format?: string, pattern?: string,
  minLength?: number, maxLength?: number, minimum?: number, maximum?: number, minItems?: number, maxItems?: number,
  properties?: Record<string, Schema>, required?: string[], additionalProperties?: boolean | Schema,
  items?: Schema, anyOf?: Schema[], oneOf?: Schema[], description?: string, $ref?: string, default?: unknown
}
interface Parameter { in: 'path' | 'query' | 'header', name: string, required?: boolean, schema: Schema }
export interface Operation { method: string, path: string, parameters: Parameter[], body: Schema | null }

export function operations (file: URL): Operation[] {
  const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as { paths: Record<string, Record<string, { parameters?: Parameter[], requestBody?: { content?: Record<string, { schema?: Schema }> } }>> }
  return Object.entries(doc.paths).flatMap(([p, ops]) => Object.entries(ops).map(([method, op]) => ({
    method: method.toUpperCase(), path: p, parameters: op.parameters ?? [],
    body: op.requestBody?.content?.['application/json']?.schema ?? null,
  })))
}

/** What the fuzzer knows about the running service: real ids, codes and tokens, so requests reach deep code. */
export interface Known {
  codes: string[]
  accounts: string[]
  participants: string[]
  transfers: string[]
  /** valid tokens of each role, and forged or broken ones */
  tokens: string[]
  badTokens: string[]
}

const HUGE = 'x'.repeat(70_000)
/** Percent-encodes every byte of the UTF-8 form (a lone surrogate becomes EF BF BD, where encodeURIComponent throws). */
const enc = (s: string) => [...Buffer.from(s, 'utf8')].map(b => /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('')
export const hostileStrings = [
  '', ' ', '\t', 'null', 'undefined', 'true', '0', '-1', '1e309', 'NaN', 'Infinity', '9007199254740993', '-0',
  '0.0000001', '12.600', '12.6.0', '１２.６０', '١٢٫٦٠', '12,60', '+5', ' 12.60', '12.60 ', '0x10',
  '\u0000', 'a\u0000b', '\ud800', '\udfff', '\u202e12.60', '💷💷💷', 'ç'.repeat(300), 'Ω'.repeat(5000), HUGE,
  '../../etc/passwd', '%00', '%2e%2e%2f', "' OR '1'='1", '"; DROP TABLE account; --', '<script>alert(1)</script>',
  // eslint-disable-next-line no-template-curly-in-string -- a hostile literal, not a template
  '${jndi:ldap://x}', '{{7*7}}', '__proto__', 'constructor', '0190aaaa-0000-7000-8000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '00000000-0000-0000-0000-000000000000', 'ZZZZ', 'brs', 'BRS', 'a'.repeat(256),
  '2026-13-45T25:61:61Z', '+275760-09-13T00:00:00.000Z', '-271821-04-20T00:00:00Z', '1970-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z',
]
const hostileScalars: unknown[] = [
  null, true, false, 0, -1, 1, 1.5, -0.01, 1e308, -1e308, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, [], {}, [1, 2], { a: 1 },
  ...hostileStrings,
]

const amountArb = fc.oneof(
  fc.constantFrom('12.60', '0.01', '1', '100.00', '1.005', '0', '0.00', '-5.00', '1e3', '999999999999999', '9999999999999999', '00.10', '.5', '5.'),
  fc.tuple(fc.nat(100000), fc.nat(99)).map(([a, b]) => `${a}.${String(b).padStart(2, '0')}`),
  // within the seeded balances (1,000.00), so payments can post as well as be refused for funds
  fc.tuple(fc.nat(2000), fc.nat(99)).map(([a, b]) => `${a}.${String(b).padStart(2, '0')}`)
)

/** A value that fits the schema (mostly), using known ids where a uuid is asked for. */
function valid (s: Schema, k: Known, depth = 0, name = ''): fc.Arbitrary<unknown> {
  if (s.$ref != null) return fc.constant({})
  if (s.const !== undefined) return fc.constant(s.const)
  if (s.enum != null) return fc.constantFrom(...s.enum)
  const alts = s.anyOf ?? s.oneOf
  if (alts != null) return fc.oneof(...alts.map(a => valid(a, k, depth + 1)))
  const type = Array.isArray(s.type) ? s.type[0] : s.type
  switch (type) {
    case 'string': {
      // an account field gets an account: any of the 19 known ids rarely names a payer the token may pay from
      if (s.format === 'uuid' && /account/i.test(name)) return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...k.accounts) }, { weight: 1, arbitrary: fc.uuid() })
      if (s.format === 'uuid') return fc.oneof(fc.constantFrom(...k.accounts, ...k.participants, ...k.transfers), fc.uuid())
      if (s.format === 'date-time') return fc.date({ min: new Date('2020-01-01'), max: new Date('2030-01-01'), noInvalidDate: true }).map(d => d.toISOString())
      if (/decimal string/.test(s.description ?? '')) return amountArb
      if (s.pattern != null) {
        if (s.pattern.startsWith('^[A-Za-z][A-Za-z0-9]')) return fc.oneof(fc.constantFrom(...k.codes), fc.stringMatching(new RegExp(s.pattern)))
        return fc.stringMatching(new RegExp(s.pattern))
      }
      return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 20, 40), unit: 'grapheme' })
    }
    case 'integer': return fc.integer({ min: s.minimum ?? -10, max: Math.min(s.maximum ?? 1000, 1_000_000) })
    case 'number': return fc.double({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6, noNaN: true })
    case 'boolean': return fc.boolean()
    case 'null': return fc.constant(null)
    case 'array': {
      if (depth > 3 || s.items == null) return fc.constant([])
      return fc.array(valid(s.items, k, depth + 1), { minLength: s.minItems ?? 0, maxLength: Math.min(s.maxItems ?? 3, 3) })
    }
    case 'object': {
      if (depth > 4) return fc.constant({})
      const props = s.properties ?? {}
      const required = new Set(s.required ?? [])
      const rec = fc.record(Object.fromEntries(Object.entries(props).map(([name, ps]) => [name, valid(ps, k, depth + 1, name)])), {
        requiredKeys: Object.keys(props).filter(p => required.has(p)),
      })
      if (typeof s.additionalProperties === 'object') {
        return fc.tuple(rec, fc.dictionary(fc.string({ maxLength: 10 }), valid(s.additionalProperties, k, depth + 1), { maxKeys: 3 }))
          .map(([a, b]) => ({ ...b, ...a }))
      }
      return rec
    }
  }
  return fc.constant(null)
}

/** A valid body with one field replaced by something hostile. */
function oneHostileField (s: Schema, k: Known): fc.Arbitrary<{ body?: unknown }> {
  return fc.tuple(valid(s, k), fc.constantFrom(...hostileScalars), fc.nat()).map(([b, v, i]) => {
    if (b == null || typeof b !== 'object' || Array.isArray(b)) return { body: v }
    const keys = Object.keys(s.properties ?? {})
    if (keys.length === 0) return { body: { ...b as object, x: v } }
    return { body: { ...b as object, [keys[i % keys.length]]: v } }
  })
}

/** Breaks a valid body in one of many ways. */
function mutate (s: Schema, k: Known): fc.Arbitrary<{ body?: unknown, raw?: string }> {
  const base = valid(s, k)
  return fc.oneof(
    { weight: 4, arbitrary: base.map(body => ({ body })) },
    { weight: 6, arbitrary: oneHostileField(s, k) },
    // a required field missing, or an extra one
    { weight: 2, arbitrary: fc.tuple(base, fc.nat()).map(([b, i]) => {
      const o = { ...(b as Record<string, unknown>) }
      const req = s.required ?? []
      if (req.length > 0) delete o[req[i % req.length]]
      return { body: o }
    }) },
    { weight: 2, arbitrary: fc.tuple(base, fc.constantFrom('extra', '__proto__', 'constructor', 'prototype', '', 'amount ', 'AMOUNT'), fc.constantFrom(...hostileScalars)).map(([b, key, v]) => ({
      raw: JSON.stringify(b).replace(/^\{/, `{${JSON.stringify(key)}:${JSON.stringify(v) ?? 'null'},`).replace(/,\}$/, '}'),
    })) },
    // not an object at all, or not JSON
    { weight: 1, arbitrary: fc.constantFrom(...hostileScalars).map(v => ({ body: v })) },
    { weight: 1, arbitrary: fc.constantFrom('', '{', '{"a":', '[1,2', 'nul', '{"amount": 01}', '{"a":1}{"b":2}', '\u0000', '{"a":"\\ud800"}', '{"a":1e999999}', '{"__proto__":{"admin":true}}', `${'['.repeat(20000)}1${']'.repeat(20000)}`, `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`, `{"a":"${HUGE}"}`, `[${'1,'.repeat(60000)}1]`).map(raw => ({ raw })) }
  )
}

export interface RequestSpec {
  op: string
  method: string
  path: string
  headers: Record<string, string>
  body: string | null
  /** everything valid but at most one body field: the request gets past authentication and validation */
  wellFormed: boolean
}

const contentTypes = ['application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/problem+json', 'application/json; charset=utf-16', 'APPLICATION/JSON', '', '*/*', 'application/json;;;', 'application/vnd.api+json']

function realPathValue (p: Parameter, opPath: string, k: Known): fc.Arbitrary<string> {
  return p.name === 'code'
    ? fc.constantFrom(...k.codes)
    : opPath.startsWith('/v1/accounts') ? fc.constantFrom(...k.accounts)
      : opPath.startsWith('/v1/participants') ? fc.constantFrom(...k.participants)
        : opPath.startsWith('/v1/transfers') ? fc.constantFrom(...k.transfers)
          : fc.constantFrom(...k.accounts, ...k.transfers)
}

function pathValue (p: Parameter, opPath: string, k: Known): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: realPathValue(p, opPath, k) },
    { weight: 1, arbitrary: fc.uuid() },
    { weight: 2, arbitrary: fc.constantFrom(...hostileStrings.filter(s => s.length < 400)).map(s => enc(s)) },
    { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%E0%A4%A', '%FF%FE', '..', '.', 'a/b', '%2F', 'x'.repeat(250), '%00', '%C0%AF') }
  )
}

function queryString (op: Operation, k: Known): fc.Arbitrary<string> {
  const qs = op.parameters.filter(p => p.in === 'query')
  const one = (p: Parameter) => fc.oneof(
    { weight: 4, arbitrary: valid(p.schema, k).map(v => `${p.name}=${enc(String(v))}`) },
    { weight: 2, arbitrary: fc.constantFrom(...hostileStrings.filter(s => s.length < 2000)).map(v => `${p.name}=${enc(v)}`) },
    { weight: 1, arbitrary: fc.constantFrom(`${p.name}=`, `${p.name}`, `${p.name}=1&${p.name}=2`, `${p.name}[]=1`, `${p.name}[a]=1`, `${p.name}=%`, `${p.name}=%FF`) }
  )
  const extra = fc.constantFrom('', 'unknown=1', '__proto__[x]=1', 'limit=9999999999999999999', 'cursor=%00', 'format=xml', '&&&', '=')
  return fc.tuple(fc.subarray(qs).chain(ps => fc.tuple(...ps.map(one))), extra).map(([parts, x]) => {
    const all = [...parts, x].filter(s => s !== '')
    return all.length > 0 ? `?${all.join('&')}` : ''
  })
}

/** Hostile requests for one operation. */
export function requestsFor (op: Operation, k: Known): fc.Arbitrary<RequestSpec> {
  const params = op.parameters.filter(p => p.in === 'path')
  const pathArb = fc.tuple(...params.map(p => pathValue(p, op.path, k))).map(vals =>
    params.reduce((acc, p, i) => acc.replace(`{${p.name}}`, vals[i]), op.path))
  const auth = fc.oneof(
    { weight: 2, arbitrary: fc.constant(null) },
    { weight: 6, arbitrary: fc.constantFrom(...k.tokens).map(t => `Bearer ${t}`) },
    { weight: 2, arbitrary: fc.constantFrom(...k.badTokens).map(t => `Bearer ${t}`) },
    { weight: 1, arbitrary: fc.constantFrom('Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'bearer x.y.z', 'Bearer a.b', 'Bearer ' + 'a'.repeat(9000), 'Token abc', `Bearer ${'é'.repeat(20)}`) }
  )
  const key = fc.oneof(
    { weight: 6, arbitrary: fc.uuid().map(u => `k-${u}`) },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 2, arbitrary: fc.constantFrom('', ' ', 'x'.repeat(256), 'x'.repeat(255), 'ключ', '💷', 'a\tb', 'same-key', 'same-key') }
  )
  const body = op.body == null
    ? fc.oneof({ weight: 5, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: fc.constantFrom({ raw: '{"a":1}' }, { raw: 'garbage' }, { body: {} }) })
    : mutate(op.body, k)
  const ct = fc.oneof({ weight: 8, arbitrary: fc.constant('application/json') }, { weight: 2, arbitrary: fc.constantFrom(...contentTypes) })
  const extraHeader = fc.oneof(
    { weight: 6, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.constantFrom<[string, string]>(['x-request-id', 'x'.repeat(5000)], ['x-request-id', ''], ['x-request-id', 'é'], ['accept', 'text/html'], ['accept', 'application/xml'], ['accept-encoding', 'gzip, br'], ['content-encoding', 'gzip'], ['x-forwarded-for', 'garbage, , ::1'], ['expect', '100-continue'], ['if-none-match', '*'], ['origin', 'http://evil.example']) }
  )
  // Every part above is broken independently, so almost no request is valid but for one thing: measured, 0 of 520
  // payments (and 0-1 of 520 issuances, redemptions, reversals) moved money, none reached the funds check. Half of
  // the requests are well formed but for at most one hostile body field, so they reach the handlers and the ledger.
  const wellFormed = fc.record({
    path: fc.tuple(...params.map(p => p.name === 'code' ? fc.constant(k.codes[0]) : realPathValue(p, op.path, k)))
      .map(vals => params.reduce((acc, p, i) => acc.replace(`{${p.name}}`, vals[i]), op.path)),
    qs: fc.constant(''), key: fc.uuid().map(u => `k-${u}`),
    // the issuer (k.tokens[0]) may move money from any account; a member only from its own
    auth: fc.oneof(fc.constant(k.tokens[0]), fc.constantFrom(...k.tokens.slice(1))).map(t => `Bearer ${t}`),
    body: op.body == null ? fc.constant({}) : fc.oneof({ weight: 2, arbitrary: valid(op.body, k).map(body => ({ body })) }, { weight: 1, arbitrary: oneHostileField(op.body, k) }),
    ct: fc.constant('application/json'), extraHeader: fc.constant(null), wellFormed: fc.constant(true),
  })
  const hostile = fc.record({ path: pathArb, qs: queryString(op, k), auth, key, body, ct, extraHeader, wellFormed: fc.constant(false) })
  return fc.oneof(hostile, wellFormed).map(r => {
    const headers: Record<string, string> = {}
    if (r.auth != null) headers.authorization = r.auth
    if (r.key != null) headers['idempotency-key'] = r.key
    if (r.extraHeader != null) headers[r.extraHeader[0]] = r.extraHeader[1]
    const b = r.body as { body?: unknown, raw?: string }
    let payload: string | null = null
    if (op.method !== 'GET') {
      if (b.raw !== undefined) payload = b.raw
      else if ('body' in b) payload = JSON.stringify(b.body) ?? 'null'
      if (payload != null && r.ct !== '') headers['content-type'] = r.ct
    }
    return { op: `${op.method} ${op.path}`, method: op.method, path: `${r.path}${r.qs}`, headers, body: payload, wellFormed: r.wellFormed }
  })
}

/** Raw HTTP that no well-behaved client sends: malformed request lines, headers, lengths and encodings. */
export function rawGarbage (k: Known): string[] {
  const t = k.tokens[0]
  const out = [
    'GARBAGE\r\n\r\n',
    'GET / HTTP/9.9\r\nHost: x\r\n\r\n',
    'GET /health HTTP/1.1\r\n\r\n',
    'GET /v1/accounts/\u0000 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /health HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n',
    'GET /health HTTP/1.1\r\nHost: x\r\nX-A: \u0001\r\n\r\n',
    `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    `POST /v1/currencies/${k.codes[0]}/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{"a":1}`,
    `POST /v1/currencies/${k.codes[0]}/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`,
    `POST /v1/currencies/${k.codes[0]}/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n`,
    `POST /v1/currencies/${k.codes[0]}/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n`,
    `POST /v1/currencies/${k.codes[0]}/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t}\r\nIdempotency-Key: raw-1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    `POST /v1/currencies/${k.codes[0]}/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t}\r\nIdempotency-Key: raw-2\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n\u00ff\u00fe{}`,
    'PUT /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n',
    'DELETE /v1/currencies/BRS HTTP/1.1\r\nHost: x\r\n\r\n',
    'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
    'TRACE / HTTP/1.1\r\nHost: x\r\n\r\n',
    'CONNECT 127.0.0.1:5432 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET http://evil.example/health HTTP/1.1\r\nHost: evil.example\r\n\r\n',
    'GET /%ZZ HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /v1/currencies/%E0%A4%A HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /v1/currencies/BRS?limit=1&limit=2&limit=3 HTTP/1.1\r\nHost: x\r\n\r\n',
    `GET /${'a/'.repeat(5000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  ]
  return out
}
