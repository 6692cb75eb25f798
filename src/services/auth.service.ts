import { normalizeIP } from '@fastify/rate-limit'
import { randomBytes } from 'node:crypto'
import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import { hashApiKey, looksLikeApiKey } from '../auth/api-key.js'
import { hashPassword, verifyPassword } from '../auth/password.js'
import { hashResetCode } from '../auth/reset-code.js'
import { checkNewPassword } from '../domain/password-rules.js'
import { auditRecord, RateLimitedError, type AuditRecord, type RequestMeta, type Scope } from '../domain/access.js'
import { DomainError } from '../domain/errors.js'
import type { Principal, Role } from '../domain/principal.js'
import { apiKeyRepo } from '../repositories/api-key.repo.js'
import { auditRepo } from '../repositories/audit.repo.js'
import { loginThrottleRepo, type ThrottlePolicy } from '../repositories/login-throttle.repo.js'
import { userRepo } from '../repositories/user.repo.js'
import type { WhoAmI } from '../schemas/access.js'

export interface LoginPolicy extends ThrottlePolicy {
  /** tests only: the time the throttle reads; default (null), the database's clock, shared by every instance */
  clock?: (() => Date) | null
}

/** A login whose tokens up to `before` were revoked (its password changed): the login service refuses them. */
export type TokensRevoked = (userId: string, participantId: string | null, before: Date) => void

const NO_USER = '00000000-0000-0000-0000-000000000000'

