import { createHash, randomBytes } from 'node:crypto'

// API keys are 256-bit random secrets, so a plain sha256 is enough to store them: there is nothing to
// brute-force (unlike a password), and the lookup by hash stays one indexed query. The "circ_" prefix lets
// secret scanners recognise a leaked key.
const PREFIX = 'circ_'

export function newApiKey (): { key: string, hash: string, prefix: string } {
  const key = PREFIX + randomBytes(32).toString('base64url')
  return { key, hash: hashApiKey(key), prefix: key.slice(0, PREFIX.length + 6) }
}

export const hashApiKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex')

export const looksLikeApiKey = (key: string): boolean => /^circ_[A-Za-z0-9_-]{43}$/.test(key)
