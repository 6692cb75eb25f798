import t from 'tap'
import { IDLE_REPLIES_PER_DAY } from '../../src/domain/sms.js'
import { IDLE_REPLIES_SQL } from '../../src/services/sms.service.js'
import { balance, buildTestApp, enrol, inbox, issue, newSid, registerBusiness, registerMember, scenario, sign, smsApp, text, TOKEN, WEBHOOK } from './fixtures.js'

// Pay by text through the gateway's webhook, signed as the gateway signs, on real PostgreSQL.

const MEMBER_PHONE = '+447911123456'
const SHOP_PHONE = '+447912345678'

async function setup (t: Parameters<typeof smsApp>[0]) {
  const s = await smsApp(t)
  const sc = await scenario(s.ctx)
  const patched = await s.ctx.call('PATCH', `/v1/participants/${sc.business.id}`, { token: sc.business.token, body: { textCode: 'montpelier' } })
  t.equal(patched.status, 200)
  t.equal(patched.body.textCode, 'MONTPELIER', 'stored upper-case')
  await issue(s.ctx, sc.code, sc.member.accountId, '50.00')
  await enrol(s, sc.member, MEMBER_PHONE)
  await enrol(s, sc.business, SHOP_PHONE, '9999')
  return { ...s, sc }
}

const count = async (db: import('pg').Pool, sql: string, params: unknown[] = []) => Number((await db.query(sql, params)).rows[0].n)

t.test('PAY: the payment goes through the ledger on channel text with its fee; payer and business are texted', async (t) => {
  const { ctx, db, sc } = await setup(t)
  const r = await text(ctx, MEMBER_PHONE, '  pAy   montpelier  12.50   1234 ')
  t.equal(r.status, 200)
  t.match(r.headers['content-type'], /^text\/xml/)
  t.equal(r.text, '<?xml version="1.0" encoding="UTF-8"?><Response></Response>', 'empty TwiML: every text goes through the outbox')
  t.equal(await balance(ctx, sc.member.accountId), '37.50')
  t.equal(await balance(ctx, sc.business.accountId), '12.25', 'the receiver paid the 2% text fee')
  const transfers = (await ctx.call('GET', `/v1/currencies/${sc.code}/transfers?account=${sc.member.accountId}&kind=payment`, { token: ctx.issuerToken })).body.items
  t.equal(transfers.length, 1)
  t.match(transfers[0], { channel: 'text', amount: '12.50', fromAccount: sc.member.accountId, toAccount: sc.business.accountId })
  const movement = (await ctx.call('GET', `/v1/transfers/${transfers[0].id as string}`, { token: sc.member.token })).body
  t.match(movement.related, [{ kind: 'fee', amount: '0.25', fromAccount: sc.business.accountId }])
  const payer = await inbox(db, MEMBER_PHONE)
  t.match(payer.at(-1), { purpose: 'reply', in_reply_to: r.sid, body: /^Paid 12\.50 BRS to Cafe .* Balance 37\.50 BRS\. Ref [0-9A-F]{8}$/ })
  t.match((await inbox(db, SHOP_PHONE)).at(-1), { purpose: 'receipt', body: /^Received 12\.50 BRS by text \(fee 0\.25\)\. Ref / })
  const kept = (await db.query('SELECT message_sid, from_phone, command, outcome, reply FROM sms_inbound')).rows
  t.match(kept, [{ message_sid: r.sid, from_phone: MEMBER_PHONE, command: 'pay', outcome: 'paid' }])
  t.notMatch(JSON.stringify(kept.map(k => [k.command, k.outcome, k.reply])), /1234/, 'the message (and its PIN) is not stored')
})

