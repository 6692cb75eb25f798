import dns from 'node:dns'
import http from 'node:http'
import os from 'node:os'
import t from 'tap'
import { checkAddresses, NAME_REFUSED, UrlRefused } from '../../src/webhooks/address.js'
import { WebhookWorker } from '../../src/webhooks/worker.js'
import { buildTestApp, issue, registerBusiness, scenario } from '../helper.js'
import { dnsServer, type Answer } from './dns-server.js'

// Webhook hosts are resolved by the service's own DNS client, pointed here at a name server the test runs
// (WEBHOOK_DNS_SERVERS), so a business can be given a host whose name server never answers. The system's lookup
// (getaddrinfo) runs at most two at a time per process: had webhook hosts gone through it, two such hosts would
// hold every other lookup of the process, the database's host name included, for the resolver's whole timeout.

async function receiver (t: any) {
  const got: string[] = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => { body += c })
    req.on('end', () => { got.push(body); res.statusCode = 204; res.end() })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => { resolve() })))
  return { port: (server.address() as { port: number }).port, got }
}

// a host name refused says no more than this, whatever the cause (here: its name server did not answer)
const NEVER_ANSWERED = NAME_REFUSED

t.test('a host whose name server never answers delays its own registration only: another business registers, the process\'s own lookups go on', async (t) => {
  const ns = await dnsServer(t, (name): Answer => (name === 'shop.test' ? ['127.0.0.1'] : name.endsWith('.silent.test') ? 'silent' : 'nxdomain'))
  const ctx = await buildTestApp(t, {
    WEBHOOK_ALLOW_HTTP: '1', WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_DELIVERY: '0', WEBHOOK_DNS_SERVERS: ns.server, WEBHOOK_DNS_TIMEOUT_MS: 1000,
  })
  const s = await scenario(ctx)
  const other = await registerBusiness(ctx, s.code, { tradingName: 'Next Door', sector: 'food', postcode: 'BS1 4DJ' })
  const rx = await receiver(t)

  const order: string[] = []
  const slow = [0, 1, 2, 3].map(async (i) => {
    const r = await ctx.call('POST', '/v1/webhooks', { token: s.business.token, body: { url: `http://h${i}.silent.test/hooks`, events: ['payment.received'] } })
    order.push(`silent ${i}`)
    return r
  })
  // every one of the four is waiting on its name server (an A and an AAAA question each)
  await ns.askedFor(/\.silent\.test$/, 8)
  await dns.promises.lookup('localhost')
  order.push('the process\'s own lookup')
  const ok = await ctx.call('POST', '/v1/webhooks', { token: other.token, body: { url: `http://shop.test:${rx.port}/hooks`, events: ['payment.received'] } })
  order.push('another business\'s registration')
  t.equal(ok.status, 201, ok.body.detail)

  const refused = await Promise.all(slow)
  t.same(order.slice(0, 2), ['the process\'s own lookup', 'another business\'s registration'], 'neither waited for the silent name server')
  for (const r of refused) t.match(r, { status: 422, body: { code: 'VALIDATION_FAILED', errors: [{ pointer: '/url', detail: NEVER_ANSWERED }] } })
  const mine = await ctx.call('GET', '/v1/webhooks', { token: s.business.token })
  t.equal(mine.body.items.length, 0, 'nothing was stored for the refused hosts')
  t.ok(ns.asked.some(q => q.name === 'shop.test' && q.type === 1), 'the other host was resolved by the configured name server')
})

