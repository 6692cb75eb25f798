import pg from 'pg'
import t, { type Test } from 'tap'
import { createTestDb } from '../../support/postgres.js'
import { CODES_PER_DAY, IDLE_REPLIES_PER_DAY } from '../../src/domain/sms.js'
import { GatewayError, outboxRelay } from '../../src/sms/gateway.js'
import { balance, enrol, inbox, issue, registerBusiness, registerMember, scenario, smsApp, text } from './fixtures.js'

// Phones, codes, text PINs and text codes through the API, with the codes' clock in the test's hands.

const PHONE = '+447911123456'

/**
 * The setup the tests of texts queued to a number share: an app, the scenario, the member's phone PHONE (PIN 4821)
 * with 20.00 issued to it; with `shop`, also the business on that number (PIN 9999), text code MONTPELIER.
 */
async function enrolled (t: Test, o: { shop?: string } = {}) {
  const s = await smsApp(t)
  const { ctx } = s
  const sc = await scenario(ctx)
  if (o.shop != null) await ctx.call('PATCH', `/v1/participants/${sc.business.id}`, { token: sc.business.token, body: { textCode: 'montpelier' } })
  await enrol(s, sc.member, PHONE, '4821')
  if (o.shop != null) await enrol(s, sc.business, o.shop, '9999')
  await issue(ctx, sc.code, sc.member.accountId, '20.00')
  return { s, ...s, sc }
}

t.test('a phone counts once the texted code comes back; wrong codes are counted and spend it; codes expire', async (t) => {
  const s = await smsApp(t)
  const { ctx, db, now } = s
  const sc = await scenario(ctx)
  const url = `/v1/participants/${sc.member.id}`
  const put = await ctx.call('PUT', `${url}/phone`, { token: sc.member.token, body: { phone: PHONE } })
  t.equal(put.status, 200)
  t.match(put.body, { participantId: sc.member.id, phone: null, pendingPhone: PHONE, pinSet: false, locked: false, codeExpiresAt: '2026-11-30T10:10:00.000Z' })
  const sent = await inbox(db, PHONE)
  t.equal(sent.length, 1)
  t.match(sent[0], { purpose: 'verification', body: `Your code to confirm this number for text payments is ${s.lastCode()}. It expires in 10 minutes.` })

  t.equal((await ctx.call('PUT', `${url}/phone`, { token: sc.member.token, body: { phone: PHONE } })).status, 429, 'one code a minute')
  t.equal((await inbox(db, PHONE)).length, 1, 'and no second text')

  // wrong codes: counted, then the code is spent
  for (let i = 1; i <= 4; i++) {
    const r = await ctx.call('POST', `${url}/phone/verification`, { token: sc.member.token, body: { code: '000000' } })
    t.equal(r.status, 422)
    t.match(r.body, { code: 'VERIFICATION_FAILED', detail: `wrong code; ${5 - i} more tries before it is spent` })
  }
  const fifth = await ctx.call('POST', `${url}/phone/verification`, { token: sc.member.token, body: { code: '000000' } })
  t.match(fifth.body.detail, /too many times/)
  const spent = await ctx.call('POST', `${url}/phone/verification`, { token: sc.member.token, body: { code: s.lastCode() } })
  t.match(spent.body, { code: 'VERIFICATION_FAILED', detail: /no code is waiting/ }, 'the right code after five wrong ones is too late')

  // a new code, which expires by the injected clock
  now.t += 61_000
  t.equal((await ctx.call('PUT', `${url}/phone`, { token: sc.member.token, body: { phone: PHONE } })).status, 200)
  now.t += 10 * 60_000
  const late = await ctx.call('POST', `${url}/phone/verification`, { token: sc.member.token, body: { code: s.lastCode() } })
  t.match(late.body, { code: 'VERIFICATION_FAILED', detail: /expired/ })

  now.t += 1000
  await ctx.call('PUT', `${url}/phone`, { token: sc.member.token, body: { phone: PHONE } })
  now.t += 9 * 60_000
  const ok = await ctx.call('POST', `${url}/phone/verification`, { token: sc.member.token, body: { code: s.lastCode() } })
  t.equal(ok.status, 200)
  t.match(ok.body, { phone: PHONE, pendingPhone: null, codeExpiresAt: null })

  const bad = await ctx.call('PUT', `${url}/phone`, { token: sc.member.token, body: { phone: '+44791' } })
  t.equal(bad.status, 422)
  for (const phone of ['07911123456', '+447911654321', '+4479111234567890', '+44 7911 123456', '+447911123456x']) {
    const r = await ctx.call('PUT', `${url}/phone`, { token: sc.member.token, body: { phone } })
    t.equal(r.status, 422, `${phone} is not a valid E.164 number`)
  }

  const trail = (await ctx.call('GET', `/v1/currencies/${sc.code}/audit?limit=200`, { token: ctx.issuerToken })).body.items as any[]
  const verified = trail.filter(e => e.action === 'text.phone_verify')
  t.equal(verified.length, 1, 'the confirmation is audited, once')
  t.match(verified[0], { target: sc.member.id, detail: { phone: PHONE } })
})

