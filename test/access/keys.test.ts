import t from 'tap'
import { generateJwk, keyFromJwk, verifyKeyFromJwk } from '../../src/auth/keys.js'

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
