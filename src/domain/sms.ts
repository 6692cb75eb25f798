import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { parsePhoneNumberFromString } from 'libphonenumber-js'
import { DomainError } from './errors.js'
import { refusedAsSpaces } from './text.js'

// Pay by text, the pure parts (docs/text-payments.md): the gateway's request signature, the commands a member
// texts, phone numbers, text codes and the words of every reply. The service (src/services/sms.service.ts) does
// the rest: the database, the ledger, the outbound port.

/** Wrong PINs in a row that lock a participant's text payments until the PIN is set again (app or issuer). */
export const PIN_MAX_FAILURES = 3
/** Wrong verification codes before the code is spent and a new one must be asked for. */
export const CODE_MAX_FAILURES = 5
/** Verification codes texted in a day (24 hours) to one number, and asked for by one participant */
export const CODES_PER_DAY = 5
/**
 * Replies one number gets in 24 hours to texts that pay and read nothing (HELP, a text not understood, a number
 * nobody holds, a suspended login's, and those refused before a PIN is checked: no PIN set, the PIN locked, a PIN
 * word that is no PIN): past them such texts are recorded and not answered. An auto-responder that answers each of
 * our replies would otherwise text back and forth with the service for ever, and a flood of texts from numbers
 * nobody holds (or sent as a number whose PIN is locked) costs the scheme at most this many replies a number a day.
 */
export const IDLE_REPLIES_PER_DAY = 5
/** The outcomes of those texts (sms_inbound.outcome); the partial index sms_inbound_idle_replies_idx names them too
 *  (migration 20261231200000_idle_replies_refused_texts). */
export const IDLE_OUTCOMES = ['help', 'unknown_command', 'unknown_sender', 'suspended', 'no_pin', 'locked', 'bad_pin']

export type FormValue = string | string[]
export type FormFields = Record<string, FormValue>

/**
 * The gateway's signature (Twilio's X-Twilio-Signature): base64 HMAC-SHA1, keyed with the auth token, of the full
 * URL the gateway called followed by every POST parameter, sorted by name, as name then value with nothing
 * between (a repeated name: each of its values, sorted).
 */
export function gatewaySignature (authToken: string, url: string, fields: FormFields): string {
  let data = url
  for (const name of Object.keys(fields).sort()) {
    const v = fields[name]
    for (const value of Array.isArray(v) ? [...v].sort() : [v]) data += name + value
  }
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64')
}

/** Compares a received signature with the expected one in constant time (hashes first: equal lengths always). */
export function signatureMatches (expected: string, received: string | undefined): boolean {
  if (received == null || received === '') return false
  const a = createHash('sha256').update(expected).digest()
  const b = createHash('sha256').update(received).digest()
  return timingSafeEqual(a, b)
}

/** An application/x-www-form-urlencoded body as fields (a repeated name becomes a list of its values). */
export function parseForm (body: string): FormFields {
  const out: FormFields = Object.create(null) as FormFields
  for (const [k, v] of new URLSearchParams(body)) {
    const prior = out[k]
    out[k] = prior == null ? v : Array.isArray(prior) ? [...prior, v] : [prior, v]
  }
  return { ...out }
}

/**
 * The gateway's fields as the service reads them, once their signature has been checked on them as sent: every
 * character the API's text rule refuses (NUL and other controls, lone surrogates, bidirectional overrides) is read
 * as a space. A text is what the member typed; it is answered, never refused at the gateway (which would not retry
 * it, and the member would get no reply).
 */
export function readableForm (fields: FormFields): FormFields {
  // fromEntries defines each name as a field of its own, "__proto__" included (as parseForm does)
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, Array.isArray(v) ? v.map(x => refusedAsSpaces(x)) : refusedAsSpaces(v)]))
}

export type Command =
  | { kind: 'pay', code: string, amount: string, pin: string }
  | { kind: 'bal', pin: string }
  | { kind: 'help' }
  | { kind: 'unknown' }

/**
 * Digits as a phone types them, in any script (Arabic-Indic ١٢٣٤, fullwidth １２３４, Devanagari १२३४ ...), as the
 * ASCII digits 0-9. Unicode encodes each script's decimal digits (\p{Nd}) as runs of ten, 0 to 9 in order, so a
 * digit's value is its distance from the start of its run, modulo ten.
 */
export function asciiDigits (s: string): string {
  return s.replace(/(?![0-9])\p{Nd}/gu, (d) => {
    let cp = d.codePointAt(0)!
    let k = 0
    while (/\p{Nd}/u.test(String.fromCodePoint(cp - 1))) { cp--; k++ }
    return String(k % 10)
  })
}

