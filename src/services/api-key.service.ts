import { FifoMap } from 'toad-cache'
import type { PrismaClient } from '../generated/prisma/client.js'
import { newApiKey } from '../auth/api-key.js'
import { auditRecord, type RequestMeta, type Scope } from '../domain/access.js'
import { CURSOR_UUID, decodeCursor, encodeCursor } from '../domain/cursor.js'
import { DomainError } from '../domain/errors.js'
import type { Principal } from '../domain/principal.js'
import { apiKeyRepo } from '../repositories/api-key.repo.js'
import { auditRepo } from '../repositories/audit.repo.js'
import { participantRepo } from '../repositories/participant.repo.js'
import type { ApiKeyCreate, ApiKeyListQuery } from '../schemas/access.js'

type KeyRow = NonNullable<Awaited<ReturnType<ReturnType<typeof apiKeyRepo>['byId']>>>

const view = (k: KeyRow) => ({
  id: k.id, name: k.name, prefix: k.prefix, scopes: k.scopes as Scope[],
  createdAt: k.createdAt.toISOString(), lastUsedAt: k.lastUsedAt?.toISOString() ?? null, revokedAt: k.revokedAt?.toISOString() ?? null,
})

/**
 * API keys for a business's integrations (tills, web shops). The business manages its own keys with a password
 * login; a token exchanged for a key cannot manage keys, so a leaked key cannot mint more.
 */
export function apiKeyService (prisma: PrismaClient, checkMs: number, publish: (m: { kind: 'api-key', id: string }) => void = () => {},
  maxActive = 20) {
  const repo = apiKeyRepo(prisma)
  // The last look at each key: a token from a revoked key is refused on this instance at once (revoke() updates
  // it) and on other instances within checkMs. Bounded by toad-cache: past 10,000 keys the oldest look goes.
  const seen = new FifoMap<{ at: number, active: boolean }>(10_000)

  function owner (p: Principal | null): Principal & { participantId: string, currencyId: string } {
    if (p == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
    if (p.role !== 'business' || p.participantId == null || p.currencyId == null) {
      throw new DomainError('FORBIDDEN', 'API keys are for businesses: a business manages its own keys')
    }
    if (p.apiKeyId != null) throw new DomainError('FORBIDDEN', 'API keys are managed with a password login, not with an API key')
    return p as Principal & { participantId: string, currencyId: string }
  }

  return {
    async create (principal: Principal | null, b: ApiKeyCreate, meta?: RequestMeta) {
      const p = owner(principal)
      // A login of this service always speaks for a business of its currency; a token of an external identity
      // provider says so in claims, checked here before a key is tied to that business.
      const biz = await participantRepo(prisma).byId(p.participantId)
      if (biz?.kind !== 'business' || biz.currencyId !== p.currencyId) throw new DomainError('FORBIDDEN', 'this login speaks for no business of its currency')
      const scopes = [...new Set(b.scopes)]
      const secret = newApiKey()
      const k = await prisma.$transaction(async (tx) => {
        // Each key has its own rate limits and event streams, so keys are not free to make without end.
        if (await apiKeyRepo(tx).activeLocked(p.participantId) >= maxActive) {
          throw new DomainError('API_KEY_LIMIT', `a business holds at most ${maxActive} API keys that are not revoked; revoke one first`)
        }
        const k = await apiKeyRepo(tx).create({
          currencyId: p.currencyId, participantId: p.participantId, name: b.name.trim(), prefix: secret.prefix,
          secretHash: secret.hash, scopes, createdBy: p.userId,
        })
        await auditRepo(tx).insert(auditRecord(p, 'api_key.create', meta, { target: k.id, detail: { name: k.name, scopes } }))
        return k
      })
      return { ...view(k), key: secret.key }
    },

    async list (principal: Principal | null, q: ApiKeyListQuery & { limit: number }) {
      const p = owner(principal)
      const after = decodeCursor(q.cursor, [CURSOR_UUID])
      const rows = await repo.list(p.participantId, after?.[0], q.limit)
      const page = rows.slice(0, q.limit)
      const last = page.at(-1)
      return { items: page.map(view), nextCursor: rows.length > q.limit && last != null ? encodeCursor([last.id]) : null }
    },

    /** Revokes a key of this business. Revoking twice is not an error (and is audited once). */
    async revoke (principal: Principal | null, id: string, meta?: RequestMeta) {
      const p = owner(principal)
      const k = await repo.byId(id)
      if (k == null || k.participantId !== p.participantId) throw new DomainError('API_KEY_NOT_FOUND', 'API key not found')
      await prisma.$transaction(async (tx) => {
        if (await apiKeyRepo(tx).revoke(id)) {
          await auditRepo(tx).insert(auditRecord(p, 'api_key.revoke', meta, { target: id, detail: { name: k.name } }))
        }
      })
      seen.set(id, { at: Date.now(), active: false })
      publish({ kind: 'api-key', id })
    },

    /** Another instance revoked this key (null: any key may have changed): read it again on its next use. */
    forget (id: string | null) {
      if (id == null) seen.clear()
      else if (seen.get(id)?.active !== false) seen.delete(id)
    },

    /** Is the key behind a token still active? Also records it as used (at most once per checkMs). */
    async isActive (id: string): Promise<boolean> {
      const hit = seen.get(id)
      if (hit != null && (!hit.active || Date.now() - hit.at < checkMs)) return hit.active
      const active = await repo.touch(id) != null
      seen.set(id, { at: Date.now(), active })
      return active
    },
  }
}

export type ApiKeyService = ReturnType<typeof apiKeyService>
