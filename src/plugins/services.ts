import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { movementCoalescer, type CoalescerOptions } from '../ledger/coalescer.js'
import { accountService } from '../services/account.service.js'
import { apiKeyService } from '../services/api-key.service.js'
import { auditService, type AuditOptions } from '../services/audit.service.js'
import { authService, type LoginPolicy } from '../services/auth.service.js'
import { batchService, type BatchOptions } from '../services/batch.service.js'
import { currencyService } from '../services/currency.service.js'
import { loginService } from '../services/login.service.js'
import { notesService } from '../services/notes.service.js'
import { standingOrderService } from '../services/standing-order.service.js'
import { participantService } from '../services/participant.service.js'
import { paymentRequestService } from '../services/payment-request.service.js'
import { requestWatch, type RequestWatch } from '../db/request-watch.js'
import { reportService } from '../services/report.service.js'
import { computePool, type ComputeOptions, type ComputePool } from '../reports/compute-pool.js'
import { smsService } from '../services/sms.service.js'
import { outboxSender, type TextSender } from '../sms/outbound.js'
import { staffService } from '../services/staff.service.js'
import { transferService } from '../services/transfer.service.js'

export interface ServicesOptions {
  scryptCost: number
  /** how stale a circulation report may be (0: always drain pending transfers first) */
  reportsMaxStalenessMs?: number
  /** RESEARCH_EXPORTS_PER_DAY */
  exportsPerDay?: number
  /** worker threads for the reports' pure computation (reports/compute-pool.ts); default: none, on the event loop */
  reportCompute?: ComputeOptions
  /** login throttling per client address (defaults: see config.ts) */
  login?: LoginPolicy
  /** how long an API key's last revocation check is trusted */
  apiKeyCheckMs?: number
  /** API keys a business may hold that are not revoked (default 20) */
  apiKeysPerBusiness?: number
  /** how long this instance's copy of the revoked logins is trusted (default 5 s) */
  loginCheckMs?: number
  /** entries one statement page with a time range looks at, at most (STATEMENT_WINDOW) */
  statementWindow: number
  /** transfers one page of the transfer search with a filter looks at, at most (TRANSFER_WINDOW; default 1,000) */
  transferWindow?: number
  /** the audit trail's bound on a caller's refused attempts (AUDIT_REFUSALS_PER_MINUTE), on the rows a filtered page
   *  looks at (AUDIT_WINDOW), and its clock */
  audit?: AuditOptions
  /** batch requests at the database at once, and waiting (defaults: see config.ts) */
  batch?: BatchOptions
  /** concurrent single movements posted together (ledger/coalescer.ts); null: every movement is posted alone */
  coalesce?: CoalescerOptions | null
  /** the time standing orders read (today, for a new order's start); default the wall clock */
  clock?: () => Date
  /** the time reports take as now; default the wall clock */
  reportClock?: () => Date
  /** pay by text (docs/text-payments.md): the gateway's token and webhook URL; the outbound port (default: the outbox) */
  sms?: { authToken: string | null, publicUrl: string | null, sender?: TextSender, clock?: (() => Date) | null, newCode?: (() => string) | null }
  /** payment requests: the clock expiry is judged by (tests), long-poll waiters per instance, the expiry sweep */
  requests?: { clock?: (() => Date) | null, maxWaiters?: number, waitersPerCaller?: number, waitersPerCurrency?: number, expireIntervalMs?: number }
}

const DEFAULT_LOGIN: LoginPolicy = { maxFailures: 5, baseSeconds: 2, maxSeconds: 900, windowSeconds: 3600 }
const DEFAULT_BATCH: BatchOptions = { concurrency: 2, maxQueue: 32, perCaller: 4 }
const DEFAULT_COALESCE: CoalescerOptions = { maxBatch: 256, concurrency: 2, maxQueue: 10_000 }

