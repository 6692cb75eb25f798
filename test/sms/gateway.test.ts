import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { IDLE_REPLIES_PER_DAY } from '../../src/domain/sms.js'
import { outboxRelay } from '../../src/sms/gateway.js'
import { enrol, inbox, issue, scenario, smsApp, text } from './fixtures.js'

// The real gateway's adapter, against a stand-in of its REST API on 127.0.0.1: nothing leaves the machine.

interface Got { path: string, auth: string, form: Record<string, string> }

async function fakeGateway (t: Parameters<typeof smsApp>[0]) {
  const got: Got[] = []
  const plan: number[] = [] // statuses to answer, in order; then 201
  let n = 0
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      got.push({ path: req.url ?? '', auth: req.headers.authorization ?? '', form: Object.fromEntries(new URLSearchParams(body)) })
      const status = plan.shift() ?? 201
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(status === 201 ? JSON.stringify({ sid: `SMout${n++}`, status: 'queued' }) : JSON.stringify({ code: 21211, message: 'refused' }))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise(resolve => server.close(resolve)) })
  return { got, plan, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

t.test('queued texts are handed to the gateway\'s Messages API, marked sent; refusals are retried or failed', async (t) => {
  const gw = await fakeGateway(t)
  const s = await smsApp(t, { SMS_ACCOUNT_SID: 'ACtest0001', SMS_FROM: '+447700900000', SMS_API_URL: gw.url, SMS_SEND_INTERVAL_MS: 3_600_000 })
  const { ctx, db } = s
  const relay = ctx.app.smsRelay!
  t.ok(relay, 'configured, so the relay runs')
  const sc = await scenario(ctx)
  await enrol(s, sc.member, '+447911123456')
  await text(ctx, '+447911123456', 'help')

  t.same(await relay.round(), { sent: 2, failed: 0, retry: 0 }, 'the code and the reply')
  t.equal(gw.got.length, 2)
  t.equal(gw.got[0].path, '/2010-04-01/Accounts/ACtest0001/Messages.json')
  t.equal(gw.got[0].auth, `Basic ${Buffer.from('ACtest0001:gateway-auth-token-0123456789').toString('base64')}`)
  t.same(gw.got[0].form, { To: '+447911123456', From: '+447700900000', Body: `Your code to confirm this number for text payments is ${s.lastCode()}. It expires in 10 minutes.` })
  t.match(gw.got[1].form.Body, /^Pay by text/)
  const rows = (await db.query('SELECT status, gateway_id, attempts, sent_at IS NOT NULL AS sent FROM sms_outbox ORDER BY id')).rows
  t.same(rows, [{ status: 'sent', gateway_id: 'SMout0', attempts: 1, sent: true }, { status: 'sent', gateway_id: 'SMout1', attempts: 1, sent: true }])
  t.same(await relay.round(), { sent: 0, failed: 0, retry: 0 }, 'nothing is sent twice')
  const view = await ctx.call('GET', '/v1/sms/outbox?status=sent', { token: ctx.issuerToken })
  t.equal(view.body.items.length, 2)

  // a busy gateway (503): tried again after a pause; a refusal for good (400, e.g. a bad number): failed at once
  gw.plan.push(503, 400)
  await text(ctx, '+447911123456', 'help')
  await text(ctx, '+447911123456', 'help')
  t.same(await relay.round(), { sent: 0, failed: 1, retry: 1 })
  const [busy, refused] = (await db.query('SELECT status, attempts, last_error, next_attempt_at > now() AS later FROM sms_outbox WHERE status <> \'sent\' ORDER BY id')).rows
  t.match(busy, { status: 'queued', attempts: 1, last_error: /503/, later: true })
  t.match(refused, { status: 'failed', attempts: 1, last_error: /400/ })
  t.same(await relay.round(), { sent: 0, failed: 0, retry: 0 }, 'not before its pause is over')
  await db.query('UPDATE sms_outbox SET next_attempt_at = now() WHERE status = \'queued\'')
  t.same(await relay.round(), { sent: 1, failed: 0, retry: 0 })
})

t.test('one number\'s backlog of texts does not hold up another\'s receipt: each round takes the numbers in turn, participants first', async (t) => {
  // Anyone can text the scheme's number, and every text is answered. Sent oldest first, 60 texts from one phone
  // queued 60 replies ahead of a member's "Paid" and the shop's receipt, which waited three rounds of 20 (the shop
  // hands over the goods on that receipt). Now a round takes each number's oldest text first, and texts to
  // participants before replies to numbers no participant has.
  const gw = await fakeGateway(t)
  const s = await smsApp(t, { SMS_ACCOUNT_SID: 'ACtest0001', SMS_FROM: '+447700900000', SMS_API_URL: gw.url, SMS_SEND_INTERVAL_MS: 3_600_000 })
  const { ctx, db } = s
  const relay = ctx.app.smsRelay!
  const sc = await scenario(ctx)
  await ctx.call('PATCH', `/v1/participants/${sc.business.id}`, { token: sc.business.token, body: { textCode: 'montpelier' } })
  await issue(ctx, sc.code, sc.member.accountId, '50.00')
  await enrol(s, sc.member, '+447911123456')
  await enrol(s, sc.business, '+447912345678', '9999')
  t.same(await relay.round(), { sent: 2, failed: 0, retry: 0 }, 'the two codes')
  // a flood from one registered number (the member's own balance, asked 30 times) and from strangers' numbers (each
  // answered IDLE_REPLIES_PER_DAY times a day, test/sms/inbound.test.ts)
  const strangers = ['+447900000001', '+447900000002', '+447900000003', '+447900000004', '+447900000005']
  for (const n of strangers) for (let i = 0; i < IDLE_REPLIES_PER_DAY; i++) await text(ctx, n, 'help')
  for (let i = 0; i < 30; i++) await text(ctx, '+447911123456', 'bal 1234')
  await text(ctx, '+447911123456', 'pay montpelier 5 1234')
  t.match((await inbox(db, '+447912345678')).at(-1), { purpose: 'receipt' })
  gw.got.length = 0
  t.same(await relay.round(), { sent: 20, failed: 0, retry: 0 })
  const to = gw.got.map(g => g.form.To)
  t.ok(to.includes('+447912345678'), 'the shop\'s receipt goes out in the first round')
  t.equal(to.filter(n => strangers.includes(n)).length, 0, 'replies to a number no participant has wait for participants\' texts')
  // everything is sent in the end, each number's texts in the order they were queued
  while ((await relay.round()).sent > 0);
  t.equal(gw.got.length, strangers.length * IDLE_REPLIES_PER_DAY + 32)
  const member = gw.got.filter(g => g.form.To === '+447911123456').map(g => g.form.Body)
  t.equal(member.length, 31)
  t.match(member.at(-1), /^Paid 5\.00 BRS/, 'a number\'s texts in their order')
})

t.test('a slow gateway: a round hands no more texts over once it has run roundMs, and the next round takes the rest', async (t) => {
  const s = await smsApp(t)
  const { ctx, db } = s
  const sc = await scenario(ctx)
  await enrol(s, sc.member, '+447911123456')
  for (let i = 0; i < 4; i++) await text(ctx, '+447911123456', 'help')
  const queued = Number((await db.query("SELECT count(*) AS n FROM sms_outbox WHERE status = 'queued'")).rows[0].n)
  t.equal(queued, 5, 'the code and four replies')
  // each send takes 6 s of the round's clock
  let now = 0
  const handed: string[] = []
  const slow = { deliver: async (to: string, body: string) => { now += 6_000; handed.push(body); return `SMslow${handed.length}` } }
  const relay = outboxRelay(ctx.app.pool, slow, { roundMs: 15_000, clock: () => now })
  t.same(await relay.round(), { sent: 3, failed: 0, retry: 0 }, 'sends at 0, 6 and 12 s; none at 18 s')
  t.same((await db.query('SELECT status, attempts FROM sms_outbox ORDER BY id')).rows.map(r => `${r.status}/${r.attempts}`),
    ['sent/1', 'sent/1', 'sent/1', 'queued/0', 'queued/0'], 'the rest untouched: no attempt counted, no pause')
  t.same(await relay.round(), { sent: 2, failed: 0, retry: 0 }, 'the next round takes them')
  t.equal(handed.length, 5, 'five sends in all, none twice')
})

t.test('the adapter is off unless configured, and configured whole or not at all', async (t) => {
  const s = await smsApp(t)
  t.equal(s.ctx.app.smsRelay, null)
  t.throws(() => loadConfig({}, { SMS_ACCOUNT_SID: 'ACx' }), /SMS_ACCOUNT_SID and SMS_FROM/)
  t.throws(() => loadConfig({}, { SMS_ACCOUNT_SID: 'ACx', SMS_FROM: '+447700900000' }), /SMS_AUTH_TOKEN/)
  t.throws(() => loadConfig({}, { SMS_FROM: 'not a number', SMS_ACCOUNT_SID: 'ACx', SMS_AUTH_TOKEN: 'long-enough' }), /SMS_FROM/)
  t.ok(loadConfig({}, { SMS_ACCOUNT_SID: 'ACx', SMS_FROM: 'MGservice1', SMS_AUTH_TOKEN: 'long-enough' }))
})