t.test('at delivery: a host whose name server stops answering fails its own attempt; another business\'s delivery goes out beside it', async (t) => {
  const names = new Map<string, Answer>([['flip.test', ['127.0.0.1']], ['shop.test', ['127.0.0.1']]])
  const ns = await dnsServer(t, name => names.get(name) ?? 'nxdomain')
  const ctx = await buildTestApp(t, {
    WEBHOOK_ALLOW_HTTP: '1', WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_DELIVERY: '0', WEBHOOK_DNS_SERVERS: ns.server, WEBHOOK_DNS_TIMEOUT_MS: 300,
  })
  const s = await scenario(ctx)
  const other = await registerBusiness(ctx, s.code, { tradingName: 'Next Door', sector: 'food', postcode: 'BS1 4DJ' })
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const flipRx = await receiver(t)
  const shopRx = await receiver(t)
  const flip = await ctx.call('POST', '/v1/webhooks', { token: s.business.token, body: { url: `http://flip.test:${flipRx.port}/hooks`, events: ['payment.received'] } })
  const shop = await ctx.call('POST', '/v1/webhooks', { token: other.token, body: { url: `http://shop.test:${shopRx.port}/hooks`, events: ['payment.received'] } })
  t.equal(flip.status, 201)
  t.equal(shop.status, 201)

  // registered while it answered; now its name server is silent
  names.set('flip.test', 'silent')
  for (const [to, key] of [[s.business.accountId, 'dns-1'], [other.accountId, 'dns-2']]) {
    const paid = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
      token: s.member.token, key, body: { fromAccount: s.member.accountId, toAccount: to, amount: '1.00', channel: 'app' },
    })
    t.equal(paid.status, 201)
  }
  const worker = new WebhookWorker({
    pool: ctx.app.pool, log: { warn: () => {}, info: () => {} },
    policy: { allowHttp: true, allowPrivate: true, dnsServers: [ns.server], dnsTimeoutMs: 300 },
    now: () => new Date(Date.now() + 1000), random: () => 0.5, intervalMs: 0, timeoutMs: 10000, giveUpHours: 72,
    disableAfterFailures: 20, disableAfterHours: 24,
  })
  t.equal(await worker.runOnce(), 2)
  const log = async (id: string, token: string) => (await ctx.call('GET', `/v1/webhooks/${id}/deliveries`, { token })).body.items[0]
  const theirs = await log(shop.body.id as string, other.token)
  const silent = await log(flip.body.id as string, s.business.token)
  t.match(theirs, { status: 'delivered', attempts: 1, lastStatusCode: 204 })
  t.equal(shopRx.got.length, 1)
  t.match(silent, { status: 'pending', attempts: 1, lastStatusCode: null, lastError: NEVER_ANSWERED })
  t.equal(flipRx.got.length, 0)
  t.ok(theirs.lastLatencyMs < silent.lastLatencyMs, `the other delivery (${String(theirs.lastLatencyMs)} ms) did not wait for the silent name server (${String(silent.lastLatencyMs)} ms)`)
})

const host = os.hostname().toLowerCase()
const hostKnown = await dns.promises.lookup(host).then(() => true, () => false)

t.test('names only the hosts file knows: looked up there only where private addresses are allowed, and only once DNS says the name does not exist', {
  skip: hostKnown ? false : `${host} is not in this machine's hosts file`,
}, async (t) => {
  const ns = await dnsServer(t, () => 'nxdomain')
  const config = { WEBHOOK_ALLOW_HTTP: '1', WEBHOOK_DELIVERY: '0', WEBHOOK_DNS_SERVERS: ns.server } as const
  const open = await buildTestApp(t, { ...config, WEBHOOK_ALLOW_PRIVATE: '1' })
  const a = await scenario(open)
  const ok = await open.call('POST', '/v1/webhooks', { token: a.business.token, body: { url: `http://${host}:8080/hooks`, events: ['payment.received'] } })
  t.equal(ok.status, 201, 'found in the hosts file after the name server said no such name')
  t.ok(ns.asked.some(q => q.name === host), 'DNS was asked first')

  const strict = await buildTestApp(t, { ...config, WEBHOOK_ALLOW_PRIVATE: '0' })
  const b = await scenario(strict)
  const no = await strict.call('POST', '/v1/webhooks', { token: b.business.token, body: { url: `http://${host}:8080/hooks`, events: ['payment.received'] } })
  t.match(no, { status: 422, body: { errors: [{ pointer: '/url', detail: NAME_REFUSED }] } })
})