const build = (app: FastifyInstance, opts: ServicesOptions, watch: RequestWatch, compute: ComputePool) => {
  const currencies = currencyService(app.prisma)
  const coalesce = opts.coalesce === undefined ? DEFAULT_COALESCE : opts.coalesce
  const coalescer = coalesce == null ? null : movementCoalescer(app.pool, coalesce)
  const accounts = accountService(app.prisma, currencies, { pool: app.pool, readPool: app.readPool, reads: app.reads }, { statementWindow: opts.statementWindow })
  const logins = loginService(app.prisma, { checkMs: opts.loginCheckMs ?? 5000, publish: app.shared.publishRevocation })
  return {
    auth: authService(app.prisma, opts.scryptCost, opts.login ?? DEFAULT_LOGIN, logins.tokensRevoked),
    currencies,
    participants: participantService(app.prisma, currencies, opts.scryptCost),
    accounts,
    transfers: transferService(app.pool, app.prisma, currencies, accounts, coalescer, { window: opts.transferWindow }),
    reports: reportService(app.readPool, currencies, { maxStalenessMs: opts.reportsMaxStalenessMs ?? 0, compute, clock: opts.reportClock, exportsPerDay: opts.exportsPerDay }, app.reads),
    batches: batchService(app.pool, currencies, opts.batch ?? DEFAULT_BATCH),
    staff: staffService(app.prisma, currencies, opts.scryptCost),
    apiKeys: apiKeyService(app.prisma, opts.apiKeyCheckMs ?? 5000, app.shared.publishRevocation, opts.apiKeysPerBusiness),
    logins,
    audit: auditService(app.prisma, currencies, opts.audit),
    sms: smsService(app.pool, currencies, {
      scryptCost: opts.scryptCost, authToken: opts.sms?.authToken ?? null, publicUrl: opts.sms?.publicUrl ?? null,
      sender: opts.sms?.sender ?? outboxSender, clock: opts.sms?.clock ?? undefined, newCode: opts.sms?.newCode ?? undefined,
    }),
    notes: notesService(app.pool, app.readPool, app.prisma, currencies, coalescer),
    standingOrders: standingOrderService(app.pool, app.prisma, currencies, accounts, opts.clock ?? (() => new Date())),
    requests: paymentRequestService(app.pool, currencies, accounts, {
      clock: opts.requests?.clock ?? undefined, watch, waitersPerCaller: opts.requests?.waitersPerCaller,
      waitersPerCurrency: opts.requests?.waitersPerCurrency,
    }),
  }
}

declare module 'fastify' {
  interface FastifyInstance { services: ReturnType<typeof build> }
}

export default fp<ServicesOptions>(async (app, opts) => {
  // one LISTEN connection per instance for long-polling payment requests, opened on the first wait
  const watch = requestWatch({ connectionString: app.pool.options.connectionString }, { maxWaiters: opts.requests?.maxWaiters ?? 10_000, log: app.log })
  const compute = computePool(opts.reportCompute ?? { workers: 0, heapMb: 0 })
  const services = build(app, opts, watch, compute)
  app.decorate('services', services)
  // With Redis, a revocation on any instance reaches every instance's caches at once (plugins/shared.ts); without
  // it, or while Redis is away, each instance reads them again within API_KEY_CHECK_MS / LOGIN_CHECK_MS.
  app.shared.onRevocation((m) => {
    if (m.kind === 'api-key') services.apiKeys.forget(m.id)
    else if (m.kind === 'logins') services.logins.forget()
    else { services.apiKeys.forget(null); services.logins.forget() }
  })
  // pending payment requests past their time are written 'expired', with their event, by every instance in turn
  let sweep: NodeJS.Timeout | null = null
  const every = opts.requests?.expireIntervalMs ?? 0
  app.addHook('onReady', async () => {
    if (every > 0) {
      sweep = setInterval(() => {
        app.services.requests.expireDue().catch((err: unknown) => { app.log.warn({ err }, 'payment request expiry sweep failed') })
      }, every)
      sweep.unref()
    }
  })
  // long-polls answer at once when the server closes (they would hold its close for up to 30 s)
  app.addHook('preClose', async () => { await watch.close() })
  app.addHook('onClose', async () => {
    if (sweep != null) clearInterval(sweep)
    await watch.close()
    await compute.close()
  })
}, { name: 'services', dependencies: ['db', 'shared'] })
