import { createHmac } from 'node:crypto'
import pg from 'pg'
import type { Test } from 'tap'
import type { Config } from '../../src/config.js'
import type { TestDb } from '../../support/postgres.js'
import { buildTestApp, type TestContext } from '../helper.js'

export { balance, buildTestApp, issue, registerBusiness, registerMember, scenario } from '../helper.js'

export const TOKEN = 'gateway-auth-token-0123456789'
export const WEBHOOK = 'https://sms.example.org/v1/sms/inbound'

/** An app with text payments on, a clock tests move, codes they know, and a pool to look at the tables. */
export async function smsApp (t: Test, overrides: Partial<Config> = {}, o: { db?: TestDb } = {}) {
  const now = { t: Date.parse('2026-11-30T10:00:00Z') }
  let codes = 0
  const ctx = await buildTestApp(t, { SMS_AUTH_TOKEN: TOKEN, SMS_PUBLIC_URL: WEBHOOK, ...overrides }, {
    smsClock: () => new Date(now.t), smsCodes: () => String(100000 + codes++), db: o.db,
  })
  const db = new pg.Pool({ connectionString: ctx.db.url, max: 2 })
  db.on('error', () => {})
  t.teardown(async () => { await db.end() })
  return { ctx, db, now, lastCode: () => String(100000 + codes - 1) }
}

/** The gateway's signature, written out here from its documentation (not the service's code). */
export function sign (token: string, url: string, fields: Record<string, string>): string {
  const data = url + Object.keys(fields).sort().map(k => k + fields[k]).join('')
  return createHmac('sha1', token).update(Buffer.from(data, 'utf8')).digest('base64')
}

let sids = 0
export const newSid = () => `SM${Date.now().toString(16)}${(sids++).toString(16).padStart(6, '0')}`

/** The gateway posting an incoming text, signed (or not, or badly). */
export async function text (ctx: TestContext, from: string, body: string, o: { sid?: string, signature?: string | null, extra?: Record<string, string> } = {}) {
  const fields: Record<string, string> = {
    ToCountry: 'GB', SmsStatus: 'received', AccountSid: 'AC0123', NumMedia: '0', ...o.extra,
    From: from, To: '+447700900000', Body: body, MessageSid: o.sid ?? newSid(),
  }
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' }
  const sig = o.signature === undefined ? sign(TOKEN, WEBHOOK, fields) : o.signature
  if (sig != null) headers['x-twilio-signature'] = sig
  const r = await ctx.call('POST', '/v1/sms/inbound', { raw: new URLSearchParams(fields).toString(), headers })
  return { ...r, sid: fields.MessageSid, fields }
}

/** Registers and confirms a phone and sets a PIN for a participant, through the API as its owner would. */
export async function enrol (s: { ctx: TestContext, lastCode: () => string, now: { t: number } }, who: { id: string, token: string }, phone: string, pin = '1234') {
  const { ctx } = s
  const put = await ctx.call('PUT', `/v1/participants/${who.id}/phone`, { token: who.token, body: { phone } })
  if (put.status !== 200) throw new Error(`phone: ${put.text}`)
  const ok = await ctx.call('POST', `/v1/participants/${who.id}/phone/verification`, { token: who.token, body: { code: s.lastCode() } })
  if (ok.status !== 200) throw new Error(`verify: ${ok.text}`)
  const p = await ctx.call('PUT', `/v1/participants/${who.id}/text-pin`, { token: who.token, body: { pin } })
  if (p.status !== 200) throw new Error(`pin: ${p.text}`)
  return p.body
}

/** Texts queued for a number, oldest first (as the phone would receive them). */
export async function inbox (db: pg.Pool, phone: string): Promise<Array<{ purpose: string, body: string, in_reply_to: string | null }>> {
  return (await db.query('SELECT purpose, body, in_reply_to FROM sms_outbox WHERE to_phone = $1 ORDER BY id', [phone])).rows
}
