import type { PrismaClient } from '../generated/prisma/client.js'
import { auditRecord, type AuditAction, type RequestMeta } from '../domain/access.js'
import { CURSOR_INT, decodeCursor, encodeCursor } from '../domain/cursor.js'
import { DomainError } from '../domain/errors.js'
import { participantOrLogin } from '../domain/per-caller.js'
import type { Principal } from '../domain/principal.js'
import { RefusalWindow, type Unrecorded } from '../domain/refusal-window.js'
import type { AuditAllQuery } from '../schemas/access.js'
import { auditRepo } from '../repositories/audit.repo.js'
import { parseTime } from './account.service.js'
import type { CurrencyService } from './currency.service.js'

/** The audit trail's query, per currency or across currencies (AuditAllQuerySchema adds `currency`). */
export type AuditQuery = AuditAllQuery & { limit: number }

export interface AuditOptions {
  /** refused attempts written one by one per caller, per currency, per minute; past it, one summary row (0: all) */
  refusalsPerMinute: number
  /** rows one page with a filter looks at, at most (AUDIT_WINDOW; default 1,000) */
  window?: number
  /** tests only: the time the refusal windows read (default: the wall clock) */
  clock?: () => Date
}

interface Refusal { principal: Principal, meta: RequestMeta, currencyId: string | null }

/** AUDIT_WINDOW's default (config.ts) */
const DEFAULT_WINDOW = 1000

/** the key with the most attempts (ties: the first counted) */
const most = (counts: Record<string, number>): string =>
  Object.entries(counts).reduce((a, b) => b[1] > a[1] ? b : a)[0]

export function auditService (prisma: PrismaClient, currencies: CurrencyService, opts: AuditOptions = { refusalsPerMinute: 0 }) {
  const repo = auditRepo(prisma)
  const now = opts.clock ?? (() => new Date())
  const refusals = new RefusalWindow<Refusal>(opts.refusalsPerMinute)

  /**
   * One row for refusals a caller's window did not write one by one, all of one action: in the first one's name
   * (its actor, address and request id), with the counts; the target when every one had the same.
   */
  async function writeUnrecorded (u: Unrecorded<Refusal>): Promise<boolean> {
    const { principal, meta, currencyId } = u.first
    const targets = Object.entries(u.targets.counts)
    const target = targets.length === 1 && targets[0][1] === u.count ? targets[0][0] : null
    try {
      await repo.insert(auditRecord(principal, u.action as AuditAction, meta, {
        outcome: 'failure', errorCode: most(u.errorCodes), target, currencyId,
        detail: {
          unrecordedAttempts: u.count, errorCodes: u.errorCodes,
          actors: u.actors.counts, otherActors: u.actors.others,
          targets: u.targets.counts, otherTargets: u.targets.others,
          clientAddresses: u.clientAddresses.counts, otherClientAddresses: u.clientAddresses.others,
          from: u.from.toISOString(), to: u.to.toISOString(),
        },
      }))
      return true
    } catch {
      return false
    }
  }

  async function page (filter: { currencyId?: string }, q: AuditQuery) {
    const after = decodeCursor(q.cursor, [CURSOR_INT])
    const { rows, resumeAfter } = await repo.list({
      ...filter, action: q.action, actorId: q.actor, outcome: q.outcome,
      from: parseTime(q.from, 'from'), to: parseTime(q.to, 'to'), afterId: after == null ? undefined : BigInt(after[0]),
    }, q.limit, opts.window ?? DEFAULT_WINDOW)
    const items = await Promise.all(rows.slice(0, q.limit).map(async r => ({
      id: r.id.toString(), at: r.at.toISOString(), actorId: r.actorId, actorName: r.actorName, role: r.role,
      action: r.action as AuditAction, target: r.target,
      currency: r.currencyId == null ? null : (await currencies.resolveId(r.currencyId).catch(() => null))?.code ?? null,
      outcome: r.outcome as 'success' | 'failure', errorCode: r.errorCode, clientAddress: r.clientAddress,
      requestId: r.requestId, detail: r.detail as Record<string, unknown>,
    })))
    const last = items.at(-1)
    // a filtered page that looked at its whole window without filling up goes on after the window
    const resume = rows.length > q.limit && last != null ? last.id : resumeAfter
    return { items, nextCursor: resume != null ? encodeCursor([resume]) : null }
  }

  return {
    /**
     * A refused issuer action, written after the fact and best-effort: unlike a success row (written in the
     * action's own transaction) its loss loses no record of a change. A caller's refusals past
     * `refusalsPerMinute` in one currency are counted into summary rows instead (domain/refusal-window.ts).
     * Never throws.
     */
    async recordFailure (principal: Principal | null, action: AuditAction, meta: RequestMeta, f: {
      code?: string, errorCode: string, target?: string | null,
    }): Promise<boolean> {
      let currencyId = principal?.currencyId ?? null
      if (f.code != null) currencyId = (await currencies.resolve(f.code).catch(() => null))?.id ?? currencyId
      if (principal != null) {
        // A caller of another currency shares one window in this currency with every caller of its own currency:
        // an issuer registers as many participants as it likes, and one window each would let them write
        // perWindow rows a minute each into this currency's trail. Refusals past it are still summarised per action
        // and actor, so an attempt stays findable.
        const outsider = principal.currencyId != null && currencyId != null && principal.currencyId !== currencyId
        const key = outsider ? `currency:${principal.currencyId!}|${currencyId}` : `${participantOrLogin(principal)}|${currencyId ?? ''}`
        const { write, ended } = refusals.admit(key, now(), {
          item: { principal, meta, currencyId }, action, actor: principal.apiKeyId ?? principal.userId,
          errorCode: f.errorCode, target: f.target ?? null, clientAddress: meta.clientAddress ?? null,
        })
        for (const u of ended) await writeUnrecorded(u)
        if (!write) return true
      }
      try {
        await repo.insert(auditRecord(principal, action, meta, {
          outcome: 'failure', errorCode: f.errorCode, target: f.target, currencyId,
        }))
        return true
      } catch {
        return false
      }
    },

    /**
     * Writes the summary rows of the refusal windows that have ended (plugins/audit.ts calls it every minute; with
     * `all`, at shutdown, every open window's). Answers how many rows could not be written.
     */
    async flushRefusals (all = false): Promise<number> {
      let lost = 0
      for (const u of refusals.due(now(), all)) if (!await writeUnrecorded(u)) lost++
      return lost
    },

    /** One currency's trail: its issuers and the platform issuer. */
    async forCurrency (principal: Principal | null, code: string, q: AuditQuery) {
      const c = await currencies.resolve(code)
      currencies.assertIssuer(principal, c.id)
      return await page({ currencyId: c.id }, q)
    },

    /** The whole trail, also rows that belong to no currency (platform logins, unknown usernames). */
    async all (principal: Principal | null, q: AuditQuery) {
      if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
      if (principal.role !== 'platform_issuer') throw new DomainError('FORBIDDEN', 'only the platform issuer reads the whole audit trail')
      const currencyId = q.currency == null ? undefined : (await currencies.resolve(q.currency)).id
      return await page({ currencyId }, q)
    },
  }
}

export type AuditService = ReturnType<typeof auditService>