t.test('a retried webhook pays once and queues no second reply, also when the retries arrive at once', async (t) => {
  const { ctx, db, sc } = await setup(t)
  const sid = newSid()
  const first = await text(ctx, MEMBER_PHONE, 'PAY MONTPELIER 5 1234', { sid })
  const again = await text(ctx, MEMBER_PHONE, 'PAY MONTPELIER 5 1234', { sid })
  t.equal(first.status, 200)
  t.equal(again.status, 200)
  t.equal(again.text, first.text, 'the same answer')
  t.equal(await balance(ctx, sc.member.accountId), '45.00', 'paid once')
  t.equal(await count(db, 'SELECT count(*) AS n FROM sms_outbox WHERE in_reply_to = $1 AND purpose = \'reply\'', [sid]), 1, 'one reply')
  t.equal(await count(db, 'SELECT count(*) AS n FROM sms_outbox WHERE in_reply_to = $1 AND purpose = \'receipt\'', [sid]), 1, 'one receipt')

  const burst = newSid()
  const all = await Promise.all(Array.from({ length: 6 }, async () => await text(ctx, MEMBER_PHONE, 'pay montpelier 2.00 1234', { sid: burst })))
  t.same(all.map(x => x.status), [200, 200, 200, 200, 200, 200])
  t.equal(await balance(ctx, sc.member.accountId), '43.00', 'six deliveries at once pay once')
  t.equal(await count(db, 'SELECT count(*) AS n FROM sms_outbox WHERE in_reply_to = $1 AND purpose = \'reply\'', [burst]), 1)
  t.equal(await count(db, 'SELECT count(*) AS n FROM transfer WHERE kind = \'payment\' AND channel = \'text\''), 2)
})

t.test('an unsigned or badly signed request is refused with 403 and changes nothing', async (t) => {
  const { ctx, db, sc } = await setup(t)
  const before = { bal: await balance(ctx, sc.member.accountId), out: await count(db, 'SELECT count(*) AS n FROM sms_outbox'), pins: (await db.query('SELECT pin_failures FROM text_phone ORDER BY participant_id')).rows }
  const body = 'PAY MONTPELIER 5.00 1234'
  const fields = (sid: string) => ({ ToCountry: 'GB', SmsStatus: 'received', AccountSid: 'AC0123', NumMedia: '0', From: MEMBER_PHONE, To: '+447700900000', Body: body, MessageSid: sid })
  const cases: Array<[string, { signature?: string | null, sid?: string, extra?: Record<string, string> }]> = [
    ['no signature', { signature: null }],
    ['an empty signature', { signature: '' }],
    ['signed with another token', { signature: sign('not-the-token-at-all', WEBHOOK, fields('SMbad1')), sid: 'SMbad1' }],
    ['signed for another URL', { signature: sign(TOKEN, 'https://evil.example.org/v1/sms/inbound', fields('SMbad2')), sid: 'SMbad2' }],
    ['signed for other fields', { signature: sign(TOKEN, WEBHOOK, { ...fields('SMbad3'), Body: 'PAY MONTPELIER 0.01 1234' }), sid: 'SMbad3' }],
    ['a field added after signing', { signature: sign(TOKEN, WEBHOOK, fields('SMbad4')), sid: 'SMbad4', extra: { Extra: 'x' } }],
    ['garbage', { signature: 'A'.repeat(28) }],
  ]
  for (const [name, o] of cases) {
    const r = await text(ctx, MEMBER_PHONE, body, o)
    t.equal(r.status, 403, name)
    t.equal(r.body.code, 'FORBIDDEN', name)
  }
  // a wrong PIN sent unsigned is not counted either
  t.equal((await text(ctx, MEMBER_PHONE, 'PAY MONTPELIER 1 0000', { signature: null })).status, 403)
  t.equal(await balance(ctx, sc.member.accountId), before.bal, 'no money moved')
  t.equal(await count(db, 'SELECT count(*) AS n FROM sms_outbox'), before.out, 'nothing was texted')
  t.equal(await count(db, 'SELECT count(*) AS n FROM sms_inbound'), 0, 'no message was recorded')
  t.same((await db.query('SELECT pin_failures FROM text_phone ORDER BY participant_id')).rows, before.pins, 'no PIN attempt was counted')
  // a signed JSON body is not the gateway's shape
  const json = await ctx.call('POST', '/v1/sms/inbound', { body: fields('SMjson'), headers: { 'x-twilio-signature': sign(TOKEN, WEBHOOK, fields('SMjson')) } })
  t.equal(json.status, 415)
  t.equal(json.body.detail, 'send the body as application/x-www-form-urlencoded', 'the problem names the type this route takes')
})

