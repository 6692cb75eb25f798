import { randomUUID } from 'node:crypto'
import t from 'tap'
import { textProblem } from '../../src/domain/text.js'
import { hardenText } from '../../src/plugins/validation.js'
import { buildTestApp, scenario } from '../helper.js'
import { loadOpenApi } from '../openapi-validator.js'

// The text rule (src/domain/text.ts) holds for every string of every route: this test reads the request schemas
// from openapi.yaml, so a route or field added later is attacked without anyone listing it here.

t.test('the rule: what is refused and what is kept', async (t) => {
  const refused = ['\u0000', 'a\u0001', '\u001b[2J', '\u007f', '\u0085', '\u009f', '\uD800', 'x\uDFFF', '\uDBFF\uDBFF\uDC00'.slice(0, 1), 'a\u202Eb', 'a\u202Db', 'a\tb', 'a\nb', 'a\rb']
  for (const s of refused) t.not(textProblem(s), null, `${JSON.stringify(s)} is refused in one line`)
  const kept = ['', 'café', 'Zoë & Co. — 50% off!', '日本語', 'مرحبا', '\uD83D\uDE00 emoji', 'O\'Brien "quoted" <b>', 'a\u200Fb (a mark, not an override)', '=SUM(1,2)']
  for (const s of kept) t.equal(textProblem(s), null, `${JSON.stringify(s)} is kept`)
  t.equal(textProblem('two\nlines\tand\r\n', 'multiline'), null, 'multi-line text keeps tab, line feed and carriage return')
  t.not(textProblem('a\u0000', 'multiline'), null, 'but never NUL')
  t.not(textProblem('\uD800', 'multiline'), null, 'nor a lone surrogate')
  t.match(textProblem('ab\u0000'), /NUL character \(U\+0000\); found at character 3/)
  // a name must show something: minLength counts spaces and invisible characters
  for (const s of ['   ', '\u3000', '\uFEFF', '\u200B\u200C\u200D', '\u00A0\u2060', ' \u200E ']) {
    t.match(textProblem(s, 'name'), /visible character/, `${JSON.stringify(s)} is not a name`)
    t.equal(textProblem(s), null, `${JSON.stringify(s)} is still one line of text`)
  }
  for (const s of ['Zoë', ' Bristol Pound ', '日本語', '\uD83D\uDE00', '\u200Bx']) t.equal(textProblem(s, 'name'), null, `${JSON.stringify(s)} is a name`)
  t.not(textProblem('a\u0000', 'name'), null, 'a name is one line of text too')
})

t.test('hardenText reaches every string, nested, in unions and in keys, without touching the route schema', async (t) => {
  const schema = {
    type: 'object',
    properties: {
      a: { type: 'string' },
      b: { anyOf: [{ type: 'string', format: 'uuid' }, { type: 'null' }] },
      c: { type: 'array', items: { type: 'object', properties: { d: { type: ['string', 'null'] } } } },
      m: { type: 'object', patternProperties: { '^.*$': { type: 'string', 'x-text': 'multiline' } } },
      e: { type: 'string', enum: ['x', 'y'], default: 'x' },
    },
    additionalProperties: false,
  }
  const copy = JSON.parse(JSON.stringify(schema))
  const h = hardenText(schema) as any
  t.same(schema, copy, 'the original is unchanged (openapi.yaml is generated from it)')
  t.equal(h.properties.a['x-text'], 'line')
  t.equal(h.properties.b.anyOf[0]['x-text'], 'line')
  t.equal(h.properties.c.items.properties.d['x-text'], 'line')
  t.equal(h.properties.m.patternProperties['^.*$']['x-text'], 'multiline', 'an explicit rule is kept')
  t.same(h.properties.m.propertyNames, { type: 'string', 'x-text': 'line' }, 'keys of the client\'s choosing are text too')
  t.equal(h.propertyNames, undefined, 'a closed object needs no key rule')
  t.same(h.properties.e.enum, ['x', 'y'])
})

type Seg = string | number
interface Doc { paths: Record<string, Record<string, any>>, components?: { schemas?: Record<string, any> } }

/** Every path to a string in a request body schema, and every key of an object that takes keys of the client's choosing. */
function stringPaths (schema: any, doc: Doc, at: Seg[] = [], depth = 0, want: (s: any) => boolean = () => true): Seg[][] {
  if (schema == null || depth > 8) return []
  if (typeof schema.$ref === 'string') return stringPaths(doc.components?.schemas?.[schema.$ref.split('/').pop()], doc, at, depth + 1, want)
  const out: Seg[][] = []
  const types = [schema.type].flat()
  if (types.includes('string') && want(schema)) out.push(at)
  for (const branch of [...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])]) out.push(...stringPaths(branch, doc, at, depth + 1, want))
  for (const [name, s] of Object.entries(schema.properties ?? {})) out.push(...stringPaths(s, doc, [...at, name], depth + 1, want))
  if (schema.items != null) out.push(...stringPaths(schema.items, doc, [...at, 0], depth + 1, want))
  const open = schema.additionalProperties ?? Object.values(schema.patternProperties ?? {})[0]
  if (open != null && typeof open === 'object') {
    out.push(...stringPaths(open, doc, [...at, 'k'], depth + 1, want))
    // a key of the client's choosing is held to the one-line rule (hardenText's propertyNames)
    if (want({ type: 'string', 'x-text': 'line' })) out.push([...at, 'bad\u0000key'])
  }
  const seen = new Set<string>()
  return out.filter(p => { const k = JSON.stringify(p); if (seen.has(k)) return false; seen.add(k); return true })
}

function bodyWith (path: Seg[], value: string): unknown {
  if (path.length === 0) return value
  const [head, ...rest] = path
  if (typeof head === 'number') return [bodyWith(rest, value)]
  // a bad key holds a harmless value; any other path ends in the bad value
  return { [head]: head.includes('\u0000') ? 'v' : bodyWith(rest, value) }
}