t.test('a number confirmed by someone else moves to them; the registration routes never say a number is taken', async (t) => {
  const s = await smsApp(t)
  const { ctx, db } = s
  const sc = await scenario(ctx)
  const other = await registerMember(ctx, sc.code)
  await enrol(s, sc.member, PHONE)
  const put = await ctx.call('PUT', `/v1/participants/${other.id}/phone`, { token: other.token, body: { phone: PHONE } })
  t.equal(put.status, 200, 'the same answer as for a free number')
  t.equal(put.body.phone, null)
  const ok = await ctx.call('POST', `/v1/participants/${other.id}/phone/verification`, { token: other.token, body: { code: s.lastCode() } })
  t.equal(ok.body.phone, PHONE)
  await ctx.call('PUT', `/v1/participants/${other.id}/text-pin`, { token: other.token, body: { pin: '8642' } })
  const mine = await ctx.call('GET', `/v1/participants/${sc.member.id}/phone`, { token: sc.member.token })
  t.equal(mine.body.phone, null, 'the previous holder lost it')
  // the texts from it are now the other member's: the old PIN does nothing, the new holder's works
  await ctx.call('POST', `/v1/currencies/${sc.code}/issuances`, { token: ctx.issuerToken, key: 'iss-1', body: { toAccount: sc.member.accountId, amount: '7.00', sterlingReference: 'bank-1' } })
  await text(ctx, PHONE, 'bal 1234')
  t.match((await inbox(db, PHONE)).at(-1)?.body, 'Wrong PIN.')
  await text(ctx, PHONE, 'bal 8642')
  t.match((await inbox(db, PHONE)).at(-1)?.body, 'Your balance is 0.00 BRS.')
})