t.test('without SMS_AUTH_TOKEN the webhook is off (404), signed or not', async (t) => {
  const ctx = await buildTestApp(t)
  const r = await text(ctx, MEMBER_PHONE, 'HELP')
  t.equal(r.status, 404)
  t.equal(r.body.code, 'NOT_FOUND')
})

t.test('BAL, HELP, unknown senders, businesses, amounts and short funds get a short helpful reply', async (t) => {
  const { ctx, db, sc } = await setup(t)
  const last = async (phone: string) => (await inbox(db, phone)).at(-1)?.body ?? ''
  const ask = async (from: string, body: string) => {
    const r = await text(ctx, from, body)
    t.equal(r.status, 200, body)
    return await last(from)
  }
  t.match(await ask(MEMBER_PHONE, 'bal 1234'), 'Your balance is 50.00 BRS.')
  t.match(await ask(MEMBER_PHONE, 'HELP'), /^Pay by text: PAY <code> <amount> <PIN>/)
  t.match(await ask(MEMBER_PHONE, 'send money please'), /not understood/)
  t.match(await ask(MEMBER_PHONE, 'pay nosuchshop 5 1234'), 'No business with code NOSUCHSHOP')
  t.match(await ask(MEMBER_PHONE, 'pay montpelier five 1234'), 'That amount was not understood')
  t.match(await ask(MEMBER_PHONE, 'pay montpelier 1.234 1234'), 'That amount was not understood')
  t.match(await ask(MEMBER_PHONE, 'pay montpelier 0 1234'), 'That amount was not understood')
  t.match(await ask(MEMBER_PHONE, 'pay montpelier -5 1234'), 'That amount was not understood')
  t.match(await ask(MEMBER_PHONE, 'pay montpelier 99999999999999999999 1234'), 'That amount was not understood')
  t.match(await ask(MEMBER_PHONE, 'pay montpelier 500.00 1234'), 'Not paid: not enough funds (balance 50.00 BRS).')
  t.match(await ask(MEMBER_PHONE, 'pay montpelier £2 1234'), /^Paid 2\.00 BRS/)
  const stranger = '+447900000001'
  t.match(await ask(stranger, 'pay montpelier 5 1234'), 'This number is not set up for text payments')
  t.match(await ask(stranger, 'bal 1234'), 'This number is not set up for text payments')
  t.match(await ask(stranger, 'help'), /^Pay by text/)
  // a number that is not a phone number at all, and text the parser has never seen, still only get a reply
  t.equal((await text(ctx, 'not-a-number', 'bal 1234')).status, 200)
  t.equal((await text(ctx, MEMBER_PHONE, 'PAY\tMONTPELIER\n1\r\n1234 ☕')).status, 200)
  t.equal((await text(ctx, MEMBER_PHONE, '')).status, 200)
  t.equal(await balance(ctx, sc.member.accountId), '48.00', 'only the one good payment moved money')
  // the business paying itself is refused, not a 500
  t.match(await ask(SHOP_PHONE, 'pay montpelier 1 9999'), /^Not paid/)
})

