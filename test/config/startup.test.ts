import t from 'tap'
import { loadConfig, productionWarnings } from '../../src/config.js'

// Bad values of the environment stop the start with a message naming the variable, rather than running unsafely.

t.test('PUBLIC_URL is a scheme and a host (and port) only: nothing else is put into every pay link and QR code', async (t) => {
  // PUBLIC_URL is the base of every payUrl and QR text. The pattern let through a user and password
  // (https://user:secret@pay.example.org, printed into every QR code a till shows), spaces, quotes and angle
  // brackets; it now takes the same host grammar a Host header must match when PUBLIC_URL is unset.
  for (const bad of ['https://user:secret@pay.example.org', 'https://pay.example.org"><b>', 'https://pay example.org',
    'https://pay.example.org\\evil.example', `https://${'a'.repeat(300)}.org`, 'https://pay.example.org:99999x']) {
    t.throws(() => loadConfig({ PUBLIC_URL: bad }), /PUBLIC_URL/, `refused: ${bad.slice(0, 40)}`)
  }
  for (const good of ['https://pay.example.org', 'http://127.0.0.1:3000', 'https://[2001:db8::1]:8443', 'http://circulate_app:3000']) {
    t.equal(loadConfig({ PUBLIC_URL: good }).PUBLIC_URL, good, `taken: ${good}`)
  }
})

t.test('ISSUER_PASSWORD follows the password rules every other new password follows', async (t) => {
  // The platform issuer acts for every currency, yet its first password, from the environment, was checked for
  // length only: twelve spaces, one character repeated or the username itself made the most powerful login.
  for (const [password, why] of [[' '.repeat(12), 'only spaces'], ['a'.repeat(12), 'one character repeated'], ['platform-admin', 'the username']]) {
    t.throws(() => loadConfig({ ISSUER_USERNAME: 'platform-admin', ISSUER_PASSWORD: password }), new RegExp(`ISSUER_PASSWORD.*${why}`), `refused: ${why}`)
  }
  t.equal(loadConfig({ ISSUER_USERNAME: 'platform-admin', ISSUER_PASSWORD: 'a long, fine passphrase' }).ISSUER_USERNAME, 'platform-admin')
  t.equal(loadConfig({ ISSUER_USERNAME: 'platform-admin' }).ISSUER_PASSWORD, undefined, 'a username alone (after the first start) is fine')
})

t.test('settings unsafe on a real deployment are said at start when NODE_ENV is production', async (t) => {
  // not refused (the bench runs the built service with NODE_ENV=production and sets them), but never silent
  const risky = { WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_ALLOW_HTTP: 'true', SEED: '1' }
  const said = productionWarnings(loadConfig({ NODE_ENV: 'production', ...risky }))
  t.equal(said.length, 3)
  for (const name of Object.keys(risky)) t.ok(said.some(w => w.startsWith(name)), `${name} is named`)
  t.same(productionWarnings(loadConfig({ NODE_ENV: 'production' })), [], 'the defaults say nothing')
  t.same(productionWarnings(loadConfig({ NODE_ENV: 'development', ...risky })), [], 'nor does a laptop')
  t.same(productionWarnings(loadConfig({ NODE_ENV: 'production', SEED: 'auto' })), [], 'SEED=auto seeds only the embedded database')
})