t.test('texts still queued for a number\'s previous holder are not sent once someone else confirms the number', async (t) => {
  const SHOP = '+447912345678'
  const { s, ctx, db, sc } = await enrolled(t, { shop: SHOP })
  const other = await registerMember(ctx, sc.code)
  // the member's balance and payment replies, and the shop's receipt, queued (no relay runs here)
  await text(ctx, PHONE, 'bal 4821')
  await text(ctx, PHONE, 'pay montpelier 5 4821')
  const queued = async (phone: string) => (await db.query(`SELECT participant_id, purpose, status, last_error FROM sms_outbox
    WHERE to_phone = $1 AND purpose IN ('reply', 'receipt') ORDER BY id`, [phone])).rows
  t.match(await queued(PHONE), [{ participant_id: sc.member.id, status: 'queued' }, { participant_id: sc.member.id, status: 'queued' }])
  t.match(await queued(SHOP), [{ participant_id: sc.business.id, purpose: 'receipt', status: 'queued' }])

  // the numbers change hands: whoever confirms them holds the phones now, and must not get the balances and sales
  const moved = 'not sent: the number was confirmed by another participant'
  for (const phone of [PHONE, SHOP]) {
    s.now.t += 61_000
    t.equal((await ctx.call('PUT', `/v1/participants/${other.id}/phone`, { token: other.token, body: { phone } })).status, 200)
    const ok = await ctx.call('POST', `/v1/participants/${other.id}/phone/verification`, { token: other.token, body: { code: s.lastCode() } })
    t.equal(ok.body.phone, phone)
  }
  t.same(await queued(PHONE), [
    { participant_id: sc.member.id, purpose: 'reply', status: 'failed', last_error: moved },
    { participant_id: sc.member.id, purpose: 'reply', status: 'failed', last_error: moved },
  ], 'the previous holder\'s balance and payment replies are held back')
  t.same(await queued(SHOP), [{ participant_id: sc.business.id, purpose: 'receipt', status: 'failed', last_error: moved }], 'and the shop\'s receipt')
  const codes = (await db.query(`SELECT status FROM sms_outbox WHERE to_phone = $1 AND purpose = 'verification' AND participant_id = $2`, [SHOP, other.id])).rows
  t.same(codes, [{ status: 'queued' }], 'a code is for whoever holds the number: never held back')

  // the new holder's own replies go out as ever
  await ctx.call('PUT', `/v1/participants/${other.id}/text-pin`, { token: other.token, body: { pin: '8642' } })
  await text(ctx, SHOP, 'bal 8642')
  t.match((await queued(SHOP)).at(-1), { participant_id: other.id, status: 'queued' })
})

t.test('a participant moving to a new number: what was still queued for it to the old number is not sent there', async (t) => {
  // A lost phone is often replaced by registering the new number, not by removing the old one first: the receipts
  // still queued to the old number (the gateway down) would go to whoever has that phone now.
  const OLD = '+447912345678'
  const NEW = '+447912345679'
  const { s, ctx, db, sc } = await enrolled(t, { shop: OLD })
  await text(ctx, PHONE, 'pay montpelier 5 4821')
  const receipts = async (phone: string) => (await db.query(`SELECT status, last_error FROM sms_outbox WHERE to_phone = $1 AND purpose = 'receipt' ORDER BY id`, [phone])).rows
  t.same(await receipts(OLD), [{ status: 'queued', last_error: null }])

  s.now.t += 61_000
  t.equal((await ctx.call('PUT', `/v1/participants/${sc.business.id}/phone`, { token: sc.business.token, body: { phone: NEW } })).status, 200)
  t.same(await receipts(OLD), [{ status: 'queued', last_error: null }], 'the old number is the business\'s until the new one is confirmed')
  const ok = await ctx.call('POST', `/v1/participants/${sc.business.id}/phone/verification`, { token: sc.business.token, body: { code: s.lastCode() } })
  t.equal(ok.body.phone, NEW)
  t.same(await receipts(OLD), [{ status: 'failed', last_error: 'not sent: the participant moved to another number' }])
  await text(ctx, PHONE, 'pay montpelier 2 4821')
  t.same(await receipts(NEW), [{ status: 'queued', last_error: null }], 'receipts now go to the new number')
  t.same((await db.query(`SELECT status FROM sms_outbox WHERE to_phone = $1 AND purpose = 'reply' ORDER BY id`, [PHONE])).rows,
    [{ status: 'queued' }, { status: 'queued' }], 'the payer\'s replies are untouched')
})

