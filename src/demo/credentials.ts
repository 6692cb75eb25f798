import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

export interface DemoCredentials { username: string, password: string }

const isCredentials = (c: unknown): c is DemoCredentials =>
  typeof c === 'object' && c != null && typeof (c as DemoCredentials).username === 'string' && typeof (c as DemoCredentials).password === 'string'

/**
 * The embedded default's platform issuer: a random password generated on first start and kept (mode 600) in the
 * data folder, so a second start prints the same credentials.
 */
export function demoIssuer (dataDir: string): DemoCredentials {
  const file = path.resolve(dataDir, 'demo-credentials.json')
  if (fs.existsSync(file)) {
    // The one file a start cannot do without: the platform issuer exists with this password, which is nowhere else.
    let c: unknown
    let why = 'it is not the demo\'s credentials'
    try { c = JSON.parse(fs.readFileSync(file, 'utf8')) } catch (err) { why = (err as Error).message }
    if (isCredentials(c)) return c
    throw new Error(`the demo's platform issuer file ${file} cannot be read (${why}): it holds that login's password, which is kept ` +
      `nowhere else. Restore it from a copy, or, for a fresh demo, stop and delete the data folder ${path.resolve(dataDir)}.`)
  }
  const creds = { username: 'issuer', password: randomBytes(12).toString('base64url') }
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, JSON.stringify(creds, null, 2), { mode: 0o600 })
  return creds
}

export interface DemoLogins {
  currencyIssuer: DemoCredentials
  researcher: DemoCredentials
  member: DemoCredentials
  business: DemoCredentials
}

/**
 * The demo's other logins (an issuer of the simulated currency, a researcher, a member, a business): random
 * passwords made on first start and kept (mode 600) next to the platform issuer's, never defaults.
 */
export function demoLogins (dataDir: string, currencyCode: string): DemoLogins {
  const file = path.resolve(dataDir, 'demo-logins.json')
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as DemoLogins
  const make = (username: string) => ({ username, password: randomBytes(12).toString('base64url') })
  const logins: DemoLogins = {
    currencyIssuer: make(`${currencyCode.toLowerCase()}-issuer`),
    researcher: make('researcher'),
    member: make('member'),
    business: make('business'),
  }
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, JSON.stringify(logins, null, 2), { mode: 0o600 })
  return logins
}

/**
 * The logins kept by an earlier start, if any (a second start prints them again). A file that cannot be read is
 * told to `warn` and taken as none: the logins themselves are in the database, only their passwords' copy is lost.
 */
export function savedDemoLogins (dataDir: string, warn: (msg: string) => void = () => {}): DemoLogins | null {
  const file = path.resolve(dataDir, 'demo-logins.json')
  if (!fs.existsSync(file)) return null
  let l: unknown
  let why = 'it is not the demo\'s logins'
  try { l = JSON.parse(fs.readFileSync(file, 'utf8')) } catch (err) { why = (err as Error).message }
  const o = l as Record<string, unknown> | null
  if (typeof o === 'object' && o != null && [o.currencyIssuer, o.researcher, o.member, o.business].every(isCredentials)) return o as unknown as DemoLogins
  warn(`the demo's logins file ${file} cannot be read (${why}); their passwords are not printed. The logins and the data in the ` +
    `database are as they were. To load a fresh demo with new logins, stop Circulate and delete the data folder ${path.resolve(dataDir)}.`)
  return null
}
