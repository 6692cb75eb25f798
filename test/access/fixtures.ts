// Shared by the access tests: the harness, plus what these tests need to forge and inspect tokens.
import { SignJWT, type JWTPayload } from 'jose'
import type { SigningKey } from '../../src/auth/keys.js'
import { loadOpenApi } from '../openapi-validator.js'
export { balance, buildTestApp, issue, registerBusiness, registerMember, scenario, ISSUER, type TestContext } from '../helper.js'

export const loadDoc = () => loadOpenApi()

export const PROBLEM = /^application\/problem\+json/

/** A token like the service's own, with any claim or time overridden (to forge expired, foreign or odd ones). */
export async function mint (key: SigningKey, claims: JWTPayload, o: { iss?: string, aud?: string, exp?: number, nbf?: number, kid?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return await new SignJWT({ role: 'platform_issuer', cur: null, pid: null, ...claims })
    .setProtectedHeader({ alg: 'EdDSA', kid: o.kid ?? key.kid, typ: 'at+jwt' })
    .setSubject(String(claims.sub ?? '00000000-0000-7000-8000-000000000000'))
    .setIssuer(o.iss ?? 'circulate').setAudience(o.aud ?? 'circulate-api')
    .setIssuedAt(now - 5).setNotBefore(o.nbf ?? now - 5).setExpirationTime(o.exp ?? now + 600)
    .sign(key.privateKey)
}