/**
 * A text's command: case-insensitive words separated by any white space or invisible format character (a
 * zero-width space a keyboard put after the PIN is not part of the PIN), digits of any script read as 0-9; anything
 * else is 'unknown'.
 */
export function parseCommand (body: string): Command {
  const words = asciiDigits(body).split(/[\s\p{Cf}]+/u).filter(Boolean)
  const verb = (words[0] ?? '').toLowerCase()
  if (verb === 'pay' && words.length === 4) return { kind: 'pay', code: words[1].toUpperCase(), amount: words[2], pin: words[3] }
  if (verb === 'bal' && words.length === 2) return { kind: 'bal', pin: words[1] }
  if ((verb === 'help' || verb === '?') && words.length === 1) return { kind: 'help' }
  return { kind: 'unknown' }
}

/** Amounts people type: "5", "5.00", "£5", "B£5.50". The ledger's own parser then holds it to the currency. */
export const normaliseAmount = (raw: string) => raw.replace(/^(b?£|\$)/i, '')

const E164 = /^\+[1-9][0-9]{6,14}$/

/** A phone number in E.164 that is a valid number for its country, normalised; otherwise null. */
export function e164 (raw: string): string | null {
  const s = raw.trim()
  if (!E164.test(s)) return null
  const p = parsePhoneNumberFromString(s)
  return p != null && p.isValid() ? p.number : null
}

/** A phone number the API was sent: E.164 and valid, or a 422 naming the field. */
export function parsePhone (raw: string, pointer = '/phone'): string {
  const n = e164(raw)
  if (n == null) {
    throw new DomainError('VALIDATION_FAILED', 'phone must be a valid number in E.164 form, e.g. "+447911123456"',
      [{ pointer, detail: 'not a valid E.164 phone number' }])
  }
  return n
}

/** A business's text code: 3 to 12 letters and digits, starting with a letter; stored upper-case. */
export const TEXT_CODE_PATTERN = '^[A-Za-z][A-Za-z0-9]{2,11}$'
export const normaliseTextCode = (raw: string) => raw.trim().toUpperCase()

/** Text PINs: 4 to 8 digits. */
export const PIN_PATTERN = '^[0-9]{4,8}$'
export const isPin = (s: string) => /^[0-9]{4,8}$/.test(s)

/** At most n UTF-16 units of s, never half of a character: a pair cut in two would be sent as U+FFFD. */
const cut = (s: string, n: number) => s.slice(0, n).replace(/[\ud800-\udbff]$/, '')

/** The words of every text the service sends: short, one message each (under 160 GSM characters). */
export const replies = {
  help: () => 'Pay by text: PAY <code> <amount> <PIN> (e.g. PAY MONTPELIER 5.00 1234). BAL <PIN> for your balance. HELP for this message.',
  unknownCommand: () => 'Sorry, that was not understood. Text PAY <code> <amount> <PIN>, BAL <PIN> or HELP.',
  notRegistered: () => 'This number is not set up for text payments. Register it in the app or ask your scheme.',
  noPin: () => 'Set a text PIN in the app or ask your scheme before paying by text.',
  locked: () => 'Text payments are locked after 3 wrong PINs. Set a new PIN in the app or ask your scheme.',
  badPin: () => 'A text PIN is 4 to 8 digits. Text PAY <code> <amount> <PIN> or BAL <PIN>.',
  wrongPin: (left: number) => left > 0
    ? `Wrong PIN. ${left} ${left === 1 ? 'try' : 'tries'} left before text payments lock.`
    : 'Wrong PIN. Text payments are now locked: set a new PIN in the app or ask your scheme.',
  unknownBusiness: (code: string) => `No business with code ${cut(code, 20)}. Check the code in the directory and try again.`,
  badAmount: () => 'That amount was not understood. Send e.g. PAY MONTPELIER 5.00 1234.',
  insufficientFunds: (balance: string, cur: string) => `Not paid: not enough funds (balance ${balance} ${cur}).`,
  refused: () => 'Not paid: the payment was refused. Ask your scheme for help.',
  paid: (amount: string, cur: string, name: string, balance: string, ref: string) =>
    `Paid ${amount} ${cur} to ${cut(name, 40)}. Balance ${balance} ${cur}. Ref ${ref}`,
  received: (amount: string, cur: string, fee: string, ref: string) =>
    `Received ${amount} ${cur} by text${fee === '' ? '' : ` (fee ${fee})`}. Ref ${ref}`,
  balance: (balance: string, cur: string) => `Your balance is ${balance} ${cur}.`,
  code: (code: string) => `Your code to confirm this number for text payments is ${code}. It expires in 10 minutes.`,
}

/** A short reference for a transfer in a text: the last 8 characters of its id. */
export const shortRef = (transferId: string) => transferId.replaceAll('-', '').slice(-8).toUpperCase()
