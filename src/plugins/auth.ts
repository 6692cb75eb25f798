import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import {
  createLocalJWKSet, createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify, SignJWT, type JWTPayload,
} from 'jose'
import { FifoMap } from 'toad-cache'
import type { KeySet } from '../auth/keys.js'
import { revocationOf } from '../auth/revocation.js'
import { isScope, type AuditAction, type Scope } from '../domain/access.js'
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
  interface FastifyContextConfig {
    /** The scope an API-key token needs for this route. A route without one is closed to API keys. */
    scope?: Scope
    /** Open to anyone: an API-key token may call it like any other caller. */
    public?: boolean
    /** Every token may call it, an API key's whatever its scopes (a route that tells the caller about itself only). */
    anyScope?: boolean
    /** Refused attempts at this issuer action are written to the audit trail (src/plugins/audit.ts). */
    audit?: { action: AuditAction, issuersOnly?: boolean }
  }
}

/** An external identity provider whose tokens this service accepts (OIDC access tokens, verified by its JWKS). */
export interface OidcOptions {
  jwksUrl: string
  issuer: string
  audience: string
  claims: { role: string, currency: string, participant: string, user: string, name: string }
}

export interface AuthOptions {
  keys: KeySet, issuer: string, audience: string, ttlSeconds: number, oidc?: OidcOptions | null
  /** how long a verified signature is remembered (0: verify every request), and for how many tokens */
  cacheMs?: number, cacheMax?: number
  /** tests only: the time tokens are dated by and checked against (default: the wall clock) */
  clock?: () => Date
}

const ROLES: readonly Role[] = ['platform_issuer', 'issuer', 'researcher', 'member', 'business']
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
// Asymmetric algorithms only: a symmetric one would let anyone who has the public key sign ("HS256 confusion").
const OIDC_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA']

const unauthenticated = (detail: string) => new DomainError('UNAUTHENTICATED', detail)