t.test('texts that pay and read nothing are answered IDLE_REPLIES_PER_DAY times a day a number: no loop with an auto-responder', async (t) => {
  const { ctx, db, sc } = await setup(t)
  const stranger = '+447900000009'
  const replies = async (phone: string) => (await inbox(db, phone)).length
  // a stranger's texts (a number nobody holds, HELP, a text not understood), answered up to the limit, all recorded
  const mixed = ['pay montpelier 5 1234', 'help', 'what?', 'bal 1234']
  for (let i = 0; i < IDLE_REPLIES_PER_DAY + 3; i++) t.equal((await text(ctx, stranger, mixed[i % mixed.length])).status, 200)
  t.equal(await replies(stranger), IDLE_REPLIES_PER_DAY, 'answered up to the limit only')
  t.equal(await count(db, 'SELECT count(*) AS n FROM sms_inbound WHERE from_phone = $1', [stranger]), IDLE_REPLIES_PER_DAY + 3, 'every text recorded')
  t.equal(await count(db, `SELECT count(*) AS n FROM sms_inbound WHERE from_phone = $1 AND reply = ''`, [stranger]), 3, 'the unanswered with no reply')

  // a member's auto-responder answering "not understood": quiet after the limit, while its payments and balances
  // are answered still (they are not counted)
  for (let i = 0; i < IDLE_REPLIES_PER_DAY + 2; i++) await text(ctx, MEMBER_PHONE, 'I am away until Monday')
  const before = await replies(MEMBER_PHONE)
  await text(ctx, MEMBER_PHONE, 'I am away until Monday')
  t.equal(await replies(MEMBER_PHONE), before, 'no reply to the loop')
  await text(ctx, MEMBER_PHONE, 'bal 1234')
  t.equal((await inbox(db, MEMBER_PHONE)).at(-1)?.body, 'Your balance is 50.00 BRS.')
  await text(ctx, MEMBER_PHONE, 'pay montpelier 1 1234')
  t.match((await inbox(db, MEMBER_PHONE)).at(-1)?.body, /^Paid 1\.00 BRS/)
  t.equal(await balance(ctx, sc.member.accountId), '49.00')

  // the count can read the partial index, not the number's every text (a flood's unanswered texts are not in it):
  // its predicate matches the index's (sequential scans off, as on a table this small the planner might prefer one)
  const client = await db.connect()
  try {
    await client.query('BEGIN')
    await client.query('SET LOCAL enable_seqscan = off')
    const plan = (await client.query(`EXPLAIN ${IDLE_REPLIES_SQL}`, [stranger])).rows.map((r: any) => r['QUERY PLAN']).join('\n')
    t.match(plan, /sms_inbound_idle_replies_idx/, plan)
  } finally {
    await client.query('ROLLBACK')
    client.release()
  }

  // a day later (the day's texts moved back: the count reads the database's clock) the stranger is answered again
  await db.query(`UPDATE sms_inbound SET received_at = received_at - interval '25 hours' WHERE from_phone = $1`, [stranger])
  await text(ctx, stranger, 'help')
  t.equal(await replies(stranger), IDLE_REPLIES_PER_DAY + 1)
})

t.test('a number nobody holds, texting two instances at once, is answered no more than IDLE_REPLIES_PER_DAY times', async (t) => {
  const s = await smsApp(t)
  // a second instance on the same database: its own inTurn, so only the database orders the number's texts
  const other = await buildTestApp(t, { SMS_AUTH_TOKEN: TOKEN, SMS_PUBLIC_URL: WEBHOOK }, { db: s.ctx.db })
  const stranger = '+447900000077'
  for (let i = 0; i < IDLE_REPLIES_PER_DAY - 1; i++) await text(s.ctx, stranger, 'help')
  // the last reply of the day, asked for on both instances at once (each counted it as still to make: one too many)
  const last = await Promise.all([0, 1, 2, 3, 4, 5].map(async (i) => await text(i % 2 === 0 ? s.ctx : other, stranger, 'help')))
  t.same(last.map(r => r.status), [200, 200, 200, 200, 200, 200])
  t.equal((await inbox(s.db, stranger)).length, IDLE_REPLIES_PER_DAY, 'the limit holds across instances')
  t.equal(await count(s.db, 'SELECT count(*) AS n FROM sms_inbound WHERE from_phone = $1', [stranger]), IDLE_REPLIES_PER_DAY + 5, 'every text recorded')
})

