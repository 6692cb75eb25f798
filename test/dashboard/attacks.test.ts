import net from 'node:net'
import t from 'tap'
import { freePort } from '../../support/ports.js'
import { buildTestApp, scenario } from '../helper.js'

// Attacks on the HTML pages the service serves (/dashboard, /pay/{id}, /till) that need no browser: what the
// served HTML itself allows before, or without, its script.

t.test('a login form submitted before its script has run never puts the password in a URL', async (t) => {
  // The pages' scripts are deferred: until dashboard.js has run, its login form was on screen and submitted the
  // browser's own way, a GET of /dashboard?username=...&password=..., so the password went into the address bar,
  // the history and every access log on the way. Each form with a password is method="post" (a POST body is
  // not logged and not kept in the history), and its view stays hidden until the page's script shows it.
  const ctx = await buildTestApp(t)
  for (const url of ['/dashboard', '/till', '/pay/0190a000-0000-7000-8000-000000000000']) {
    const html = (await ctx.app.inject({ method: 'GET', url })).body
    const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)].filter(m => /type="password"/.test(m[2]))
    t.ok(forms.length > 0, `${url} has a login form`)
    for (const [, attrs] of forms) t.match(attrs, /\smethod="post"/, `${url}: the login form posts`)
    const view = /<section id="login-view"([^>]*)>/.exec(html)
    t.match(view?.[1] ?? '', /\shidden(\s|$)/, `${url}: the login view is hidden until the script shows it`)
  }
})

t.test('answers to an authenticated caller are never stored by a browser or a proxy', async (t) => {
  // A balance, a statement or a payment request with its payer's name was sent with no Cache-Control: a browser
  // keeps such answers in its disk cache, where the next person on a shared till or library computer can find
  // them after logging out. Every answer to a request with credentials says no-store, unless its route chose
  // (the QR images: private, for five minutes, so a till does not fetch them twice).
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const ask = await ctx.call('POST', `/v1/currencies/${s.code}/payment-requests`, {
    token: s.business.token, key: 'cache-1', body: { toAccount: s.business.accountId, amount: '1.00', reference: 'for you' },
  })
  t.equal(ask.status, 201)
  const id = String(ask.body.id)
  for (const [url, token] of [
    [`/v1/accounts/${s.member.accountId}`, s.member.token],
    [`/v1/accounts/${s.member.accountId}/statement`, s.member.token],
    [`/v1/payment-requests/${id}`, s.member.token],
    [`/v1/participants/${s.member.id}`, s.member.token],
    [`/v1/accounts/${s.business.accountId}`, s.member.token], // refused: the refusal is not kept either
  ]) {
    for (const method of ['GET', 'HEAD'] as const) {
      const r = await ctx.app.inject({ method, url, headers: { authorization: `Bearer ${token}` } })
      t.equal(r.headers['cache-control'], 'no-store', `${method} ${url} (${r.statusCode}): no-store`)
    }
  }
  const qr = await ctx.app.inject({ method: 'GET', url: `/v1/payment-requests/${id}/qr.svg`, headers: { authorization: `Bearer ${s.member.token}` } })
  t.equal(qr.headers['cache-control'], 'private, max-age=300', 'a route\'s own choice is kept')
  // the public pages and files are still revalidated, not forbidden from caches
  for (const url of ['/dashboard', '/pay/x', '/till', '/dashboard/dashboard.js']) {
    t.equal((await ctx.app.inject({ method: 'GET', url })).headers['cache-control'], 'no-cache', url)
  }
})

t.test('a URL refused before routing still gets the security headers', async (t) => {
  // A path that does not decode (/pay/%zz) or whose segment is past maxParamLength is answered by Fastify's
  // frameworkErrors before any hook runs, so helmet's headers were missing from exactly the answers an attacker
  // can provoke at will; they now carry the same policy as every other answer.
  const ctx = await buildTestApp(t)
  for (const url of ['/pay/%zz', '/pay/%E0%A4%A', `/pay/${'a'.repeat(300)}`, '/dashboard/%zz']) {
    for (const method of ['GET', 'HEAD', 'POST'] as const) {
      const r = await ctx.app.inject({ method, url })
      t.ok(r.statusCode === 400 || r.statusCode === 414 || r.statusCode === 404, `${method} ${url.slice(0, 20)}: ${r.statusCode}`)
      t.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/, `${method} ${url.slice(0, 20)}: a policy`)
      t.equal(r.headers['x-frame-options'], 'DENY')
      t.equal(r.headers['x-content-type-options'], 'nosniff')
      t.equal(r.headers['referrer-policy'], 'no-referrer')
    }
  }
})

t.test('HTTP so malformed that Node refuses it gets a problem with the security headers, over a real socket', async (t) => {
  // clientErrorHandler writes these answers to the socket itself, past Fastify and helmet.
  const ctx = await buildTestApp(t)
  const port = await freePort()
  await ctx.app.listen({ host: '127.0.0.1', port })
  const raw = async (request: string) => await new Promise<string>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let answer = ''
    socket.on('data', (d) => { answer += d.toString('latin1') })
    socket.on('close', () => { resolve(answer) })
    socket.on('error', () => { resolve(answer) })
    socket.setTimeout(5000, () => { socket.destroy(); reject(new Error('no answer')) })
    socket.write(request)
  })
  for (const [what, request, status] of [
    ['a bad request line', 'GARBAGE / HTTP/9.9 what\r\n\r\n', 400],
    ['a header block past the limit', `GET /dashboard HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  ] as const) {
    const answer = await raw(request)
    const [head, body] = answer.split('\r\n\r\n')
    t.match(head, new RegExp(`^HTTP/1.1 ${status} `), `${what}: ${status}`)
    t.match(head, /\r\ncontent-type: application\/problem\+json/i)
    t.match(head, /\r\ncontent-security-policy: default-src 'self';.*frame-ancestors 'none'/i, `${what}: the policy`)
    t.match(head, /\r\nx-content-type-options: nosniff/i)
    t.match(head, /\r\nx-frame-options: DENY/i)
    t.equal(JSON.parse(body).status, status)
  }
})