t.test('a host name refused for any cause is told the same, so registering URLs maps no internal names; the log says which', async (t) => {
  // Before, a name that did not resolve ("does not resolve (ENOTFOUND)"), one that resolved to an inside address
  // ("one in a private range", "a linkLocal range") and one whose name server was silent were told apart: a
  // prober could learn which internal names exist and roughly where they point.
  const ns = await dnsServer(t, (name): Answer => (name === 'db.inside.test'
    ? ['10.20.30.40']
    : name === 'metadata.inside.test' ? ['169.254.169.254'] : name === 'quiet.inside.test' ? 'silent' : 'nxdomain'))
  const ctx = await buildTestApp(t, { WEBHOOK_DELIVERY: '0', WEBHOOK_DNS_SERVERS: ns.server, WEBHOOK_DNS_TIMEOUT_MS: 100 })
  const s = await scenario(ctx)
  const logged: Array<Record<string, unknown>> = []
  const log = ctx.app.log as unknown as { info: (o: unknown, m: string) => void }
  const info = log.info
  log.info = (o: unknown, m: string) => { if (m.startsWith('webhooks:')) logged.push({ ...(o as object), msg: m }) }
  t.teardown(() => { log.info = info })

  const names = ['db.inside.test', 'metadata.inside.test', 'nowhere.inside.test', 'quiet.inside.test']
  const answers = []
  for (const name of names) {
    const r = await ctx.call('POST', '/v1/webhooks', { token: s.business.token, body: { url: `https://${name}/hooks`, events: ['payment.received'] } })
    t.not(r.text.includes('10.20.30.40') || r.text.includes('169.254') || /private|linkLocal|resolve \(|ENOTFOUND|name server/.test(r.text), true, `${name}: no cause in the answer`)
    answers.push({ status: r.status, type: r.body.type, code: r.body.code, detail: r.body.detail, errors: r.body.errors })
  }
  t.same(answers[0], { status: 422, type: answers[0].type, code: 'VALIDATION_FAILED', detail: NAME_REFUSED, errors: [{ pointer: '/url', detail: NAME_REFUSED }] })
  for (let i = 1; i < names.length; i++) t.same(answers[i], answers[0], `${names[i]} is refused exactly as ${names[0]}`)
  t.equal((await ctx.call('GET', '/v1/webhooks', { token: s.business.token })).body.items.length, 0, 'nothing was stored')

  // the service's log says which, with the request id
  t.same(logged.map(l => [l.msg, l.reason]), [
    ['webhooks: a url refused at registration', 'db.inside.test resolves to a refused address: 10.20.30.40 is in a private range'],
    ['webhooks: a url refused at registration', 'metadata.inside.test resolves to a refused address: 169.254.169.254 is in a linkLocal range'],
    ['webhooks: a url refused at registration', 'nowhere.inside.test does not resolve (ENOTFOUND, ENOTFOUND)'],
    ['webhooks: a url refused at registration', 'quiet.inside.test does not resolve (its name server did not answer in time)'],
  ])
  t.ok(logged.every(l => typeof l.requestId === 'string' && l.participantId === s.business.id), 'with the request and the owner')

  // the same check, as the delivery's lookup makes it: the same message, the cause in `reason`
  const policy = { allowHttp: false, allowPrivate: false, dnsServers: [ns.server], dnsTimeoutMs: 100 }
  for (const name of names) {
    const err = await checkAddresses(new URL(`https://${name}/`), policy).then(() => null, (e: unknown) => e)
    t.ok(err instanceof UrlRefused && err.message === NAME_REFUSED && err.reason?.startsWith(name), `${name}: ${String(err)}`)
  }

  // an address written in the url is the caller's own: it is named
  const lit = await ctx.call('POST', '/v1/webhooks', { token: s.business.token, body: { url: 'https://10.20.30.40/hooks', events: ['payment.received'] } })
  t.match(lit, { status: 422, body: { errors: [{ pointer: '/url', detail: /10\.20\.30\.40 is in a private range/ }] } })
})

t.test('a name server list the resolver cannot use stops the start', async (t) => {
  await t.rejects(buildTestApp(t, { WEBHOOK_DNS_SERVERS: 'not-an-address' }), /WEBHOOK_DNS_SERVERS: Invalid IP address: not-an-address/)
})