t.test('three wrong PINs in a row lock text payments until the PIN is set again, by the member or an issuer', async (t) => {
  const { ctx, db, sc } = await setup(t)
  const last = async () => (await inbox(db, MEMBER_PHONE)).at(-1)?.body ?? ''
  await text(ctx, MEMBER_PHONE, 'pay montpelier 1 1111')
  t.match(await last(), 'Wrong PIN. 2 tries left')
  await text(ctx, MEMBER_PHONE, 'bal 1234')
  t.match(await last(), 'Your balance is', 'a right PIN resets the count')
  for (const left of [2, 1]) {
    await text(ctx, MEMBER_PHONE, 'pay montpelier 1 1111')
    t.match(await last(), `Wrong PIN. ${left} ${left === 1 ? 'try' : 'tries'} left`)
  }
  await text(ctx, MEMBER_PHONE, 'bal 0000')
  t.match(await last(), 'Text payments are now locked')
  const settings = await ctx.call('GET', `/v1/participants/${sc.member.id}/phone`, { token: sc.member.token })
  t.match(settings.body, { locked: true, pinSet: true, phone: MEMBER_PHONE })
  await text(ctx, MEMBER_PHONE, 'pay montpelier 1 1234')
  t.match(await last(), 'Text payments are locked after 3 wrong PINs', 'the right PIN does not open it')
  t.equal(await balance(ctx, sc.member.accountId), '50.00')

  const reset = await ctx.call('PUT', `/v1/participants/${sc.member.id}/text-pin`, { token: sc.member.token, body: { pin: '5678' } })
  t.match(reset.body, { locked: false, pinSet: true })
  await text(ctx, MEMBER_PHONE, 'pay montpelier 1 5678')
  t.match(await last(), /^Paid 1\.00 BRS/)

  for (let i = 0; i < 3; i++) await text(ctx, MEMBER_PHONE, 'bal 1111')
  t.equal((await ctx.call('GET', `/v1/participants/${sc.member.id}/phone`, { token: ctx.issuerToken })).body.locked, true)
  const byIssuer = await ctx.call('PUT', `/v1/participants/${sc.member.id}/text-pin`, { token: ctx.issuerToken, body: { pin: '24680' } })
  t.equal(byIssuer.body.locked, false, 'an issuer unlocks it')
  await text(ctx, MEMBER_PHONE, 'bal 24680')
  t.match(await last(), 'Your balance is 49.00 BRS.')
  const audit = (await ctx.call('GET', `/v1/currencies/${sc.code}/audit?action=text.pin_set&limit=200`, { token: ctx.issuerToken })).body.items
  t.match(audit.at(-1), { action: 'text.pin_set', target: sc.member.id, role: 'platform_issuer', detail: { unlocked: true } })
})

t.test('digits as a phone types them in any script are read as digits; a word that cannot be a PIN is not counted as a wrong one', async (t) => {
  // A phone set to Arabic (or a Japanese keyboard) types the PIN 1234 as ١٢٣٤ (or １２３４): that is the right PIN,
  // not a wrong one, and three such texts locked the member out. A word that is no PIN at all (4 to 8 digits) cannot
  // be the right PIN either: it is answered, and not counted towards the lock.
  const { ctx, db, sc } = await setup(t)
  const last = async () => (await inbox(db, MEMBER_PHONE)).at(-1)?.body ?? ''
  const failures = async () => (await db.query('SELECT pin_failures, locked_at IS NOT NULL AS locked FROM text_phone WHERE participant_id = $1', [sc.member.id])).rows[0]
  await text(ctx, MEMBER_PHONE, 'bal \u0661\u0662\u0663\u0664')
  t.equal(await last(), 'Your balance is 50.00 BRS.', 'Arabic-Indic digits')
  await text(ctx, MEMBER_PHONE, 'pay montpelier \uff15 \uff11\uff12\uff13\uff14')
  t.match(await last(), /^Paid 5\.00 BRS/, 'fullwidth digits, in the amount too')
  await text(ctx, MEMBER_PHONE, 'pay montpelier \u0967.\u0966\u0966 \u0967\u0968\u0969\u096a')
  t.match(await last(), /^Paid 1\.00 BRS/, 'Devanagari digits')
  t.equal(await balance(ctx, sc.member.accountId), '44.00')
  t.same(await failures(), { pin_failures: 0, locked: false })

  for (const body of ['pay montpelier 1 abcd', 'pay montpelier 1234 5.00', 'bal 12', 'bal 123456789', 'bal 12\u00bd4']) {
    await text(ctx, MEMBER_PHONE, body)
    t.equal(await last(), 'A text PIN is 4 to 8 digits. Text PAY <code> <amount> <PIN> or BAL <PIN>.', body)
  }
  t.same(await failures(), { pin_failures: 0, locked: false }, 'none of them counted towards the lock')
  t.equal(await balance(ctx, sc.member.accountId), '44.00', 'and nothing paid')
  const outcomes = (await db.query(`SELECT outcome FROM sms_inbound WHERE outcome = 'bad_pin'`)).rows
  t.equal(outcomes.length, 5, 'recorded as bad_pin')

  await text(ctx, MEMBER_PHONE, 'bal 1111')
  t.match(await last(), 'Wrong PIN. 2 tries left', 'a PIN that is wrong still counts')
})