t.test('a lost phone is taken off: its texts stop paying, the PIN stays for the next number, a second remove changes nothing', async (t) => {
  const { s, ctx, db, now, sc } = await enrolled(t)
  const stranger = await registerMember(ctx, sc.code)
  const url = `/v1/participants/${sc.member.id}/phone`

  t.equal((await ctx.call('DELETE', url)).status, 401, 'anonymous')
  t.equal((await ctx.call('DELETE', url, { token: stranger.token })).status, 404, 'another member: as if it did not exist')
  t.equal((await ctx.call('GET', url, { token: sc.member.token })).body.phone, PHONE, 'and the phone is still there')

  // a balance reply still queued when the phone is lost is not sent to whoever has it
  await text(ctx, PHONE, 'bal 4821')
  const queued = (await db.query(`SELECT id FROM sms_outbox WHERE to_phone = $1 AND status = 'queued' AND body LIKE 'Your balance%'`, [PHONE])).rows
  t.equal(queued.length, 1)
  const gone = await ctx.call('DELETE', url, { token: sc.member.token })
  t.equal(gone.status, 200, gone.text)
  t.match((await db.query('SELECT status, last_error FROM sms_outbox WHERE id = $1', [queued[0].id])).rows[0], { status: 'failed', last_error: 'not sent: the phone was removed' })
  t.match(gone.body, { phone: null, pendingPhone: null, pinSet: true })
  await text(ctx, PHONE, 'bal 4821')
  t.equal((await inbox(db, PHONE)).at(-1)?.body, 'This number is not set up for text payments. Register it in the app or ask your scheme.')
  await text(ctx, PHONE, 'pay montpelier 5 4821')
  t.equal(await balance(ctx, sc.member.accountId), '20.00', 'nothing paid from the removed number')

  const again = await ctx.call('DELETE', url, { token: sc.member.token })
  t.same([again.status, again.body.phone], [200, null], 'removing again answers the settings as they are')
  const trail = (await ctx.call('GET', `/v1/currencies/${sc.code}/audit?action=text.phone_remove&limit=200`, { token: ctx.issuerToken })).body.items as any[]
  t.equal(trail.length, 1, 'one removal, audited once')
  t.match(trail[0], { target: sc.member.id, role: 'member', detail: { phone: PHONE, pendingPhone: null, unsent: 2 } }, 'its verification code and the balance, never sent here (no relay runs)')

  // an issuer takes off a number waiting for its code: the code is spent, and the resend wait still holds
  now.t += 61_000
  const NEW = '+447911123457'
  t.equal((await ctx.call('PUT', url, { token: sc.member.token, body: { phone: NEW } })).status, 200)
  const code = s.lastCode()
  t.match((await ctx.call('DELETE', url, { token: ctx.issuerToken })).body, { phone: null, pendingPhone: null, codeExpiresAt: null })
  const late = await ctx.call('POST', `${url}/verification`, { token: sc.member.token, body: { code } })
  t.match(late.body, { code: 'VERIFICATION_FAILED', detail: /no code is waiting/ }, 'the texted code no longer proves the number')
  t.equal((await ctx.call('PUT', url, { token: sc.member.token, body: { phone: NEW } })).status, 429, 'no way round one code a minute')

  // the next number works with the PIN kept
  now.t += 61_000
  await ctx.call('PUT', url, { token: sc.member.token, body: { phone: NEW } })
  t.equal((await ctx.call('POST', `${url}/verification`, { token: sc.member.token, body: { code: s.lastCode() } })).body.phone, NEW)
  await text(ctx, NEW, 'bal 4821')
  t.equal((await inbox(db, NEW)).at(-1)?.body, 'Your balance is 20.00 BRS.')
})

t.test('two participants proving one number at the same moment: one holds it, neither gets a 500', async (t) => {
  const s = await smsApp(t)
  const { ctx, db } = s
  const sc = await scenario(ctx)
  for (let round = 0; round < 4; round++) {
    const a = await registerMember(ctx, sc.code)
    const b = await registerMember(ctx, sc.code)
    const codes: string[] = []
    const phone = `+4479111236${round}0` // a number a round: a number gets CODES_PER_DAY codes a day
    for (const who of [a, b]) {
      t.equal((await ctx.call('PUT', `/v1/participants/${who.id}/phone`, { token: who.token, body: { phone } })).status, 200)
      codes.push(s.lastCode())
    }
    const both = await Promise.all([a, b].map(async (who, i) =>
      await ctx.call('POST', `/v1/participants/${who.id}/phone/verification`, { token: who.token, body: { code: codes[i] } })))
    t.same(both.map(r => r.status), [200, 200], `round ${round}: both proofs answered`)
    const holders = (await db.query('SELECT participant_id FROM text_phone WHERE phone = $1', [phone])).rows
    t.equal(holders.length, 1, `round ${round}: one participant holds the number`)
  }
})