export function authService (prisma: PrismaClient, scryptCost: number, policy: LoginPolicy, tokensRevoked: TokensRevoked = () => {}) {
  const users = userRepo(prisma)
  const keys = apiKeyRepo(prisma)
  const audit = auditRepo(prisma)
  const throttle = loginThrottleRepo(prisma)
  // Compared against when the username is unknown: same cost as a real hash, so timing does not tell which
  // usernames exist.
  let dummy: Promise<string> | null = null
  const dummyHash = async () => await (dummy ??= hashPassword(randomBytes(16).toString('hex'), scryptCost))

  // IPv6 clients are counted per /64: one host usually holds a whole /64 and could rotate through it.
  const addressKey = (meta: RequestMeta | undefined) => meta?.clientAddress == null ? null : `address:${normalizeIP(meta.clientAddress, 64)}`
  // per username as well, whatever its case, so guesses spread over many addresses share one budget. The budget's
  // key and the login's lookup use the same folding (loginName): were the lookup to fold otherwise (PostgreSQL's
  // lower() turns 'İ' into 'i', JavaScript's into 'i' and a combining dot), one login would have many budgets.
  const loginName = (username: string) => username.toLowerCase()
  const userKey = (name: string) => `user:${name}`

  /**
   * Claims this attempt before any credential is looked at, against the client address and the username: while
   * either is locked out, or already has as many attempts failed or being checked as the budget allows, the
   * attempt is refused with 429 and nothing is checked. So guesses sent all at once, or from many addresses, get
   * no more tries than guesses sent one by one. Returns how to report the outcome.
   */
  async function claim (addr: string | null, user: string | null) {
    const k = [addr, user].filter((x): x is string => x != null)
    const now = () => policy.clock?.() ?? null
    if (k.length > 0) {
      const r = await throttle.claim(k, policy, now())
      if (!r.allowed) throw new RateLimitedError(r.retryAfter, `too many failed logins from this address or for this username; retry in ${r.retryAfter} s`)
    }
    return {
      failed: async () => { if (k.length > 0) await throttle.done(k, true, null, policy, now()) },
      succeeded: async () => { if (k.length > 0) await throttle.done(k, false, user, policy, now()) },
    }
  }

  /** Counts the failure, audits it and refuses. */
  async function refuse (attempt: { failed: () => Promise<void> }, row: AuditRecord): Promise<never> {
    await attempt.failed()
    await audit.insert(row)
    throw new DomainError('INVALID_CREDENTIALS', row.action === 'auth.api_key'
      ? 'the API key is not valid (unknown or revoked)'
      : row.action === 'login.password_reset' ? 'username or reset code is wrong, or the code has expired or been used' : 'username or password is wrong')
  }

  /** The right credentials of a suspended login: said so (the caller proved who it is), audited, no token. */
  async function suspended (row: AuditRecord): Promise<never> {
    await audit.insert({ ...row, outcome: 'failure', errorCode: 'LOGIN_SUSPENDED' })
    throw new DomainError('LOGIN_SUSPENDED', 'this login is suspended by the scheme; ask your issuer')
  }

  /** The password rules (password-rules.ts), with the refusal pointing at the body's newPassword. */
  function checkNewAt (username: string, password: string): void {
    try {
      checkNewPassword(username, password)
    } catch (err) {
      if (err instanceof DomainError) throw new DomainError(err.code, err.message, err.errors?.map(e => ({ ...e, pointer: '/newPassword' })))
      throw err
    }
  }

  /**
   * After a new password has committed: every token of the login whose credential was read before now stops
   * working. Taken after the commit, on the database's clock as the tokens' authAt is (not this instance's, which
   * may differ from the one that handled the login): a login that read the old hash read it before the commit, so
   * its authAt is earlier than this and its token is covered. Never moved back (a later suspension's time stays).
   */
  async function revokeTokens (u: { id: string, participantId: string | null }): Promise<void> {
    const before = await users.revokeTokens(u.id)
    if (before != null) tokensRevoked(u.id, u.participantId, new Date(before))
  }

  return {
    /** Username and password to a principal. Unknown user and wrong password answer the same, in the same time. */
    async login (username: string, password: string, meta?: RequestMeta): Promise<Principal> {
      const addr = addressKey(meta)
      const name = loginName(username)
      const user = userKey(name)
      // (should the database go away before the attempt is decided, its claim is forgotten after 30 s)
      const attempt = await claim(addr, user)
      const u = await users.byLoginName(name)
      const ok = await verifyPassword(password, u?.passwordHash ?? await dummyHash())
      if (u == null || !ok) {
        await refuse(attempt, auditRecord(null, 'auth.login', meta, {
          outcome: 'failure', errorCode: 'INVALID_CREDENTIALS', actorName: username, target: u?.id ?? null,
          currencyId: u?.currencyId ?? null,
        }))
      }
      await attempt.succeeded()
      // The token says when the hash (and the suspension) was read, on the database's clock: a password change or a
      // suspension that commits after this read revokes it (it is dated after its commit, on the same clock).
      const authAt = u!.readAt
      const p: Principal = { userId: u!.id, role: u!.role as Role, currencyId: u!.currencyId, participantId: u!.participantId, username: u!.username, authAt }
      if (u!.suspendedAt != null) await suspended(auditRecord(p, 'auth.login', meta, { target: p.userId }))
      // Written before the token is handed out: no login succeeds without its row.
      await audit.insert(auditRecord(p, 'auth.login', meta, { target: p.userId }))
      return p
    },

    /**
     * Who the caller's token speaks for, so a client need not decode the token to find its participant and accounts:
     * it tells the caller only what its token already says, and the ids of its own accounts.
     */
    async whoAmI (principal: Principal | null): Promise<WhoAmI> {
      if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
      const [row] = await prisma.$queryRawUnsafe<Array<{ code: string | null, accounts: string[] }>>(
        `SELECT (SELECT code FROM currency WHERE id = $1::uuid) AS code,
                array(SELECT id::text FROM account WHERE participant_id = $2::uuid ORDER BY id) AS accounts`,
        principal.currencyId, principal.participantId)
      const key = principal.apiKeyId != null
      return {
        role: principal.role,
        username: key ? null : principal.username ?? null,
        currency: row.code,
        participantId: principal.participantId,
        accounts: row.accounts,
        apiKey: key ? { id: principal.apiKeyId!, scopes: principal.scopes ?? [] } : null,
      }
    },

    /** An API key to a principal that carries the key's scopes; an unknown or revoked key is refused. */
    async loginWithApiKey (apiKey: string, meta?: RequestMeta): Promise<Principal> {
      const addr = addressKey(meta)
      const attempt = await claim(addr, null)
      const k = looksLikeApiKey(apiKey) ? await keys.byHash(hashApiKey(apiKey)) : null
      // when the key was found active, on the database's clock: its business's password change or suspension that
      // commits after this is dated later and revokes the token (one committed before it: the check below sees it)
      const authAt = k == null || k.revokedAt != null ? null : await keys.touch(k.id)
      if (k == null || authAt == null) {
        await refuse(attempt, auditRecord(null, 'auth.api_key', meta, {
          outcome: 'failure', errorCode: 'INVALID_CREDENTIALS', actorId: k?.id, actorName: apiKey.slice(0, 11), target: k?.id ?? null,
          currencyId: k?.currencyId ?? null, detail: k?.revokedAt != null ? { revoked: true } : {},
        }))
      }
      await attempt.succeeded()
      const p: Principal = {
        userId: k!.id, role: 'business', currencyId: k!.currencyId, participantId: k!.participantId,
        username: `apikey:${k!.name}`, scopes: k!.scopes as Scope[], apiKeyId: k!.id, authAt: authAt!,
      }
      if (await users.isParticipantSuspended(k!.participantId)) await suspended(auditRecord(p, 'auth.api_key', meta, { target: k!.id }))
      await audit.insert(auditRecord(p, 'auth.api_key', meta, { target: k!.id, detail: { scopes: p.scopes } }))
      return p
    },

    /**
     * A login changes its own password, proving it with the current one (throttled as a login is, by address and
     * username, so a stolen token is no way round the login's budget for guesses). Every token whose credential was
     * read before the change committed stops working (tokens say so to the millisecond, `auth_ms`), on this
     * instance at once and on the others within LOGIN_CHECK_MS: whoever else held one, a leaked password's taker
     * included, is out, also one who logged in with the old password while the change was being made. For a
     * business that includes the tokens already exchanged for its API keys (the keys themselves stay valid). A
     * reset code handed out for the login and not used ends too. A suspended login cannot change its password.
     */
    async changePassword (principal: Principal | null, b: { currentPassword: string, newPassword: string }, meta?: RequestMeta): Promise<void> {
      if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
      if (principal.apiKeyId != null || principal.userId.startsWith('oidc:')) {
        throw new DomainError('FORBIDDEN', 'this token is not a password login\'s: an API key or an identity provider\'s login has no password here')
      }
      const u = await prisma.appUser.findUnique({ where: { id: principal.userId } })
      if (u == null) throw new DomainError('UNAUTHENTICATED', 'this login no longer exists')
      // (another instance may not have seen the suspension yet, and would still take this token)
      if (u.suspendedAt != null) throw new DomainError('LOGIN_SUSPENDED', 'this login is suspended by the scheme; ask your issuer')
      const attempt = await claim(addressKey(meta), userKey(loginName(u.username)))
      if (!(await verifyPassword(b.currentPassword, u.passwordHash))) {
        await attempt.failed()
        // (the refusal is audited by the route's audit hook, within the caller's bound on refusals)
        throw new DomainError('WRONG_PASSWORD', 'the current password is wrong', [{ pointer: '/currentPassword', detail: 'is not this login\'s password' }])
      }
      await attempt.succeeded()
      checkNewAt(u.username, b.newPassword)
      const passwordHash = await hashPassword(b.newPassword, scryptCost)
      await prisma.$transaction(async (tx) => {
        // The login's reset code, if one was handed out and not used, ends with the change: whoever holds it (asked
        // for by someone posing as the login, say) would otherwise set a password over the one just chosen. Read
        // under the row's lock, so a code made meanwhile either waits for this and stays (made after the change),
        // or is taken here and ends.
        const [held] = await tx.$queryRaw<Array<{ suspended: boolean, live: boolean, password_hash: string }>>`
          SELECT suspended_at IS NOT NULL AS suspended, reset_code_hash IS NOT NULL AND reset_expires_at > now() AS live, password_hash
            FROM app_user WHERE id = ${u.id}::uuid FOR UPDATE`
        // not on a login suspended meanwhile
        if (held == null || held.suspended) throw new DomainError('LOGIN_SUSPENDED', 'this login is suspended by the scheme; ask your issuer')
        // The current password was checked against the hash read before this lock. A reset with a code (or another
        // change) that committed since has set another password: this change, made on the strength of the one
        // replaced, would silently overwrite it (the last writer winning), so it is refused and the other stands. A
        // reset waiting behind this lock finds its code gone (the UPDATE below) and is refused in turn: of a change
        // and a reset at the same moment exactly one succeeds.
        if (held.password_hash !== u.passwordHash) {
          throw new DomainError('WRONG_PASSWORD', 'the current password is wrong: the password was changed or reset meanwhile', [{ pointer: '/currentPassword', detail: 'is no longer this login\'s password' }])
        }
        await tx.$executeRaw`UPDATE app_user SET password_hash = ${passwordHash}, reset_code_hash = NULL, reset_expires_at = NULL, reset_issued_by = NULL
                              WHERE id = ${u.id}::uuid`
        await auditRepo(tx).insert(auditRecord(principal, 'login.password', meta, {
          target: u.id, currencyId: u.currencyId, detail: { resetCodesCancelled: held.live ? 1 : 0 },
        }))
      })
      await revokeTokens(u)
    },

    /**
     * A forgotten password, replaced with the one-time code an issuer handed out (login.service.ts, resetCode).
     * Throttled as a login is, by address and username; a wrong, expired or used code and an unknown username
     * answer the same. A suspended login is told so and its code is kept; a new password the rules refuse is 422
     * and the code is kept. On success the code is spent, and every token of the login from before stops working
     * as after a password change.
     */
    async resetPassword (b: { username: string, code: string, newPassword: string }, meta?: RequestMeta): Promise<void> {
      const name = loginName(b.username)
      const attempt = await claim(addressKey(meta), userKey(name))
      const u = await users.byLoginName(name)
      const hash = hashResetCode(b.code)
      const row = (outcome: 'success' | 'failure') => auditRecord(null, 'login.password_reset', meta, {
        outcome, actorName: b.username, target: u?.id ?? null, currencyId: u?.currencyId ?? null,
        ...(outcome === 'failure' ? { errorCode: 'INVALID_CREDENTIALS' } : {}),
      })
      // on the database's clock, which set the expiry; an unknown username makes the same query, taking as long
      const valid = (await prisma.$queryRaw<unknown[]>`
        SELECT 1 FROM app_user WHERE id = ${u?.id ?? NO_USER}::uuid AND reset_code_hash = ${hash} AND reset_expires_at > now()`).length === 1
      if (!valid || u == null) await refuse(attempt, row('failure'))
      await attempt.succeeded()
      const p: Principal = { userId: u!.id, role: u!.role as Role, currencyId: u!.currencyId, participantId: u!.participantId, username: u!.username }
      if (u!.suspendedAt != null) await suspended(auditRecord(p, 'login.password_reset', meta, { target: u!.id, currencyId: u!.currencyId }))
      checkNewAt(u!.username, b.newPassword)
      const passwordHash = await hashPassword(b.newPassword, scryptCost)
      await prisma.$transaction(async (tx) => {
        // the code once only, and not on a login suspended meanwhile
        const changed = await tx.$executeRaw`
          UPDATE app_user SET password_hash = ${passwordHash}, reset_code_hash = NULL, reset_expires_at = NULL, reset_issued_by = NULL
           WHERE id = ${u!.id}::uuid AND reset_code_hash = ${hash} AND reset_expires_at > now() AND suspended_at IS NULL`
        if (changed !== 1) throw new DomainError('INVALID_CREDENTIALS', 'username or reset code is wrong, or the code has expired or been used')
        await auditRepo(tx).insert(auditRecord(p, 'login.password_reset', meta, { target: u!.id, currencyId: u!.currencyId }))
      })
      await revokeTokens(u!)
    },

    /**
     * The platform issuer comes from config on first start, only when no platform issuer exists yet: never from
     * a default password. Returns whether one was created.
     */
    /** Whether any platform issuer exists: without one nobody can make a currency or its issuers (server.ts warns). */
    async hasPlatformIssuer (): Promise<boolean> {
      return await prisma.appUser.count({ where: { role: 'platform_issuer' } }) > 0
    },

    async ensurePlatformIssuer (username: string | undefined, password: string | undefined): Promise<boolean> {
      if (await prisma.appUser.count({ where: { role: 'platform_issuer' } }) > 0) return false
      if (username == null || password == null) return false
      try {
        await prisma.appUser.create({
          data: { username, passwordHash: await hashPassword(password, scryptCost), role: 'platform_issuer', name: 'Platform issuer' },
        })
      } catch (err) {
        // several instances starting at once on a fresh database: another one made it first
        if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') return false
        throw err
      }
      return true
    },
  }
}