t.test('texts refused before a PIN is checked are answered at most IDLE_REPLIES_PER_DAY times a day: whoever sends as a member\'s number cannot make the scheme text it without end', async (t) => {
  // A PIN word that is no PIN is not counted towards the lock, and a locked number's texts lock nothing further:
  // both were answered every time, so a sender spoofing a member's number could have the scheme text the member
  // (and pay for it) for as long as it kept sending.
  const { ctx, db, sc } = await setup(t)
  const answered = async () => Object.fromEntries((await db.query<{ outcome: string, answered: number, n: number }>(
    `SELECT outcome, count(*) FILTER (WHERE reply <> '')::int AS answered, count(*)::int AS n FROM sms_inbound
      WHERE from_phone = $1 GROUP BY outcome`, [MEMBER_PHONE])).rows.map(r => [r.outcome, [r.answered, r.n]]))
  for (let i = 0; i < IDLE_REPLIES_PER_DAY + 3; i++) await text(ctx, MEMBER_PHONE, 'bal 12')
  t.same(await answered(), { bad_pin: [IDLE_REPLIES_PER_DAY, IDLE_REPLIES_PER_DAY + 3] }, 'a PIN word that is no PIN: answered five times, every text recorded')
  await text(ctx, MEMBER_PHONE, 'bal 1234')
  t.equal((await inbox(db, MEMBER_PHONE)).at(-1)?.body, 'Your balance is 50.00 BRS.', 'a balance is still answered')
  for (let i = 0; i < 3; i++) await text(ctx, MEMBER_PHONE, 'bal 1111')
  for (let i = 0; i < 4; i++) await text(ctx, MEMBER_PHONE, 'pay montpelier 1 1234')
  t.same(await answered(), {
    bad_pin: [IDLE_REPLIES_PER_DAY, IDLE_REPLIES_PER_DAY + 3], balance: [1, 1], wrong_pin: [2, 2], wrong_pin_locked: [1, 1], locked: [0, 4],
  }, 'the wrong PINs are answered (three at most, then the lock); the locked number\'s texts share the day\'s five, already spent')
  t.equal(await balance(ctx, sc.member.accountId), '50.00')
  // a day later the locked number is told it is locked again
  await db.query(`UPDATE sms_inbound SET received_at = received_at - interval '25 hours' WHERE from_phone = $1`, [MEMBER_PHONE])
  await text(ctx, MEMBER_PHONE, 'bal 1234')
  t.match((await inbox(db, MEMBER_PHONE)).at(-1)?.body, 'Text payments are locked after 3 wrong PINs')
})

t.test('a reply cut to fit a text never splits a character in two', async (t) => {
  // The payee's name (40 characters) and an unknown code (20) are cut to keep a reply to one text. Cut by UTF-16
  // units, an emoji across the cut was halved, and the half was sent as U+FFFD.
  const s = await smsApp(t)
  const { ctx, db } = s
  const sc = await scenario(ctx)
  const shop = await registerBusiness(ctx, sc.code, { tradingName: `${'B'.repeat(39)}\u{1F370} Bakery`, sector: 'cafes-pubs', postcode: 'BS1 4DJ' })
  await ctx.call('PATCH', `/v1/participants/${shop.id}`, { token: shop.token, body: { textCode: 'cake' } })
  await issue(ctx, sc.code, sc.member.accountId, '10.00')
  await enrol(s, sc.member, MEMBER_PHONE)
  await text(ctx, MEMBER_PHONE, 'pay cake 1 1234')
  t.match((await inbox(db, MEMBER_PHONE)).at(-1)?.body, new RegExp(`^Paid 1\\.00 BRS to ${'B'.repeat(39)}\\. Balance 9\\.00 BRS\\.`), 'the name is cut before the emoji, not through it')
  await text(ctx, MEMBER_PHONE, `pay ${'X'.repeat(19)}\u{1F370}\u{1F370} 1 1234`)
  t.equal((await inbox(db, MEMBER_PHONE)).at(-1)?.body, `No business with code ${'X'.repeat(19)}. Check the code in the directory and try again.`)
  t.notMatch(JSON.stringify((await db.query('SELECT body FROM sms_outbox').then(r => r.rows))), /\uFFFD|\\ufffd/i, 'no replacement character anywhere')
})