t.test('at most CODES_PER_DAY codes a day to one number, and for one participant', async (t) => {
  const s = await smsApp(t)
  const { ctx, db, now } = s
  const sc = await scenario(ctx)
  const [guesser, other, busy] = [await registerMember(ctx, sc.code), await registerMember(ctx, sc.code), await registerMember(ctx, sc.code)]
  const ask = async (who: { id: string, token: string }, phone: string) => {
    now.t += 61_000 // past the one-a-minute limit, which is on the service's clock
    return await ctx.call('PUT', `/v1/participants/${who.id}/phone`, { token: who.token, body: { phone } })
  }
  // a number someone else holds: codes to it are counted whoever asks
  for (let i = 0; i < CODES_PER_DAY; i++) t.equal((await ask(guesser, PHONE)).status, 200, `code ${i + 1} to the number`)
  const refused = await ask(guesser, PHONE)
  t.equal(refused.status, 429, 'one more to the same number is refused')
  t.equal(refused.body.code, 'RATE_LIMITED')
  t.equal(refused.headers['retry-after'], '86400', 'retry after a whole day')
  const another = await ask(other, PHONE)
  t.equal(another.status, 429, 'by another participant too')
  // who asked for the number's codes, and when, is none of its business: the same whole day, not the time left
  // until the guesser's first code is a day old
  t.equal(another.headers['retry-after'], '86400', 'a whole day for it too, which tells nothing of when the others asked')
  t.equal((await inbox(db, PHONE)).filter(m => m.purpose === 'verification').length, CODES_PER_DAY, 'and no more texts to it')
  // one participant, many numbers
  for (let i = 0; i < CODES_PER_DAY; i++) t.equal((await ask(busy, `+4479111234${70 + i}`)).status, 200, `number ${i + 1}`)
  const sixth = await ask(busy, '+447911123499')
  t.equal(sixth.status, 429, 'a sixth number for the same participant is refused')
  t.ok(Number(sixth.headers['retry-after']) <= 86_400 && Number(sixth.headers['retry-after']) > 23 * 3600, `its own limit: until its oldest code is a day old (${String(sixth.headers['retry-after'])} s)`)
  t.equal((await ask(other, '+447911123499')).status, 200, 'while another participant may ask for it')
})

