import fs from 'node:fs'
import type { AddressInfo } from 'node:net'
import { OpenAPIBackend, type Request as OabRequest } from 'openapi-backend'
import t from 'tap'
import { buildTestApp, ISSUER } from './helper.js'
import { loadOpenApi } from './openapi-validator.js'

// The README's walk through the API, replayed as a client would run it, with every request and every response
// checked by a validator that openapi-backend (a maintained library) builds from openapi.yaml: not by the
// project's own schemas, so what a generated client or a validating proxy makes of the contract is what is tested.
// The walk is read from README.md itself (the sh block that logs in, pays and reads statements): a change to the
// README that the service or the contract does not follow fails here.

/** What the README leaves for the reader to fill in, and where the replay takes it from. */
const PLACEHOLDERS: Record<string, string> = {
  'PASSWORD-PRINTED-AT-START': ISSUER.password,
}
const USERNAMES: Record<string, string> = { issuer: ISSUER.username }

// ---- a small shell reader: words with quotes, $VAR and "$VAR" expansion, \ line continuations, # comments --------
type Word = string
function commands (script: string, vars: Record<string, string>): Word[][] {
  const out: Word[][] = []
  let words: Word[] = []
  let word: string | null = null
  const push = () => { if (word != null) words.push(word); word = null }
  const end = () => { push(); if (words.length > 0) out.push(words); words = [] }
  const expand = (s: string, i: number): [string, number] => {
    const m = /^\$(\{(\w+)\}|(\w+))/.exec(s.slice(i))
    if (m == null) return ['$', i + 1]
    const name = m[2] ?? m[3]
    return [vars[name] ?? `$${name}`, i + m[0].length]
  }
  for (let i = 0; i < script.length;) {
    const c = script[i]
    if (c === '\\' && script[i + 1] === '\n') { i += 2; continue }
    if (c === '#' && word == null) { while (i < script.length && script[i] !== '\n') i++; continue }
    if (c === '\n' || c === ';') { end(); i++; continue }
    if (c === ' ' || c === '\t') { push(); i++; continue }
    if (c === "'") { const j = script.indexOf("'", i + 1); word = (word ?? '') + script.slice(i + 1, j); i = j + 1; continue }
    if (c === '"') {
      let s = ''
      i++
      while (script[i] !== '"') {
        if (script[i] === '\\' && /["\\$`]/.test(script[i + 1])) { s += script[i + 1]; i += 2 } else if (script[i] === '$' && script[i + 1] !== '(') { const [v, j] = expand(script, i); s += v; i = j } else { s += script[i]; i++ }
      }
      word = (word ?? '') + s
      i++
      continue
    }
    if (c === '$' && script[i + 1] === '(') {
      // command substitution: kept as a marker with its inner text, run by the replay
      let depth = 0; let j = i + 1
      for (; j < script.length; j++) { if (script[j] === '(') depth++; if (script[j] === ')' && --depth === 0) break }
      word = (word ?? '') + `$(${script.slice(i + 2, j)})`
      i = j + 1
      continue
    }
    if (c === '$') { const [v, j] = expand(script, i); word = (word ?? '') + v; i = j; continue }
    word = (word ?? '') + c
    i++
  }
  end()
  return out
}

function walkBlock (): string {
  const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map(m => m[1])
  const walk = blocks.find(b => /\/payments/.test(b) && /\/issuances/.test(b) && /\/statement/.test(b) && /tok\(\)/.test(b))
  if (walk == null) throw new Error('README.md has no curl walk (an sh block that issues, pays and reads statements)')
  return walk
}

t.test('the README\'s walk, replayed against the service, agrees with openapi.yaml as an independent validator reads it', async (t) => {
  const ctx = await buildTestApp(t)
  await ctx.app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`
  // quick: openapi-backend's own check of the document knows OpenAPI 3.0 only and would refuse 3.1's keywords
  // (npm run lint:openapi checks the document); its request and response validators are what this test is about
  const api = new OpenAPIBackend({ definition: loadOpenApi() as never, strict: false, validate: true, quick: true })
  await api.init()

  const vars: Record<string, string> = {}
  const found: Record<string, string[]> = { payments: [] }
  const login = async (username: string, password: string) => {
    const r = await fetch(`${base}/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: USERNAMES[username] ?? username, password: PLACEHOLDERS[password] ?? password }) })
    const body = await r.json() as { accessToken: string }
    t.equal(r.status, 200, `tok ${username}: logged in`)
    return body.accessToken
  }
  let requests = 0
  let curls = 0
  /** One curl of the walk, sent and checked against openapi.yaml; its answer, parsed when JSON. */
  const curl = async (words: Word[]): Promise<any> => {
    curls++
    // curl [-s] [-X METHOD] URL [-H 'k: v']... [-d BODY]
    let method: string | null = null
    let url = ''
    let body: string | undefined
    const headers: Record<string, string> = {}
    for (let i = 1; i < words.length; i++) {
      const w = words[i]
      if (w === '-s') continue
      if (w === '-X') { method = words[++i]; continue }
      if (w === '-H') { const h = words[++i]; const k = h.slice(0, h.indexOf(':')).trim().toLowerCase(); headers[k] = h.slice(h.indexOf(':') + 1).trim(); continue }
      if (w === '-d') { body = words[++i]; continue }
      url = w
    }
    url = url.replace('PAYMENT_ID', found.payments[0] ?? 'PAYMENT_ID')
    method ??= body != null ? 'POST' : 'GET'
    const u = new URL(url.replace(/^\$B|^http:\/\/127\.0\.0\.1:3000/, base))
    const query = Object.fromEntries(u.searchParams)
    const what = `${method} ${u.pathname}`
    const req: OabRequest = { method, path: u.pathname, headers, query, body: body == null ? undefined : JSON.parse(body) }
    const op = api.matchOperation(req)
    t.ok(op != null, `${what}: an operation of openapi.yaml`)
    if (op == null) return undefined
    const vr = api.validateRequest(req, op)
    t.ok(vr.valid, `${what}: the request is valid by openapi.yaml`, { errors: vr.errors })
    const res = await fetch(u, { method, headers, body })
    requests++
    const text = await res.text()
    const ct = res.headers.get('content-type') ?? ''
    const json = ct.includes('json') && text !== '' ? JSON.parse(text) : text
    t.ok(res.status < 400, `${what}: ${res.status}`, { body: json })
    const rv = api.validateResponse(json, op, res.status)
    t.ok(rv.valid, `${what}: the ${res.status} response is valid by openapi.yaml`, { errors: rv.errors })
    const hv = api.validateResponseHeaders(Object.fromEntries(res.headers), op, { statusCode: res.status, setMatchType: 'superset' as never })
    t.ok(hv.valid, `${what}: its headers too`, { errors: hv.errors })
    if (res.status === 201 && u.pathname.endsWith('/payments') && !found.payments.includes(json.id)) found.payments.push(json.id)
    return json
  }
  const script = walkBlock()
  // one line at a time, so each assignment is in `vars` before the next line is read
  for (const line of script.replace(/\\\n/g, ' ').split(/\n(?=\S)/)) {
    for (const words of commands(line, vars)) {
      // a shell function's definition (tok, get): what it does is done here (login; a field of the answer)
      if (/^\w+\(\)$/.test(words[0])) break
      const assign = /^(\w+)=(.*)$/s.exec(words[0])
      if (assign != null && words.length === 1) {
        const [, name, value] = assign
        const sub = /^\$\(tok (\S+) (\S+)\)$/.exec(value)
        const unquote = (w: string) => w.replace(/^(['"])(.*)\1$/, '$2')
        const piped = /^\$\((curl .*)\)$/s.exec(value)
        if (sub != null) vars[name] = await login(unquote(sub[1]), unquote(sub[2]))
        else if (piped != null) {
          // NAME=$(curl ... | get FIELD): the walk takes what it needs from an answer, as a reader's shell would
          const inner = commands(piped[1], vars)[0]
          const bar = inner.indexOf('|')
          t.ok(bar > 0 && inner[bar + 1] === 'get' && inner.length === bar + 3, `${name}: a curl piped to get FIELD`)
          const json = await curl(inner.slice(0, bar))
          vars[name] = json?.[inner[bar + 2]]
          t.ok(typeof vars[name] === 'string' && vars[name] !== '', `${name} is filled in from the walk's own answer (${inner[bar + 2]})`)
        } else vars[name] = value
        continue
      }
      if (words[0] === 'curl') await curl(words)
    }
  }
  t.equal(requests, curls, 'every curl of the walk replayed')
  t.ok(requests >= 9, `${requests} requests of the walk replayed`)
})
