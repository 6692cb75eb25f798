import type { PrismaClient } from '../generated/prisma/client.js'
import { newResetCode, RESET_CODE_HOURS } from '../auth/reset-code.js'
import { TOKEN_TTL_MAX_SECONDS } from '../config.js'
import { auditRecord, type RequestMeta } from '../domain/access.js'
import { DomainError } from '../domain/errors.js'
import { isIssuerOf, type Principal } from '../domain/principal.js'
import { auditRepo } from '../repositories/audit.repo.js'
import { participantRepo } from '../repositories/participant.repo.js'
import { userRepo } from '../repositories/user.repo.js'
import type { SuspensionCreate } from '../schemas/access.js'

export interface LoginServiceOptions {
  /** how long an instance trusts its copy of the revoked logins before reading it again (0: every request) */
  checkMs: number
  /** tells the other instances that the revoked logins changed (Redis; a no-op without it) */
  publish?: (m: { kind: 'logins' }) => void
}

/**
 * How far back the revocations of logins that are not suspended are read: a revocation older than this concerns no
 * token that still works. Not this instance's TOKEN_TTL_SECONDS: the tokens were signed by whichever instance, under
 * whatever TTL it ran with then, and lowering the TTL across a restart would otherwise bring a token revoked before
 * the new, shorter window (signed under the old, longer TTL, and not expired yet) back to life. Every instance's TTL
 * is at most TOKEN_TTL_MAX_SECONDS (config.ts refuses more), so a token whose credential was read before a
 * revocation expires at most that long after it, plus the moments between reading the credential and signing the
 * token and the clocks' differences between instances and the database: the hour on top is for those (they are
 * seconds). The cost is a day's password changes and reinstatements more in memory: a handful of rows.
 */
export const REVOCATIONS_KEPT_MS = (TOKEN_TTL_MAX_SECONDS + 3600) * 1000

/** What this instance knows of one login: suspended now, and tokens issued up to this time (ms) are refused. */
interface Revocation { suspended: boolean, before: number }

/**
 * Suspending a login: a member's or business's (by its participant), or a staff login's (a researcher, issuer
 * staff). A suspended login gets no token; its tokens, its business's API keys and their tokens stop working on
 * the next request; and the tokens issued before the suspension stay dead after a reinstatement. Each instance keeps the logins concerned in memory (a handful of rows: one query per instance at
 * most every checkMs, whatever the traffic) and consults them on every request: the instance that suspends updates
 * its copy at once, the others within checkMs.
 */
