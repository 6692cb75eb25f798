import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'

// scrypt (memory-hard, in node:crypto). Stored as scrypt$N$r$p$salt$hash so the cost can rise later without
// invalidating old hashes.
const scryptAsync = promisify(scrypt) as (pw: string, salt: Buffer, len: number, o: object) => Promise<Buffer>
const KEYLEN = 32

export async function hashPassword (password: string, cost: number): Promise<string> {
  const salt = randomBytes(16)
  const hash = await scryptAsync(password, salt, KEYLEN, { N: cost, r: 8, p: 1, maxmem: 256 * cost * 8 })
  return `scrypt$${cost}$8$1$${salt.toString('base64url')}$${hash.toString('base64url')}`
}

export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, hash] = stored.split('$')
  if (alg !== 'scrypt' || hash == null) return false
  const expected = Buffer.from(hash, 'base64url')
  const N = Number(n)
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64url'), expected.length,
    { N, r: Number(r), p: Number(p), maxmem: 256 * N * Number(r) })
  return timingSafeEqual(actual, expected)
}