t.test('wrong PINs sent at once are checked one at a time: never more than three', async (t) => {
  const { ctx, db, sc } = await setup(t)
  const n = 10
  const rs = await Promise.all(Array.from({ length: n }, async (_, i) => await text(ctx, MEMBER_PHONE, i % 2 === 0 ? `pay montpelier 1 ${1000 + i}` : `bal ${1000 + i}`)))
  t.same(rs.map(r => r.status), Array(n).fill(200))
  const outcomes = (await db.query<{ outcome: string, n: string }>('SELECT outcome, count(*) AS n FROM sms_inbound GROUP BY outcome ORDER BY outcome')).rows
  t.same(outcomes.map(o => [o.outcome, Number(o.n)]), [['locked', n - 3], ['wrong_pin', 2], ['wrong_pin_locked', 1]], 'three PINs checked, the rest refused as locked')
  t.same((await db.query('SELECT pin_failures FROM text_phone WHERE participant_id = $1', [sc.member.id])).rows, [{ pin_failures: 3 }])
  // and a right PIN among wrong ones at once: still at most three wrong ones checked before the lock
  await ctx.call('PUT', `/v1/participants/${sc.member.id}/text-pin`, { token: sc.member.token, body: { pin: '1234' } })
  await Promise.all(Array.from({ length: 8 }, async (_, i) => await text(ctx, MEMBER_PHONE, `bal ${i === 3 ? '1234' : '9' + String(i).padStart(3, '0')}`)))
  const f = (await db.query('SELECT pin_failures, locked_at IS NOT NULL AS locked FROM text_phone WHERE participant_id = $1', [sc.member.id])).rows[0]
  t.ok(f.pin_failures <= 3, `failures counted ${f.pin_failures as number}`)
  t.equal(await balance(ctx, sc.member.accountId), '50.00')
})

t.test('a suspended member cannot pay by text', async (t) => {
  const { ctx, db, sc } = await setup(t)
  await ctx.call('PUT', `/v1/participants/${sc.member.id}/suspension`, { token: ctx.issuerToken, body: { reason: 'lost phone' } })
  await text(ctx, MEMBER_PHONE, 'pay montpelier 1 1234')
  t.match((await inbox(db, MEMBER_PHONE)).at(-1)?.body, 'not set up for text payments')
  t.equal(await balance(ctx, sc.member.accountId), '50.00')
})