const pointerOf = (path: Seg[]) => '/' + path.map(String).join('/')

t.test('every text field of every route answers 422 naming the field, whatever the caller', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const doc = loadOpenApi() as unknown as Doc
  const BAD = 'a\u0000b'
  let fields = 0
  const found = (body: any, pointer: string): boolean => {
    const problems = [body, ...((body?.items ?? []) as any[]).map((x: any) => x.problem)].filter(p => p?.errors != null)
    return problems.some(p => p.errors.some((e: any) => (e.pointer === pointer || e.pointer.endsWith(pointer)) && /must not contain/.test(e.detail)))
  }
  const fill = (template: string, bad?: string) => template.replace(/\{([^}]+)\}/g, (_, name: string) =>
    name === bad ? encodeURIComponent(BAD) : name === 'code' ? s.code : randomUUID())

  for (const [template, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const M = method.toUpperCase()
      // the body
      const schema = op.requestBody?.content?.['application/json']?.schema
      for (const path of schema == null ? [] : stringPaths(schema, doc)) {
        fields++
        const r = await ctx.call(M, fill(template), { token: ctx.issuerToken, key: randomUUID(), body: bodyWith(path, BAD) })
        const where = `${M} ${template} body ${pointerOf(path).replace('\u0000', '\\u0000')}`
        t.ok(r.status === 422 || (r.status === 200 && Array.isArray(r.body.items)), `${where}: refused (${r.status})`)
        t.ok(found(r.body, pointerOf(path).replace(/^\/items\/0/, '')), `${where}: the problem names the field`)
      }
      // query and path parameters, and headers
      for (const p of (op.parameters ?? []) as any[]) {
        if (![p.schema?.type].flat().includes('string')) continue
        fields++
        const where = `${M} ${template} ${p.in} ${p.name}`
        let r
        if (p.in === 'query') r = await ctx.call(M, `${fill(template)}?${p.name}=${encodeURIComponent(BAD)}`, { token: ctx.issuerToken, key: randomUUID() })
        else if (p.in === 'path') r = await ctx.call(M, fill(template, p.name), { token: ctx.issuerToken, key: randomUUID() })
        else if (p.in === 'header') {
          // a byte a real client can send in a header (NUL cannot cross Node's HTTP parser): a C1 control
          // a valid body, so the header is what the schema refuses (Fastify checks the body before the headers)
          const bodies: Record<string, unknown> = {
            '/v1/currencies/{code}/payments': { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
            '/v1/currencies/{code}/issuances': { toAccount: s.member.accountId, amount: '1.00', sterlingReference: 'x' },
            '/v1/currencies/{code}/redemptions': { fromAccount: s.business.accountId, amount: '1.00' },
            '/v1/currencies/{code}/notes/sales': { amount: '5.00', denominations: { 5: 1 }, sterlingReference: 'x' },
            '/v1/currencies/{code}/notes/deposits': { toAccount: s.member.accountId, amount: '5.00', denominations: { 5: 1 } },
            '/v1/currencies/{code}/notes/buybacks': { business: s.business.id, amount: '5.00', denominations: { 5: 1 }, sterlingReference: 'x' },
            '/v1/currencies/{code}/notes/withdrawals': { amount: '1.00', denominations: { 1: 1 }, reason: 'worn', sterlingReference: 'x' },
            '/v1/currencies/{code}/payment-requests': { toAccount: s.business.accountId, amount: '1.00' },
            '/v1/payment-requests/{id}/payments': { fromAccount: s.member.accountId, channel: 'app' },
            '/v1/accounts/{id}/standing-orders': { toAccount: s.business.accountId, amount: '1.00', reference: 'r', schedule: { every: 'week', day: 1 }, startsOn: '2030-01-07' },
          }
          // the SMS webhook is off without SMS_AUTH_TOKEN (404); signed, a signature that does not match is 403 and
          // changes nothing (test/sms/inbound.test.ts)
          if (template === '/v1/sms/inbound') continue
          const req = M === 'POST' ? bodies[template] : undefined
          r = await ctx.call(M, fill(template), { token: ctx.issuerToken, headers: { [p.name]: 'key\u0085' }, body: req })
        } else continue
        t.equal(r.status, 422, `${where}: 422 (${String(r.body?.code)})`)
        t.equal(r.body.code, 'INVALID_TEXT', `${where}: INVALID_TEXT`)
        t.ok(found(r.body, `/${p.name}`), `${where}: the problem names the field`)
      }
    }
  }
  t.ok(fields > 60, `${fields} text fields attacked`)
  // a name that shows nothing (x-text: name in openapi.yaml) is refused the same way, wherever it is asked for
  const blank = '\u3000 \u200B\uFEFF'
  let names = 0
  for (const [template, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const schema = op.requestBody?.content?.['application/json']?.schema
      for (const path of schema == null ? [] : stringPaths(schema, doc, [], 0, x => x['x-text'] === 'name')) {
        names++
        const where = `${method.toUpperCase()} ${template} body ${pointerOf(path)}`
        const r = await ctx.call(method.toUpperCase(), fill(template), { token: ctx.issuerToken, key: randomUUID(), body: bodyWith(path, blank) })
        t.equal(r.status, 422, `${where}: a blank name is refused (${r.status})`)
        t.ok((r.body?.errors ?? []).some((e: any) => e.pointer === pointerOf(path) && /visible character/.test(e.detail)), `${where}: the problem names the field`)
      }
    }
  }
  t.ok(names >= 7, `${names} name fields attacked`)
  // nothing was written by any of it
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: ctx.issuerToken })).body.balance, '0.00')
})
