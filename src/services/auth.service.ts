import { normalizeIP } from '@fastify/rate-limit'
import { randomBytes } from 'node:crypto'
import type { PrismaClient } from '../generated/prisma/client.js'
import { hashApiKey, looksLikeApiKey } from '../auth/api-key.js'
import { hashPassword, verifyPassword } from '../auth/password.js'
import {
  auditRecord, lockoutSeconds, RateLimitedError, type AuditRecord, type LockoutPolicy, type RequestMeta, type Scope,
} from '../domain/access.js'
import { DomainError } from '../domain/errors.js'
import type { Principal, Role } from '../domain/principal.js'
import { apiKeyRepo } from '../repositories/api-key.repo.js'
import { auditRepo } from '../repositories/audit.repo.js'
import { loginThrottleRepo } from '../repositories/login-throttle.repo.js'
import { userRepo } from '../repositories/user.repo.js'

export interface LoginPolicy extends LockoutPolicy { windowSeconds: number }

export function authService (prisma: PrismaClient, scryptCost: number, policy: LoginPolicy) {
  const users = userRepo(prisma)
  const keys = apiKeyRepo(prisma)
  const audit = auditRepo(prisma)
  const throttle = loginThrottleRepo(prisma)
  // Compared against when the username is unknown: same cost as a real hash, so timing does not tell which
  // usernames exist.
  let dummy: Promise<string> | null = null
  const dummyHash = async () => await (dummy ??= hashPassword(randomBytes(16).toString('hex'), scryptCost))

  // IPv6 clients are counted per /64: one host usually holds a whole /64 and could rotate through it.
  const client = (meta: RequestMeta | undefined) => meta?.clientAddress == null ? null : normalizeIP(meta.clientAddress, 64)

  /** A locked-out address is refused before any credential is looked at. */
  async function gate (meta: RequestMeta | undefined) {
    const address = client(meta)
    if (address == null) return
    const wait = await throttle.lockedFor(address)
    if (wait > 0) throw new RateLimitedError(wait, `too many failed logins from this address; retry in ${wait} s`)
  }

  /** Audits the failure, counts it against the address (locking it out past the limit), and refuses. */
  async function refuse (meta: RequestMeta | undefined, row: AuditRecord): Promise<never> {
    await audit.insert(row)
    const address = client(meta)
    if (address != null) {
      const failures = await throttle.recordFailure(address, policy.windowSeconds)
      const lock = lockoutSeconds(failures, policy)
      if (lock > 0) await throttle.lock(address, lock)
    }
    throw new DomainError('INVALID_CREDENTIALS', row.action === 'auth.api_key' ? 'the API key is not valid (unknown or revoked)' : 'username or password is wrong')
  }

  return {
    /** Username and password to a principal. Unknown user and wrong password answer the same, in the same time. */
    async login (username: string, password: string, meta?: RequestMeta): Promise<Principal> {
      await gate(meta)
      const u = await users.byUsername(username)
      const ok = await verifyPassword(password, u?.passwordHash ?? await dummyHash())
      if (u == null || !ok) {
        await refuse(meta, auditRecord(null, 'auth.login', meta, {
          outcome: 'failure', errorCode: 'INVALID_CREDENTIALS', actorName: username, target: u?.id ?? null,
          currencyId: u?.currencyId ?? null,
        }))
      }
      const p: Principal = { userId: u!.id, role: u!.role as Role, currencyId: u!.currencyId, participantId: u!.participantId, username: u!.username }
      // Written before the token is handed out: no login succeeds without its row.
      await audit.insert(auditRecord(p, 'auth.login', meta, { target: p.userId }))
      return p
    },

    /** An API key to a principal that carries the key's scopes; an unknown or revoked key is refused. */
    async loginWithApiKey (apiKey: string, meta?: RequestMeta): Promise<Principal> {
      await gate(meta)
      const k = looksLikeApiKey(apiKey) ? await keys.byHash(hashApiKey(apiKey)) : null
      if (k == null || k.revokedAt != null || !(await keys.touch(k.id))) {
        await refuse(meta, auditRecord(null, 'auth.api_key', meta, {
          outcome: 'failure', errorCode: 'INVALID_CREDENTIALS', actorId: k?.id, actorName: apiKey.slice(0, 11), target: k?.id ?? null,
          currencyId: k?.currencyId ?? null, detail: k?.revokedAt != null ? { revoked: true } : {},
        }))
      }
      const p: Principal = {
        userId: k!.id, role: 'business', currencyId: k!.currencyId, participantId: k!.participantId,
        username: `apikey:${k!.name}`, scopes: k!.scopes as Scope[], apiKeyId: k!.id,
      }
      await audit.insert(auditRecord(p, 'auth.api_key', meta, { target: k!.id, detail: { scopes: p.scopes } }))
      return p
    },

    /**
     * The platform issuer comes from config on first start, only when no platform issuer exists yet: never from
     * a default password. Returns whether one was created.
     */
    async ensurePlatformIssuer (username: string | undefined, password: string | undefined): Promise<boolean> {
      if (await prisma.appUser.count({ where: { role: 'platform_issuer' } }) > 0) return false
      if (username == null || password == null) return false
      await prisma.appUser.create({
        data: { username, passwordHash: await hashPassword(password, scryptCost), role: 'platform_issuer', name: 'Platform issuer' },
      })
      return true
    },
  }
}