t.test('a day of codes and of idle replies is 24 hours, also on a database whose time zone just moved its clocks', async (t) => {
  // A database (or its role) is often set to the country's zone (Europe/London). In such a session
  // "now() - interval '1 day'" is the same wall-clock time yesterday, 23 hours ago on the day after the clocks go
  // forward, so a number could be texted a sixth code, and answered a sixth idle reply, within 24 hours. The service
  // runs its sessions in UTC (src/plugins/db.ts) and counts the windows in hours. The database here is given a zone
  // whose summer time began 12 hours ago (a POSIX rule), as London's does each March.
  const db = await createTestDb()
  const start = new Date(Date.now() - 12 * 3_600_000)
  const dayOfYear = Math.floor((start.getTime() - Date.UTC(start.getUTCFullYear(), 0, 1)) / 86_400_000)
  const zone = `AAA0BBB,${dayOfYear}/${start.getUTCHours()},${(dayOfYear + 180) % 365}/0`
  const admin = new pg.Client({ connectionString: db.url })
  await admin.connect()
  await admin.query(`ALTER DATABASE "${new URL(db.url).pathname.slice(1)}" SET timezone = '${zone}'`)
  await admin.end()
  const own = new pg.Client({ connectionString: db.url })
  await own.connect()
  const dayBack = "SELECT extract(epoch FROM now() - (now() - interval '1 day'))::int / 3600 AS h"
  t.equal((await own.query<{ h: number }>(dayBack)).rows[0].h, 23, 'a session left in that zone: a calendar day back is 23 hours back')
  await own.end()
  const s = await smsApp(t, {}, { db })
  t.teardown(async () => { await db.drop() })
  const { ctx } = s
  for (const [name, pool] of [['main', ctx.app.pool], ['reads', ctx.app.readPool]] as const) {
    t.equal((await pool.query<{ z: string }>("SELECT current_setting('TimeZone') AS z")).rows[0].z, 'UTC', `the service's ${name} sessions run in UTC`)
    t.equal((await pool.query<{ h: number }>(dayBack)).rows[0].h, 24, `and there a day back is 24 hours (${name})`)
  }

  const sc = await scenario(ctx)
  // CODES_PER_DAY codes texted to the number 23 and a half hours ago, by others
  for (let i = 0; i < CODES_PER_DAY; i++) {
    await ctx.app.pool.query(`INSERT INTO sms_outbox (currency_id, to_phone, purpose, body, status, created_at)
      VALUES ($1, $2, 'verification', 'code', 'sent', now() - interval '23 hours 30 minutes')`, [sc.currency.id, PHONE])
  }
  const put = await ctx.call('PUT', `/v1/participants/${sc.member.id}/phone`, { token: sc.member.token, body: { phone: PHONE } })
  t.equal(put.status, 429, 'no sixth code within 24 hours')
  t.equal(put.headers['retry-after'], '86400')

  // IDLE_REPLIES_PER_DAY idle texts answered 23 and a half hours ago
  const STRANGER = '+447911123999'
  for (let i = 0; i < IDLE_REPLIES_PER_DAY; i++) {
    await ctx.app.pool.query(`INSERT INTO sms_inbound (message_sid, from_phone, command, outcome, reply, received_at)
      VALUES ($1, $2, 'help', 'help', 'the help text', now() - interval '23 hours 30 minutes')`, [`SMold${i}`, STRANGER])
  }
  t.equal((await text(ctx, STRANGER, 'HELP')).status, 200)
  t.same(await inbox(s.db, STRANGER), [], 'no sixth idle reply within 24 hours')
  t.same((await s.db.query("SELECT reply FROM sms_inbound WHERE from_phone = $1 AND message_sid NOT LIKE 'SMold%'", [STRANGER])).rows, [{ reply: '' }], 'recorded, unanswered')
})

