import { exportJWK, generateKeyPair, importJWK, type JWK, type CryptoKey } from 'jose'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

// Signing keys (EdDSA, Ed25519). Several can be live: the first signs, all verify, so a key rotates without
// logging anyone out (add the new key first, retire the old one after the longest token lifetime).
export interface SigningKey { kid: string, privateKey: CryptoKey, publicJwk: JWK }
export interface KeySet { signing: SigningKey, all: SigningKey[] }

export async function keyFromJwk (jwk: JWK): Promise<SigningKey> {
  if (jwk.d == null) throw new Error('JWT_PRIVATE_KEYS: every key must be a private JWK (with "d")')
  const kid = jwk.kid ?? thumbprint(jwk)
  const privateKey = await importJWK({ ...jwk, alg: jwk.alg ?? 'EdDSA' }, jwk.alg ?? 'EdDSA') as CryptoKey
  const { d: _d, ...pub } = jwk
  return { kid, privateKey, publicJwk: { ...pub, kid, alg: jwk.alg ?? 'EdDSA', use: 'sig' } }
}

export async function generateJwk (): Promise<JWK> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  const jwk = await exportJWK(privateKey)
  return { ...jwk, alg: 'EdDSA', kid: thumbprint(jwk) }
}

export async function keySetFromJwks (jwks: JWK[]): Promise<KeySet> {
  if (jwks.length === 0) throw new Error('JWT_PRIVATE_KEYS: at least one key is needed')
  const all = await Promise.all(jwks.map(keyFromJwk))
  return { signing: all[0], all }
}

/**
 * Keys from config (JWT_PRIVATE_KEYS, a JSON array of private JWKs), or else one generated on first start and
 * kept in the data folder (mode 600), so tokens survive a restart of the embedded default.
 */
export async function loadKeySet (configured: string | undefined, dataDir: string): Promise<KeySet> {
  if (configured != null && configured.trim() !== '') {
    let parsed: unknown
    try { parsed = JSON.parse(configured) } catch { throw new Error('JWT_PRIVATE_KEYS is not valid JSON') }
    return await keySetFromJwks((Array.isArray(parsed) ? parsed : [parsed]) as JWK[])
  }
  const file = path.resolve(dataDir, 'jwt-keys.json')
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, JSON.stringify([await generateJwk()], null, 2), { mode: 0o600 })
  }
  return await keySetFromJwks(JSON.parse(fs.readFileSync(file, 'utf8')) as JWK[])
}

function thumbprint (jwk: JWK): string {
  return createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })).digest('base64url').slice(0, 16)
}
