import t from 'tap'
import { generateJwk, keyFromJwk, keySetFromJwks, verifyKeyFromJwk } from '../../src/auth/keys.js'

// A key configured without a "kid" is named by its RFC 7638 thumbprint (jose's calculateJwkThumbprint).
// The key of RFC 8037, appendix A.1, whose thumbprint appendix A.3 gives.
const RFC8037 = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', d: 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A' }
const THUMBPRINT = 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k'

t.test('a key without a kid is named by its RFC 7638 thumbprint', async t => {
  const { d: _d, ...pub } = RFC8037
  t.equal((await verifyKeyFromJwk(pub)).kid, THUMBPRINT, 'a retired public key')
  t.equal((await keyFromJwk(RFC8037)).kid, THUMBPRINT, 'a private key')
  t.equal((await keyFromJwk({ ...RFC8037, kid: 'mine' })).kid, 'mine', 'a kid given is kept')
})

t.test('a generated key carries its thumbprint as its kid', async t => {
  const jwk = await generateJwk()
  const { kid, ...rest } = jwk
  t.equal(kid, (await keyFromJwk(rest)).kid)
  t.equal(kid?.length, 43, 'a whole SHA-256, base64url')
})

// JWT_PRIVATE_KEYS is the operator's, but a wrong key in it must stop the start, not run: the service verifies
// EdDSA (Ed25519) tokens only, so any other key signs tokens nothing accepts, and its public half, published at
// /.well-known/jwks.json, was the JWK less its "d": an HMAC key's secret ("k") or an RSA key's primes ("p", "q",
// "dp", "dq", "qi") were published with it.
t.test('a signing key that is not an Ed25519 private JWK is refused, and no secret member is ever published', async t => {
  const { generateKeyPair, exportJWK } = await import('jose')
  const rsa = { ...await exportJWK((await generateKeyPair('RS256', { extractable: true })).privateKey), alg: 'RS256' }
  const ec = { ...await exportJWK((await generateKeyPair('ES256', { extractable: true })).privateKey), alg: 'ES256' }
  const hmac = { kty: 'oct', k: Buffer.from('a shared secret').toString('base64url'), d: 'x', alg: 'HS256' }
  for (const [name, jwk] of [['RSA', rsa], ['P-256', ec], ['HMAC', hmac], ['Ed25519 named for another algorithm', { ...RFC8037, alg: 'ES256' }]] as const) {
    await t.rejects(keyFromJwk(jwk), /Ed25519/, `${name}: refused, naming what is wanted`)
    await t.rejects(keySetFromJwks([await generateJwk(), jwk]), /Ed25519/, `${name}: refused as a second key too`)
  }
  // whatever else a valid key's JWK carries, only its public members are published
  const extra = { ...RFC8037, p: 'secret-p', q: 'secret-q', k: 'secret-k', key_ops: ['sign'] }
  t.same(Object.keys((await keyFromJwk(extra)).publicJwk).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x'])
})