t.test('business text codes: at registration, by PATCH, unique per currency, upper-case, in the directory', async (t) => {
  const { ctx } = await smsApp(t)
  const sc = await scenario(ctx)
  const shop = await registerBusiness(ctx, sc.code, { tradingName: 'Montpelier Deli', sector: 'food', postcode: 'BS6 5AB', textCode: 'deli' } as any)
  const view = await ctx.call('GET', `/v1/participants/${shop.id}`, { token: ctx.issuerToken })
  t.equal(view.body.textCode, 'DELI')
  const dup = await ctx.call('POST', `/v1/currencies/${sc.code}/businesses`, {
    token: ctx.issuerToken,
    body: { tradingName: 'Deli Two', sector: 'food', postcode: 'BS6 5AB', independent: true, username: 'deli-two', password: 'business-password', textCode: 'DeLi' },
  })
  t.equal(dup.status, 409)
  t.equal(dup.body.code, 'TEXT_CODE_TAKEN')
  const name = await ctx.call('POST', `/v1/currencies/${sc.code}/businesses`, {
    token: ctx.issuerToken,
    body: { tradingName: 'Deli Three', sector: 'food', postcode: 'BS6 5AB', independent: true, username: shop.username, password: 'business-password', textCode: 'DELI3' },
  })
  t.equal(name.body.code, 'USERNAME_TAKEN', 'a taken username is still told as such')
  const patch = await ctx.call('PATCH', `/v1/participants/${sc.business.id}`, { token: sc.business.token, body: { textCode: 'deli' } })
  t.equal(patch.status, 409)
  t.equal((await ctx.call('PATCH', `/v1/participants/${sc.business.id}`, { token: sc.business.token, body: { textCode: 'cafe7' } })).body.textCode, 'CAFE7')
  for (const textCode of ['ab', '1ABC', 'ABCDEFGHIJKLM', 'AB-CD', 'ÄBC']) {
    t.equal((await ctx.call('PATCH', `/v1/participants/${sc.business.id}`, { token: sc.business.token, body: { textCode } })).status, 422, textCode)
  }
  const member = await ctx.call('PATCH', `/v1/participants/${sc.member.id}`, { token: ctx.issuerToken, body: { textCode: 'MEMBER' } })
  t.equal(member.status, 422, 'a member has no text code')
  // another currency may use the same code
  t.equal((await ctx.call('POST', '/v1/currencies', { token: ctx.issuerToken, body: { code: 'OTH', name: 'Other' } })).status, 201)
  const there = await registerBusiness(ctx, 'OTH', { tradingName: 'Other Deli', sector: 'food', postcode: 'BS6 5AB', textCode: 'DELI' } as any)
  t.ok(there.id)
  const dir = await ctx.call('GET', `/v1/currencies/${sc.code}/businesses?q=Deli`)
  t.match(dir.body.items, [{ tradingName: 'Montpelier Deli', textCode: 'DELI' }])
  t.equal((await ctx.call('PATCH', `/v1/participants/${sc.business.id}`, { token: sc.business.token, body: { textCode: null } })).body.textCode, null)
})

t.test('the outbox: issuers of the currency only, codes hidden, paginated', async (t) => {
  const s = await smsApp(t)
  const { ctx } = s
  const sc = await scenario(ctx)
  await enrol(s, sc.member, PHONE)
  for (let i = 0; i < 3; i++) await text(ctx, PHONE, 'help')
  await text(ctx, '+447900000001', 'help')
  const issuerName = 'brs-issuer'
  await ctx.call('POST', `/v1/currencies/${sc.code}/issuers`, { token: ctx.issuerToken, body: { name: 'Staff', username: issuerName, password: 'staff-password' } })
  const issuer = await ctx.token(issuerName, 'staff-password')
  const seen: any[] = []
  let cursor: string | null = null
  do {
    const page: any = await ctx.call('GET', `/v1/sms/outbox?limit=2${cursor == null ? '' : `&cursor=${cursor}`}`, { token: issuer })
    t.equal(page.status, 200)
    seen.push(...page.body.items)
    cursor = page.body.nextCursor
  } while (cursor != null)
  t.same(seen.map(x => x.purpose), ['verification', 'reply', 'reply', 'reply'], 'its currency\'s texts, oldest first; not the unknown number\'s')
  t.match(seen[0].body, 'is ******. It expires')
  // The code could only leak through a text's body; ids and timestamps are random digits that may contain it by chance.
  const code = s.lastCode()
  t.same(seen.filter(x => x.body.includes(code)).map(x => x.purpose), [], 'no text shows the code')
  t.match(seen[1], { currency: sc.code, participantId: sc.member.id, to: PHONE, status: 'queued', attempts: 0, sentAt: null })
  const all = await ctx.call('GET', '/v1/sms/outbox', { token: ctx.issuerToken })
  t.equal(all.body.items.length, 5, 'the platform issuer also sees the reply to the unknown number')
  t.equal((await ctx.call('GET', '/v1/sms/outbox?status=sent', { token: issuer })).body.items.length, 0)
  t.equal((await ctx.call('GET', '/v1/sms/outbox?cursor=nonsense', { token: issuer })).status, 400)
  t.equal((await ctx.call('GET', `/v1/sms/outbox?currency=${sc.code}`, { token: sc.member.token })).status, 403)
})

