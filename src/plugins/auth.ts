import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { createLocalJWKSet, errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose'
import type { KeySet } from '../auth/keys.js'
import { DomainError } from '../domain/errors.js'
import type { Principal, Role } from '../domain/principal.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: {
      sign: (p: Principal) => Promise<{ accessToken: string, expiresIn: number }>
      jwks: () => { keys: Array<Record<string, unknown>> }
    }
  }
  interface FastifyRequest {
    /** The verified caller, or null for an anonymous request. Handlers pass it to services explicitly. */
    principal: Principal | null
  }
}

export interface AuthOptions {
  keys: KeySet, issuer: string, audience: string, ttlSeconds: number
  /** how long a verified token is remembered (0: verify every request), and how many are */
  cacheMs: number, cacheMax: number
}

const ROLES: readonly Role[] = ['platform_issuer', 'issuer', 'researcher', 'member', 'business']

export default fp<AuthOptions>(async (app, opts) => {
  const jwks = { keys: opts.keys.all.map(k => ({ ...k.publicJwk }) as Record<string, unknown>) }
  const verifyKeys = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0])

  app.decorate('tokens', {
    sign: async (p: Principal) => {
      const accessToken = await new SignJWT({ role: p.role, cur: p.currencyId, pid: p.participantId })
        .setProtectedHeader({ alg: 'EdDSA', kid: opts.keys.signing.kid, typ: 'at+jwt' })
        .setSubject(p.userId).setIssuer(opts.issuer).setAudience(opts.audience)
        .setIssuedAt().setNotBefore('0s').setExpirationTime(`${opts.ttlSeconds}s`)
        .sign(opts.keys.signing.privateKey)
      return { accessToken, expiresIn: opts.ttlSeconds }
    },
    jwks: () => jwks,
  })

  // Verified tokens, kept briefly: an EdDSA verification costs more CPU than the rest of a payment request's
  // handling in Node, and a client sends the same token many times. A cached token is still refused once it
  // expires; the cache only skips re-checking a signature already checked. Bounded: oldest entries go first.
  const verified = new Map<string, { principal: Principal, until: number }>()

  app.decorateRequest('principal', null)
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const header = request.headers.authorization
    if (header == null) return
    const m = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(header)
    if (m == null) throw new DomainError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <token>"')
    const now = Date.now()
    const hit = verified.get(m[1])
    if (hit != null) {
      if (now < hit.until) { request.principal = hit.principal; return }
      verified.delete(m[1])
    }
    let payload: JWTPayload
    try {
      // Only EdDSA: "none", HS256-with-the-public-key and other algorithm games fail here.
      ({ payload } = await jwtVerify(m[1], verifyKeys, {
        algorithms: ['EdDSA'], issuer: opts.issuer, audience: opts.audience, requiredClaims: ['sub', 'exp', 'role'],
      }))
    } catch (err) {
      throw new DomainError('UNAUTHENTICATED', tokenFailure(err))
    }
    const role = payload.role as Role
    if (!ROLES.includes(role) || typeof payload.sub !== 'string') throw new DomainError('UNAUTHENTICATED', 'the token has no valid role')
    const principal: Principal = {
      userId: payload.sub,
      role,
      currencyId: typeof payload.cur === 'string' ? payload.cur : null,
      participantId: typeof payload.pid === 'string' ? payload.pid : null,
    }
    request.principal = principal
    if (opts.cacheMs > 0 && typeof payload.exp === 'number') {
      if (verified.size >= opts.cacheMax) verified.delete(verified.keys().next().value as string)
      verified.set(m[1], { principal, until: Math.min(now + opts.cacheMs, payload.exp * 1000) })
    }
  })
}, { name: 'auth' })

function tokenFailure (err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'the token has expired'
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `the token's ${err.claim} claim is not valid`
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'the token was not signed by a key this service knows'
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'the token uses an algorithm this service does not accept'
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'the token signature is not valid'
  return 'the token is not valid'
}

/** Route guard: a principal is required. */
export function requirePrincipal (request: FastifyRequest): Principal {
  if (request.principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
  return request.principal
}
