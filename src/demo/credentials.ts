import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

export interface DemoCredentials { username: string, password: string }

/**
 * The embedded default's platform issuer: a random password generated on first start and kept (mode 600) in the
 * data folder, so a second start prints the same credentials.
 */
export function demoIssuer (dataDir: string): DemoCredentials {
  const file = path.resolve(dataDir, 'demo-credentials.json')
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as DemoCredentials
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

/** The logins kept by an earlier start, if any (a second start prints them again). */
export function savedDemoLogins (dataDir: string): DemoLogins | null {
  const file = path.resolve(dataDir, 'demo-logins.json')
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) as DemoLogins : null
}