t.test('a proof of a number and its holder asking for it again at once: both answered, never a deadlock', async (t) => {
  const s = await smsApp(t)
  const { ctx, now } = s
  const sc = await scenario(ctx)
  const statuses = new Map<string, number>()
  for (let round = 0; round < 12; round++) {
    const [holder, prover] = [await registerMember(ctx, sc.code), await registerMember(ctx, sc.code)]
    const held = `+4479111250${String(round).padStart(2, '0')}`
    await enrol(s, holder, held)
    now.t += 61_000
    // the holder has another number pending; the prover is about to prove the held one
    t.equal((await ctx.call('PUT', `/v1/participants/${holder.id}/phone`, { token: holder.token, body: { phone: `+4479111260${String(round).padStart(2, '0')}` } })).status, 200)
    t.equal((await ctx.call('PUT', `/v1/participants/${prover.id}/phone`, { token: prover.token, body: { phone: held } })).status, 200)
    const code = s.lastCode()
    now.t += 61_000
    // the proof takes the number from the holder (its row) while holding the number; the holder's request holds
    // its row and wants the number
    const [proof, again] = await Promise.all([
      ctx.call('POST', `/v1/participants/${prover.id}/phone/verification`, { token: prover.token, body: { code } }),
      ctx.call('PUT', `/v1/participants/${holder.id}/phone`, { token: holder.token, body: { phone: held } }),
    ])
    const key = `proof ${proof.status}, again ${again.status}`
    statuses.set(key, (statuses.get(key) ?? 0) + 1)
    t.equal(proof.status, 200, `round ${round}: the proof succeeds`)
    t.ok(again.status < 500, `round ${round}: the holder's request is answered (${again.status} ${again.body?.code as string ?? ''})`)
  }
  t.comment(JSON.stringify(Object.fromEntries(statuses)))
})

t.test('a reply the relay was sending when its number changed hands, and that failed for now, is not sent later to the new holder', async (t) => {
  const { s, ctx, db, sc } = await enrolled(t)
  const other = await registerMember(ctx, sc.code)
  // the relay has texted what was queued so far (the member's code)
  await db.query(`UPDATE sms_outbox SET status = 'sent' WHERE status = 'queued'`)
  await text(ctx, PHONE, 'bal 4821')
  // someone else has the phone now and asks for the number
  t.equal((await ctx.call('PUT', `/v1/participants/${other.id}/phone`, { token: other.token, body: { phone: PHONE } })).status, 200)
  const code = s.lastCode()

  const sent: string[] = []
  let confirm: Promise<{ status: number }> | null = null
  // the gateway: while the member's balance is being handed to it, the other member confirms the number; then the
  // gateway is busy (503), so the text would be tried again later
  const gateway = {
    async deliver (to: string, body: string): Promise<string> {
      if (body.includes('balance') && confirm == null) {
        confirm = ctx.call('POST', `/v1/participants/${other.id}/phone/verification`, { token: other.token, body: { code } })
        await confirm
        throw new GatewayError('gateway answered 503: busy', false)
      }
      sent.push(`${to}: ${body}`)
      return `SM${sent.length}`
    },
  }
  const relay = outboxRelay(db, gateway)
  await relay.round()
  t.ok(confirm != null, 'the balance reached the gateway once')
  t.equal((await confirm!).status, 200, 'the other member holds the number')
  // its pause over, the relay runs again
  await db.query(`UPDATE sms_outbox SET next_attempt_at = now() WHERE status = 'queued'`)
  await relay.round()
  t.notOk(sent.some(x => x.includes('balance')), 'the member\'s balance never went to the number\'s new holder')
  const row = (await db.query(`SELECT status FROM sms_outbox WHERE to_phone = $1 AND purpose = 'reply' AND participant_id = $2`, [PHONE, sc.member.id])).rows
  t.same(row, [{ status: 'failed' }], 'the reply is failed, not left to be sent')
})