t.test('a text holding characters the API refuses elsewhere is answered, never refused at the gateway', async (t) => {
  // The text rule (src/domain/text.ts) refuses controls, lone surrogates and bidi overrides in every request. A
  // member's text is not a request the member can correct: a 422 to the gateway was not retried, and the member got
  // no reply at all. Such characters are read as spaces once the signature (over the fields as sent) is checked.
  const { ctx, db, sc } = await setup(t)
  const last = async () => (await inbox(db, MEMBER_PHONE)).at(-1)?.body ?? ''
  const cases: Array<[string, RegExp | string]> = [
    ['PAY MONTPELIER 5 1234\u202E', /^Paid 5\.00 BRS/],
    ['bal\u001b1234', 'Your balance is 45.00 BRS.'],
    ['hi \u0085', /not understood/],
    ['x\u0000y', /not understood/],
    // a space only ever splits a word: an override inside the amount leaves nothing paid
    ['PAY MONTPELIER 1\u202E00 1234', /not understood/],
    // an invisible character after the PIN is not part of the PIN (no wrong PIN counted)
    ['PAY MONTPELIER 1 1234\u200B', /^Paid 1\.00 BRS/],
  ]
  for (const [body, reply] of cases) {
    const r = await text(ctx, MEMBER_PHONE, body)
    t.equal(r.status, 200, JSON.stringify(body))
    t.match(await last(), reply, JSON.stringify(body))
  }
  const extra = await text(ctx, MEMBER_PHONE, 'bal 1234', { extra: { FromCity: 'a\u202Eb\u0000' } })
  t.equal(extra.status, 200, 'a gateway field with such characters too')
  t.match(await last(), 'Your balance is 44.00 BRS.')
  t.equal(await balance(ctx, sc.member.accountId), '44.00')
  t.same((await db.query('SELECT pin_failures FROM text_phone WHERE participant_id = $1', [sc.member.id])).rows, [{ pin_failures: 0 }])
  // still signed as sent: the same text signed over other characters is refused
  const forged = await text(ctx, MEMBER_PHONE, 'bal 1234\u202E', { signature: sign(TOKEN, WEBHOOK, { From: MEMBER_PHONE, To: '+447700900000', Body: 'bal 1234 ', MessageSid: 'SMforged1' }), sid: 'SMforged1' })
  t.equal(forged.status, 403)
})

t.test('texts from one number wait their turn without holding the pool: another member\'s text is not queued behind them', async (t) => {
  // Texts from one number are taken one at a time (the number's row lock). Each waited for that lock holding a
  // connection of the write pool, so a burst from one phone held every connection while its PINs were checked one
  // after another, and everyone else (another member's text, any payment over the API) queued behind the burst.
  const s = await smsApp(t, { DB_POOL_MAX: 2 })
  const { ctx, db } = s
  const sc = await scenario(ctx)
  const other = await registerMember(ctx, sc.code)
  await issue(ctx, sc.code, sc.member.accountId, '10.00')
  await enrol(s, sc.member, MEMBER_PHONE)
  await enrol(s, { id: other.id, token: other.token }, '+447900000002', '4321')
  // The number's row held elsewhere (as another instance's text would hold it), so the whole burst waits: the
  // first of it on the lock, the rest in turn behind it. Another member's text must still be answered meanwhile,
  // on the pool's other connection; before, the waiting burst held both and it failed after DB_ACQUIRE_TIMEOUT_MS.
  const holder = await db.connect()
  await holder.query('BEGIN')
  t.equal((await holder.query('SELECT 1 FROM text_phone WHERE phone = $1 FOR UPDATE', [MEMBER_PHONE])).rowCount, 1)
  const burst = Array.from({ length: 6 }, async () => await text(ctx, MEMBER_PHONE, 'bal 1234'))
  try {
    // until the burst's first text waits on the lock (a condition, not a time)
    while ((await db.query('SELECT 1 FROM pg_locks WHERE NOT granted')).rowCount === 0) await new Promise(resolve => setImmediate(resolve))
    const theirs = await text(ctx, '+447900000002', 'bal 4321')
    t.equal(theirs.status, 200, 'another member\'s text is answered while the burst waits')
    const queued = (await db.query<{ to_phone: string }>('SELECT to_phone FROM sms_outbox WHERE purpose = \'reply\' ORDER BY id')).rows.map(r => r.to_phone)
    t.same(queued, ['+447900000002'], 'its reply is queued, and none of the burst\'s yet')
  } finally {
    await holder.query('COMMIT')
    holder.release()
  }
  const all = await Promise.all(burst)
  t.same(all.map(r => r.status), Array(6).fill(200), 'the burst is answered once the lock is free')
  const order = (await db.query<{ to_phone: string }>('SELECT to_phone FROM sms_outbox WHERE purpose = \'reply\' ORDER BY id')).rows.map(r => r.to_phone)
  t.same(order, ['+447900000002', ...Array(6).fill(MEMBER_PHONE)])
})
