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