export function loginService (prisma: PrismaClient, opts: LoginServiceOptions) {
  const users = userRepo(prisma)
  const participants = participantRepo(prisma)
  let byUser = new Map<string, Revocation>()
  let byParticipant = new Map<string, Revocation>()
  let loadedAt = Number.NEGATIVE_INFINITY
  let loading: Promise<void> | null = null
  // this instance's own changes, so a read that started before one of them cannot undo it in memory
  let changes: Array<{ at: number, userId: string, participantId: string | null, r: Revocation }> = []
  const apply = (c: { userId: string, participantId: string | null, r: Revocation }) => {
    byUser.set(c.userId, c.r)
    if (c.participantId != null) byParticipant.set(c.participantId, c.r)
  }

  const load = async () => {
    const started = Date.now()
    const rows = await users.revoked(new Date(started - REVOCATIONS_KEPT_MS))
    const entry = (r: typeof rows[number]): Revocation => ({ suspended: r.suspendedAt != null, before: r.tokensRevokedBefore?.getTime() ?? 0 })
    byUser = new Map(rows.map(r => [r.id, entry(r)]))
    byParticipant = new Map(rows.flatMap(r => r.participantId == null ? [] : [[r.participantId, entry(r)]]))
    changes = changes.filter(c => c.at >= started)
    changes.forEach(apply)
    loadedAt = started
  }
  const refresh = async () => { await (loading ??= load().finally(() => { loading = null })) }

  /** The participant as the caller may act on its login: an issuer of its currency. Anyone else learns nothing. */
  async function target (principal: Principal | null, participantId: string) {
    if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
    const p = await participants.byId(participantId)
    if (p != null && isIssuerOf(principal, p.currencyId) && p.user != null) return { p, user: p.user }
    if (principal.role === 'researcher') throw new DomainError('FORBIDDEN', 'researchers see reports and exports, not participants')
    // a participant may see itself, so it is told it may not do this; to anyone else it does not exist
    if (p != null && principal.participantId === p.id) throw new DomainError('FORBIDDEN', 'only an issuer of this currency may suspend, reinstate or reset a login')
    throw new DomainError('PARTICIPANT_NOT_FOUND', 'participant not found')
  }

  /**
   * A staff login as the caller may act on it: a researcher, by an issuer of its currency; issuer staff, by the
   * platform issuer only (issuers of one currency cannot lock each other out). The platform issuer's own login is
   * no one's to suspend. Anyone else learns nothing.
   */
  async function staffTarget (principal: Principal | null, userId: string) {
    if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
    const u = await prisma.appUser.findUnique({ where: { id: userId } })
    if (u != null && u.participantId == null && u.currencyId != null) {
      if (u.role === 'researcher' && isIssuerOf(principal, u.currencyId)) return u
      if (u.role === 'issuer' && principal.role === 'platform_issuer') return u
      // issuer staff see their colleagues in the staff list, so they are told why
      if (u.role === 'issuer' && isIssuerOf(principal, u.currencyId)) throw new DomainError('FORBIDDEN', 'only the platform issuer suspends, reinstates or resets issuer staff')
    }
    if (u != null && u.id === principal.userId) throw new DomainError('FORBIDDEN', 'a login cannot suspend, reinstate or reset itself (POST /v1/auth/password changes its own password)')
    throw new DomainError('LOGIN_NOT_FOUND', 'staff login not found')
  }

  type Login = { id: string, username: string, suspendedAt: Date | null, tokensRevokedBefore: Date | null }
  /** Suspends a login and revokes its tokens so far; suspending it again changes nothing (and is audited once). */
  async function suspendLogin (principal: Principal, user: Login, participantId: string | null, audit: { target: string, currencyId: string | null },
    reason: string, meta?: RequestMeta): Promise<Date> {
    const at = await prisma.$transaction(async (tx) => {
      const at = await userRepo(tx).suspend(user.id)
      if (at != null) {
        // The reset codes this login handed out and that were not used end with it, as its tokens do, and stay
        // dead after a reinstatement: a code is a password to whoever holds it, and the one who vouched for the
        // holder is no longer trusted. (A code being made by it now waits for this row and is refused: resetCode.)
        const cancelled = await tx.$executeRaw`UPDATE app_user SET reset_code_hash = NULL, reset_expires_at = NULL, reset_issued_by = NULL
                                                 WHERE reset_issued_by = ${user.id}::uuid`
        await auditRepo(tx).insert(auditRecord(principal, 'login.suspend', meta, {
          ...audit, detail: { username: user.username, userId: user.id, reason: reason.trim(), resetCodesCancelled: cancelled },
        }))
      }
      return at
    })
    const since = at ?? user.suspendedAt ?? new Date()
    // A login that read the row after `at` but before the suspension committed (not suspended yet) got a token dated
    // after `at`: refused while suspended, it would come back with a reinstatement. So the tokens revoked reach to
    // after the commit, as a password change's do (auth.service.ts, revokeTokens), on the database's clock as the
    // tokens' authAt is. Only while the login is still suspended (a reinstatement that came between must keep the
    // tokens taken after it); a repeated suspension does it too, so a retry puts right a call that failed between its
    // commit and this.
    const after = await users.revokeTokens(user.id, true)
    const revoked = Math.max(at?.getTime() ?? 0, user.tokensRevokedBefore?.getTime() ?? 0, after ?? 0)
    const r = { suspended: true, before: revoked }
    changes.push({ at: Date.now(), userId: user.id, participantId, r })
    apply({ userId: user.id, participantId, r })
    opts.publish?.({ kind: 'logins' })
    return since
  }

  /** Lifts a suspension (tokens issued before it stay dead); reinstating a login that is not suspended changes nothing. */
  async function reinstateLogin (principal: Principal, user: Login, participantId: string | null, audit: { target: string, currencyId: string | null },
    meta?: RequestMeta): Promise<void> {
    await prisma.$transaction(async (tx) => {
      if (await userRepo(tx).reinstate(user.id)) {
        await auditRepo(tx).insert(auditRecord(principal, 'login.reinstate', meta, {
          ...audit, detail: { username: user.username, userId: user.id },
        }))
        // the webhook deliveries held back meanwhile (src/webhooks/worker.ts) go out now, not at their next
        // backoff, which may be hours away; one being sent at this moment (claimed before the suspension) keeps its
        // lease, or the next claim would send it a second time beside that send
        if (participantId != null) {
          await tx.$executeRaw`UPDATE webhook_delivery d SET next_attempt_at = now()
                                 FROM webhook w
                                WHERE w.id = d.webhook_id AND w.participant_id = ${participantId}::uuid AND d.status = 'pending'
                                  AND (d.sending_until IS NULL OR d.sending_until <= now())`
        }
      }
    })
    const before = Math.max(user.tokensRevokedBefore?.getTime() ?? 0, byUser.get(user.id)?.before ?? 0)
    const r = { suspended: false, before }
    changes.push({ at: Date.now(), userId: user.id, participantId, r })
    apply({ userId: user.id, participantId, r })
    opts.publish?.({ kind: 'logins' })
  }

  /**
   * A one-time code with which the login sets a new password (auth.service.ts, resetPassword), for one who forgot
   * it: the issuer hands it out in person or reads it out, once it knows who is asking. It replaces any earlier
   * code of the login; the old password keeps working until the code is used. Only the code's hash is kept, with
   * who made it: suspending the maker ends the code (suspendLogin).
   */
  async function resetCode (principal: Principal, user: { id: string, username: string }, audit: { target: string, currencyId: string | null },
    meta?: RequestMeta) {
    const { code, hash } = newResetCode()
    const expiresAt = await prisma.$transaction(async (tx) => {
      // The maker's token was checked against this instance's copy of the suspensions, which may be up to checkMs
      // old: its own row, read under a lock a suspension's update waits for (and that waits for one), says whether
      // it is suspended now. Either the suspension comes first and no code is made, or the code does and the
      // suspension ends it.
      // An identity provider's issuer (oidc:<subject>) has no login here to suspend: its codes have no maker on
      // record, and its provider decides whether its tokens still work.
      const makerId = principal.userId.startsWith('oidc:') ? null : principal.userId
      const maker = makerId == null ? [] : await tx.$queryRaw<Array<{ suspended: boolean }>>`
        SELECT suspended_at IS NOT NULL AS suspended FROM app_user WHERE id = ${makerId}::uuid FOR SHARE`
      if (maker[0]?.suspended === true) throw new DomainError('UNAUTHENTICATED', 'this token was revoked: its login is suspended, or was since it was issued')
      const rows = await tx.$queryRaw<Array<{ expires_at: Date }>>`
        UPDATE app_user SET reset_code_hash = ${hash}, reset_expires_at = now() + make_interval(hours => ${RESET_CODE_HOURS}),
                            reset_issued_by = ${makerId}::uuid
         WHERE id = ${user.id}::uuid RETURNING reset_expires_at AS expires_at`
      await auditRepo(tx).insert(auditRecord(principal, 'login.reset_code', meta, { ...audit, detail: { username: user.username, userId: user.id } }))
      return rows[0].expires_at
    })
    return { username: user.username, code, expiresAt: expiresAt.toISOString() }
  }

  return {
    /**
     * Is this caller's token dead: its login (or the participant it speaks for, for API keys and an identity
     * provider's tokens) suspended, or the token issued (iat, seconds) before its login's tokens were revoked?
     */
    async isRevoked (p: Principal): Promise<boolean> {
      if (Date.now() - loadedAt > opts.checkMs) await refresh()
      for (const r of [byUser.get(p.userId), p.participantId == null ? undefined : byParticipant.get(p.participantId)]) {
        if (r == null) continue
        if (r.suspended) return true
        // To the millisecond where the token says when its credential was read (authAt, the database's now() at
        // the read, rounded down): the revocation is the database's clock after the commit, so a token whose read
        // did not see the change has authAt <= before, also when both fall in one millisecond (rounded down alike,
        // the revocation's is never the smaller: <=, not <). Otherwise by iat, which has whole seconds: a token of the
        // revocation's own second then counts as issued before it.
        if (p.authAt != null ? p.authAt <= r.before : (p.issuedAt != null && p.issuedAt <= Math.floor(r.before / 1000))) return true
      }
      return false
    },

    /** Suspends a participant's login; suspending it again changes nothing (and is audited once). */
    async suspend (principal: Principal | null, participantId: string, b: SuspensionCreate, meta?: RequestMeta) {
      const { p, user } = await target(principal, participantId)
      const since = await suspendLogin(principal!, user, p.id, { target: p.id, currencyId: p.currencyId }, b.reason, meta)
      return { participantId: p.id, suspended: true, suspendedAt: since.toISOString() }
    },

    /** Lifts the suspension of a participant's login. */
    async reinstate (principal: Principal | null, participantId: string, meta?: RequestMeta) {
      const { p, user } = await target(principal, participantId)
      await reinstateLogin(principal!, user, p.id, { target: p.id, currencyId: p.currencyId }, meta)
      return { participantId: p.id, suspended: false, suspendedAt: null }
    },

    /** Suspends a staff login (a researcher, issuer staff): the same as a participant's, by its user id. */
    async suspendStaff (principal: Principal | null, userId: string, b: SuspensionCreate, meta?: RequestMeta) {
      const u = await staffTarget(principal, userId)
      const since = await suspendLogin(principal!, u, null, { target: u.id, currencyId: u.currencyId }, b.reason, meta)
      return { userId: u.id, suspended: true, suspendedAt: since.toISOString() }
    },

    /** Lifts the suspension of a staff login. */
    async reinstateStaff (principal: Principal | null, userId: string, meta?: RequestMeta) {
      const u = await staffTarget(principal, userId)
      await reinstateLogin(principal!, u, null, { target: u.id, currencyId: u.currencyId }, meta)
      return { userId: u.id, suspended: false, suspendedAt: null }
    },

    /** A one-time password reset code for a participant's login (an issuer of its currency). */
    async participantResetCode (principal: Principal | null, participantId: string, meta?: RequestMeta) {
      const { p, user } = await target(principal, participantId)
      return await resetCode(principal!, user, { target: p.id, currencyId: p.currencyId }, meta)
    },

    /** A one-time password reset code for a staff login (who may: as for its suspension). */
    async staffResetCode (principal: Principal | null, userId: string, meta?: RequestMeta) {
      const u = await staffTarget(principal, userId)
      return await resetCode(principal!, u, { target: u.id, currencyId: u.currencyId }, meta)
    },

    /** A login's tokens issued up to `before` were revoked (its password changed): refused here at once, elsewhere
     *  within checkMs. */
    tokensRevoked (userId: string, participantId: string | null, before: Date) {
      const known = byUser.get(userId)
      const r = { suspended: known?.suspended ?? false, before: Math.max(before.getTime(), known?.before ?? 0) }
      changes.push({ at: Date.now(), userId, participantId, r })
      apply({ userId, participantId, r })
      opts.publish?.({ kind: 'logins' })
    },

    /** Another instance changed the revoked logins: read them again on the next request. */
    forget () { loadedAt = Number.NEGATIVE_INFINITY },
  }
}

export type LoginService = ReturnType<typeof loginService>