export default fp<AuthOptions>(async (app, opts) => {
  const jwks = { keys: opts.keys.all.map(k => ({ ...k.publicJwk }) as Record<string, unknown>) }
  const localKeys = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0])
  const oidc = opts.oidc ?? null
  const clock = opts.clock ?? (() => new Date())
  const remoteKeys = oidc == null ? null : createRemoteJWKSet(new URL(oidc.jwksUrl), { timeoutDuration: 3000 })

  app.decorate('tokens', {
    sign: async (p: Principal) => {
      const claims: JWTPayload = { role: p.role, cur: p.currencyId, pid: p.participantId }
      if (p.username != null) claims.usr = p.username
      if (p.apiKeyId != null) claims.akid = p.apiKeyId
      if (p.scopes != null) claims.scope = p.scopes.join(' ')
      if (p.authAt != null) claims.auth_ms = p.authAt
      const now = Math.floor(clock().getTime() / 1000)
      const accessToken = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'EdDSA', kid: opts.keys.signing.kid, typ: 'at+jwt' })
        .setSubject(p.userId).setIssuer(opts.issuer).setAudience(opts.audience)
        .setIssuedAt(now).setNotBefore(now).setExpirationTime(now + opts.ttlSeconds)
        .sign(opts.keys.signing.privateKey)
      return { accessToken, expiresIn: opts.ttlSeconds }
    },
    jwks: () => jwks,
  })

  // Verified signatures, kept briefly: an EdDSA verification cost more CPU than the rest of a payment request's
  // handling (docs/performance.md, "Other choices a profile and the bench pointed at"), and a client sends the same
  // token many times. Only the signature check is skipped: a remembered token still stops working when it expires,
  // and everything after the signature (roles, API-key revocation) is checked on every request. toad-cache
  // (fastify's own router cache) keeps them: bounded, the oldest entries go first, and each is dropped cacheMs after
  // it was verified.
  const cacheMs = opts.cacheMs ?? 0
  const signatures = new FifoMap<{ payload: JWTPayload, until: number }>(opts.cacheMax ?? 10_000, cacheMs)

  /** One of this service's own tokens: signed by a configured key (live or retired), for this issuer and audience. */
  async function local (token: string): Promise<Principal> {
    const now = clock()
    const hit = signatures.get(token)
    // the cache's own expiry reads the wall clock; a token's own expiry is checked here, by the clock tokens use
    const fresh = hit != null && now.getTime() < hit.until ? hit : undefined
    if (hit != null && fresh == null) signatures.delete(token)
    let payload = fresh?.payload
    if (payload == null) {
      payload = (await verified(false, async () => await jwtVerify(token, localKeys, {
        // Only EdDSA: "none", HS256-with-the-public-key and other algorithm games fail here.
        algorithms: ['EdDSA'], issuer: opts.issuer, audience: opts.audience, requiredClaims: ['sub', 'exp', 'role'], currentDate: now,
      }))).payload
      if (cacheMs > 0 && typeof payload.exp === 'number') signatures.set(token, { payload, until: payload.exp * 1000 })
    }
    const role = payload.role as Role
    if (!ROLES.includes(role) || typeof payload.sub !== 'string') throw unauthenticated('the token has no valid role')
    const p: Principal = {
      userId: payload.sub,
      role,
      currencyId: typeof payload.cur === 'string' ? payload.cur : null,
      participantId: typeof payload.pid === 'string' ? payload.pid : null,
      username: typeof payload.usr === 'string' ? payload.usr : null,
      issuedAt: typeof payload.iat === 'number' ? payload.iat : null,
      authAt: typeof payload.auth_ms === 'number' ? payload.auth_ms : null,
    }
    if (payload.akid != null) {
      // A token exchanged for an API key: it carries the key's scopes and dies with the key (principalOf checks the
      // key is still active).
      if (typeof payload.akid !== 'string' || typeof payload.scope !== 'string') throw unauthenticated('the token is not valid')
      p.apiKeyId = payload.akid
      p.scopes = payload.scope.split(' ').filter(isScope)
    }
    return p
  }

  /** A token of the external identity provider: verified by its published keys, mapped by the configured claims. */
  async function external (token: string, o: OidcOptions): Promise<Principal> {
    const { payload } = await verified(true, async () => await jwtVerify(token, remoteKeys!, {
      algorithms: OIDC_ALGORITHMS, issuer: o.issuer, audience: o.audience, requiredClaims: ['exp', o.claims.user], currentDate: clock(),
    }))
    const claim = (name: string) => payload[name]
    const roles = [claim(o.claims.role)].flat().filter((r): r is Role => ROLES.includes(r as Role))
    if (roles.length !== 1) throw unauthenticated(`the token's ${o.claims.role} claim must name exactly one role of this service`)
    const role = roles[0]
    const user = claim(o.claims.user)
    if (typeof user !== 'string' || user === '') throw unauthenticated(`the token's ${o.claims.user} claim is not valid`)
    let currencyId: string | null = null
    if (role !== 'platform_issuer') {
      const code = claim(o.claims.currency)
      if (typeof code !== 'string') throw unauthenticated(`the token has no ${o.claims.currency} claim`)
      currencyId = (await app.services.currencies.resolve(code).catch(() => null))?.id ?? null
      if (currencyId == null) throw unauthenticated(`the token's currency ${code} is not one this service knows`)
    }
    let participantId: string | null = null
    if (role === 'member' || role === 'business') {
      const pid = claim(o.claims.participant)
      if (typeof pid !== 'string' || !UUID.test(pid)) throw unauthenticated(`the token's ${o.claims.participant} claim must be a participant id`)
      participantId = pid
    }
    const name = claim(o.claims.name)
    // Prefixed so an external subject can never collide with a local user id (idempotency keys are per user).
    return {
      userId: `oidc:${user}`, role, currencyId, participantId, username: typeof name === 'string' ? name : user,
      issuedAt: typeof payload.iat === 'number' ? payload.iat : null,
    }
  }

  /** The caller a bearer token speaks for, or 401 UNAUTHENTICATED. */
  async function principalOf (header: string): Promise<Principal> {
    // The scheme is case-insensitive (RFC 9110); the token must look like a compact JWS before anything parses it.
    const m = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/i.exec(header)
    if (m == null) throw unauthenticated('the Authorization header must be "Bearer <token>"')
    // The (unverified) issuer only picks which keys verify the token; everything is then checked against them.
    const p = oidc != null && issuerOf(m[1]) === oidc.issuer ? await external(m[1], oidc) : await local(m[1])
    // a revoked API key, a suspended login (or the participant it speaks for: its API keys, its identity provider's
    // tokens) stops here, and so does a token issued before its login's tokens were revoked
    const revoked = await revocationOf(app.services, p)
    if (revoked != null) throw unauthenticated(revoked)
    return p
  }

  app.decorateRequest('principal', null)
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const header = request.headers.authorization
    if (header == null) return
    let p: Principal
    try {
      p = await principalOf(header)
    } catch (err) {
      // A route that needs no token (the token exchange, the JWKS, a currency, the directory) answers a token that
      // does not verify as it answers no token: a client still sending an expired one can log in again.
      if (request.routeOptions.config.public === true && !request.is404 && err instanceof DomainError && err.code === 'UNAUTHENTICATED') return
      throw err
    }
    request.principal = p
    if (p.scopes != null && !request.is404) {
      const cfg = request.routeOptions.config
      if (cfg.public !== true && cfg.anyScope !== true && (cfg.scope == null || !p.scopes.includes(cfg.scope))) {
        throw new DomainError('INSUFFICIENT_SCOPE', cfg.scope == null
          ? 'an API key cannot call this route; use a password login'
          : `this API key lacks the ${cfg.scope} scope`)
      }
    }
  })
}, { name: 'auth', dependencies: ['services'] })

function issuerOf (token: string): unknown {
  try { return decodeJwt(token).iss } catch { throw unauthenticated('the token is not a valid JWT') }
}

async function verified<T> (remote: boolean, verify: () => Promise<T>): Promise<T> {
  try {
    return await verify()
  } catch (err) {
    // The identity provider's keys could not be fetched: not the caller's fault, and not a reason to say 401.
    if (remote && (err instanceof joseErrors.JWKSTimeout || !(err instanceof joseErrors.JOSEError))) {
      throw new DomainError('SERVICE_UNAVAILABLE', 'the identity provider\'s keys could not be fetched; retry shortly')
    }
    throw unauthenticated(tokenFailure(err))
  }
}

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
