import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, type CryptoKey } from 'jose'
import fs from 'node:fs'
import path from 'node:path'

// Signing keys (EdDSA, Ed25519). Several can be live: the first signs, all verify, so a key rotates without
// logging anyone out (add the new key first, retire the old one after the longest token lifetime). A retired
// key can also be kept as a public key only (JWT_RETIRED_PUBLIC_KEYS): it verifies but can never sign again.
export interface VerifyKey { kid: string, publicJwk: JWK }
export interface SigningKey extends VerifyKey { privateKey: CryptoKey }
export interface KeySet { signing: SigningKey, all: VerifyKey[] }

export async function keyFromJwk (jwk: JWK): Promise<SigningKey> {
  if (jwk.d == null) throw new Error('JWT_PRIVATE_KEYS: every key must be a private JWK (with "d")')
  // Tokens are verified as EdDSA only (plugins/auth.ts): another kind of key would sign tokens nothing accepts, and
  // its JWK less "d" is not a public key (an HMAC key's "k", an RSA key's primes), so it is refused at start.
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || typeof jwk.d !== 'string' ||
    (jwk.alg != null && jwk.alg !== 'EdDSA' && jwk.alg !== 'Ed25519')) {
    throw new Error('JWT_PRIVATE_KEYS: every key must be an Ed25519 private JWK (kty OKP, crv Ed25519, x, d; alg EdDSA or none)')
  }
  const kid = jwk.kid ?? await thumbprint(jwk)
  const privateKey = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, d: jwk.d }, 'EdDSA') as CryptoKey
  // only the public members are published (/.well-known/jwks.json), whatever else the configured JWK carries
  return { kid, privateKey, publicJwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid, alg: 'EdDSA', use: 'sig' } }
}

export async function generateJwk (): Promise<JWK> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  const jwk = await exportJWK(privateKey)
  return { ...jwk, alg: 'EdDSA', kid: await thumbprint(jwk) }
}

/** A public key that only verifies. A private JWK is refused: a retired key's secret should be gone. */
export async function verifyKeyFromJwk (jwk: JWK): Promise<VerifyKey> {
  if (jwk.d != null) throw new Error('JWT_RETIRED_PUBLIC_KEYS: give public keys only (no "d")')
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
    throw new Error('JWT_RETIRED_PUBLIC_KEYS: every key must be an Ed25519 public JWK (kty OKP, crv Ed25519, x)')
  }
  const kid = jwk.kid ?? await thumbprint(jwk)
  return { kid, publicJwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid, alg: 'EdDSA', use: 'sig' } }
}

export async function keySetFromJwks (jwks: JWK[], retired: JWK[] = []): Promise<KeySet> {
  if (jwks.length === 0) throw new Error('JWT_PRIVATE_KEYS: at least one key is needed')
  const live = await Promise.all(jwks.map(keyFromJwk))
  const kids = new Set(live.map(k => k.kid))
  const old = (await Promise.all(retired.map(verifyKeyFromJwk))).filter(k => !kids.has(k.kid))
  return { signing: live[0], all: [...live, ...old] }
}

/** The public half of a private JWK (for JWT_RETIRED_PUBLIC_KEYS when a key is retired). */
export async function publicJwk (jwk: JWK): Promise<JWK> {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid: jwk.kid ?? await thumbprint(jwk), alg: 'EdDSA', use: 'sig' }
}

/**
 * Keys from config (JWT_PRIVATE_KEYS, a JSON array of private JWKs), or else one generated on first start and
 * kept in the data folder (mode 600), so tokens survive a restart of the embedded default.
 */
export async function loadKeySet (configured: string | undefined, dataDir: string, retiredPublic?: string): Promise<KeySet> {
  const retired = parseJwks(retiredPublic, 'JWT_RETIRED_PUBLIC_KEYS') ?? []
  const keys = parseJwks(configured, 'JWT_PRIVATE_KEYS')
  if (keys != null) return await keySetFromJwks(keys, retired)
  const file = path.resolve(dataDir, 'jwt-keys.json')
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, JSON.stringify([await generateJwk()], null, 2), { mode: 0o600 })
  }
  return await keySetFromJwks(JSON.parse(fs.readFileSync(file, 'utf8')) as JWK[], retired)
}

function parseJwks (value: string | undefined, name: string): JWK[] | null {
  if (value == null || value.trim() === '') return null
  let parsed: unknown
  try { parsed = JSON.parse(value) } catch { throw new Error(`${name} is not valid JSON`) }
  return (Array.isArray(parsed) ? parsed : [parsed]) as JWK[]
}

/** A key's id when it has none: its RFC 7638 thumbprint (SHA-256), as jose computes it. */
async function thumbprint (jwk: JWK): Promise<string> {
  return await calculateJwkThumbprint(jwk, 'sha256')
}
