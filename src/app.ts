import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { KeySet } from './auth/keys.js'
import type { Config } from './config.js'
import { AccessLog } from './plugins/access-log.js'
import audit from './plugins/audit.js'
import aggregator from './plugins/aggregator.js'
import auth from './plugins/auth.js'
import db from './plugins/db.js'
import events from './plugins/events.js'
import webhooks from './plugins/webhooks.js'
import pressure from './plugins/pressure.js'
import problem, { clientErrorHandler, frameworkErrors } from './plugins/problem.js'
import { ROUTER_OPTIONS } from './plugins/allowed-methods.js'
import { DomainError } from './domain/errors.js'
import { currencyShare } from './domain/per-caller.js'
import rateLimits from './plugins/rate-limits.js'
import securityHeaders from './plugins/security-headers.js'
import heldPlaces from './plugins/held-places.js'
import readBudget from './plugins/read-budget.js'
import callerShare from './plugins/caller-share.js'
import services from './plugins/services.js'
import smsRelay from './plugins/sms-relay.js'
import shared from './plugins/shared.js'
import swagger from './plugins/swagger.js'
import validation from './plugins/validation.js'
import { ProblemSchema } from './schemas/common.js'
import { CellSchema } from './schemas/reports.js'
import accountRoutes from './routes/accounts.routes.js'
import apiKeyRoutes from './routes/api-keys.routes.js'
import auditRoutes from './routes/audit.routes.js'
import authRoutes from './routes/auth.routes.js'
import currencyRoutes from './routes/currencies.routes.js'
import dashboardRoutes from './routes/dashboard.routes.js'
import healthRoutes from './routes/health.routes.js'
import staffRoutes from './routes/staff.routes.js'
import suspensionRoutes from './routes/suspension.routes.js'
import reportRoutes from './routes/reports.routes.js'
import transferRoutes from './routes/transfers.routes.js'
import batchRoutes from './routes/batch.routes.js'
import eventRoutes from './routes/events.routes.js'
import webhookRoutes from './routes/webhooks.routes.js'
import smsRoutes from './routes/sms.routes.js'
import notesRoutes from './routes/notes.routes.js'
import standingOrderRoutes from './routes/standing-orders.routes.js'
import scheduler from './plugins/scheduler.js'
import paymentRequestRoutes from './routes/payment-requests.routes.js'
import payPageRoutes from './routes/pay-pages.routes.js'

export interface AppOptions {
  config: Config
  databaseUrl: string
  keys: KeySet
  /** tests only: the time the login throttle reads (default: the database's clock) */
  loginClock?: () => Date
  /** tests only: the time standing orders read (the scheduler, and today for a new order); default the wall clock */
  clock?: () => Date
  /** tests only: the time text verification codes expire by, and the codes texted (default: random) */
  smsClock?: () => Date
  smsCodes?: () => string
  /** tests only: the time payment requests expire by (default: the wall clock) */
  requestClock?: () => Date
  /** tests only: the time the audit trail's per-caller refusal windows read (default: the wall clock) */
  auditClock?: () => Date
  /** tests only: the time access tokens are dated by and checked against (default: the wall clock) */
  tokenClock?: () => Date
  /** tests and the bench only: the time reports take as now (the currency's today; default: the wall clock) */
  reportClock?: () => Date
}

/** Builds the whole service as one plugin; server.ts listens, tests call it with app.inject. */
const app: FastifyPluginAsync<AppOptions> = async (app, opts) => {
  const { config } = opts
  app.addSchema(ProblemSchema)
  app.addSchema(CellSchema)
  // every body this API takes is JSON (the SMS gateway's form posts have their own parser): without this, Fastify
  // would read a text/plain body as a string and answer it 422 "must be object", not 415 as openapi.yaml says
  app.removeContentTypeParser('text/plain')
  // JSON between systems is UTF-8 (RFC 8259, 8.1), and the parser reads every body as UTF-8: a body labelled with
  // another charset would be read wrongly and its text stored garbled, so it is refused instead
  app.addHook('preParsing', async (request) => {
    const type = request.headers['content-type']
    const body = request.headers['transfer-encoding'] != null || (request.headers['content-length'] ?? '0') !== '0'
    if (type == null || !body || !/^\s*application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)) return
    const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(type)?.[1]
    if (charset != null && !/^utf-?8$/i.test(charset)) {
      throw new DomainError('UNSUPPORTED_MEDIA_TYPE', `send JSON as UTF-8 (charset=utf-8, or no charset), not ${charset}`)
    }
  })
  await app.register(problem)
  await app.register(securityHeaders)
  await app.register(validation)
  await app.register(pressure, { maxEventLoopDelayMs: config.PRESSURE_MAX_EVENT_LOOP_DELAY_MS })
  await app.register(db, {
    databaseUrl: opts.databaseUrl, poolMax: config.DB_POOL_MAX,
    acquireTimeoutMs: config.DB_ACQUIRE_TIMEOUT_MS, statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
    reads: { poolMax: config.READ_POOL_MAX, acquireTimeoutMs: config.READ_ACQUIRE_TIMEOUT_MS, statementTimeoutMs: config.READ_STATEMENT_TIMEOUT_MS },
    replica: config.REPLICA_DATABASE_URL == null ? undefined : { url: config.REPLICA_DATABASE_URL, maxLagMs: config.REPLICA_MAX_LAG_MS },
  })
  await app.register(events, {
    databaseUrl: opts.databaseUrl, heartbeatMs: config.EVENTS_HEARTBEAT_MS, streamMaxSeconds: config.EVENTS_STREAM_MAX_SECONDS,
    maxStreams: config.EVENTS_MAX_STREAMS, streamsPerCaller: config.EVENTS_STREAMS_PER_CALLER,
    streamsPerCurrency: currencyShare(config.EVENTS_MAX_STREAMS, config.CURRENCY_SHARE_PERCENT),
  })
  await app.register(shared, { redisUrl: config.REDIS_URL, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS, prefix: config.REDIS_PREFIX })
  await app.register(services, {
    scryptCost: config.SCRYPT_COST,
    clock: opts.clock,
    reportClock: opts.reportClock,
    reportsMaxStalenessMs: config.REPORTS_MAX_STALENESS_MS,
    exportsPerDay: config.RESEARCH_EXPORTS_PER_DAY,
    reportCompute: { workers: config.REPORT_WORKERS, heapMb: config.REPORT_WORKER_HEAP_MB },
    apiKeyCheckMs: config.API_KEY_CHECK_MS,
    apiKeysPerBusiness: config.API_KEYS_PER_BUSINESS,
    loginCheckMs: config.TOKEN_CACHE_MS > 0 ? Math.min(config.LOGIN_CHECK_MS, config.TOKEN_CACHE_MS) : config.LOGIN_CHECK_MS,
    statementWindow: config.STATEMENT_WINDOW,
    transferWindow: config.TRANSFER_WINDOW,
    audit: { refusalsPerMinute: config.AUDIT_REFUSALS_PER_MINUTE, window: config.AUDIT_WINDOW, clock: opts.auditClock },
    batch: {
      concurrency: config.BATCH_CONCURRENCY, maxQueue: config.BATCH_QUEUE_MAX, perCaller: config.BATCH_PER_CALLER,
      perCurrency: currencyShare(config.BATCH_CONCURRENCY + config.BATCH_QUEUE_MAX, config.CURRENCY_SHARE_PERCENT),
    },
    coalesce: config.PAYMENT_COALESCE_MAX === 0
      ? null
      : { maxBatch: config.PAYMENT_COALESCE_MAX, concurrency: config.PAYMENT_COALESCE_CONCURRENCY, maxQueue: config.PAYMENT_QUEUE_MAX },
    login: {
      maxFailures: config.LOGIN_MAX_FAILURES, baseSeconds: config.LOGIN_LOCKOUT_SECONDS,
      maxSeconds: config.LOGIN_LOCKOUT_MAX_SECONDS, windowSeconds: config.LOGIN_FAILURE_WINDOW_SECONDS,
      clock: opts.loginClock ?? null,
    },
    sms: { authToken: config.SMS_AUTH_TOKEN ?? null, publicUrl: config.SMS_PUBLIC_URL ?? null, clock: opts.smsClock ?? null, newCode: opts.smsCodes ?? null },
    requests: {
      clock: opts.requestClock ?? null, maxWaiters: config.REQUESTS_MAX_WAITERS, waitersPerCaller: config.REQUESTS_WAITERS_PER_CALLER,
      waitersPerCurrency: currencyShare(config.REQUESTS_MAX_WAITERS, config.CURRENCY_SHARE_PERCENT),
      expireIntervalMs: config.REQUESTS_EXPIRE_INTERVAL_MS,
    },
  })
  // After services: the auth hook checks API-key revocation and resolves an external token's currency.
  const on = (v: string) => v === '1' || v === 'true'
  await app.register(webhooks, {
    policy: {
      allowHttp: on(config.WEBHOOK_ALLOW_HTTP), allowPrivate: on(config.WEBHOOK_ALLOW_PRIVATE),
      dnsServers: config.WEBHOOK_DNS_SERVERS?.split(',').map(x => x.trim()).filter(x => x !== ''), dnsTimeoutMs: config.WEBHOOK_DNS_TIMEOUT_MS,
    },
    deliver: on(config.WEBHOOK_DELIVERY), intervalMs: config.WEBHOOK_INTERVAL_MS, timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    giveUpHours: config.WEBHOOK_GIVE_UP_HOURS, disableAfterFailures: config.WEBHOOK_DISABLE_AFTER_FAILURES,
    disableAfterHours: config.WEBHOOK_DISABLE_AFTER_HOURS, maxPerOwner: config.WEBHOOK_MAX_PER_OWNER, retentionDays: config.WEBHOOK_RETENTION_DAYS,
    currencySharePercent: config.CURRENCY_SHARE_PERCENT,
  })
  await app.register(auth, {
    keys: opts.keys, issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, ttlSeconds: config.TOKEN_TTL_SECONDS,
    cacheMs: config.TOKEN_CACHE_MS, cacheMax: config.TOKEN_CACHE_MAX, clock: opts.tokenClock,
    oidc: config.OIDC_JWKS_URL == null
      ? null
      : {
          jwksUrl: config.OIDC_JWKS_URL, issuer: config.OIDC_ISSUER!, audience: config.OIDC_AUDIENCE!,
          claims: {
            role: config.OIDC_ROLE_CLAIM, currency: config.OIDC_CURRENCY_CLAIM, participant: config.OIDC_PARTICIPANT_CLAIM,
            user: config.OIDC_USER_CLAIM, name: config.OIDC_NAME_CLAIM,
          },
        },
  })
  await app.register(audit)
  await app.register(rateLimits, { moneyPerMinute: config.RATE_LIMIT_MONEY_PER_MINUTE })
  await app.register(heldPlaces)
  await app.register(readBudget, { perCaller: config.READS_PER_CALLER, perCurrency: config.READS_PER_CURRENCY, stallMs: config.READ_STALL_MS, minBytesPerSecond: config.READ_MIN_BYTES_PER_SECOND })
  await app.register(callerShare, { running: config.CALLS_PER_CALLER, waiting: config.CALLS_WAITING_PER_CALLER, perCurrency: config.CALLS_PER_CURRENCY })
  await app.register(swagger)
  await app.register(aggregator, { intervalMs: config.REPORTS_AGGREGATE_INTERVAL_MS, exportRetentionHours: config.RESEARCH_EXPORT_RETENTION_HOURS, clock: opts.reportClock })
  await app.register(smsRelay, {
    intervalMs: config.SMS_SEND_INTERVAL_MS,
    gateway: config.SMS_ACCOUNT_SID == null || config.SMS_FROM == null || config.SMS_AUTH_TOKEN == null
      ? null
      : { accountSid: config.SMS_ACCOUNT_SID, authToken: config.SMS_AUTH_TOKEN, from: config.SMS_FROM, baseUrl: config.SMS_API_URL },
  })

  await app.register(healthRoutes)
  await app.register(authRoutes)
  await app.register(currencyRoutes)
  await app.register(accountRoutes)
  await app.register(transferRoutes)
  await app.register(batchRoutes, { bodyLimit: config.BATCH_BODY_LIMIT })
  await app.register(staffRoutes)
  await app.register(apiKeyRoutes)
  await app.register(suspensionRoutes)
  await app.register(auditRoutes)
  await app.register(reportRoutes)
  await app.register(dashboardRoutes)
  await app.register(eventRoutes)
  await app.register(webhookRoutes)
  await app.register(smsRoutes)
  await app.register(notesRoutes)
  await app.register(standingOrderRoutes)
  await app.register(scheduler, { intervalMs: config.SCHEDULER_INTERVAL_MS, clock: opts.clock })
  await app.register(paymentRequestRoutes, { publicUrl: config.PUBLIC_URL ?? null })
  await app.register(payPageRoutes)
}

export default fp(app, { name: 'circulate' })

/** A caller's X-Request-Id when it is at most 128 of [A-Za-z0-9._:-]; otherwise a new UUID. */
export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
export function requestId (req: import('node:http').IncomingMessage): string {
  const h = req.headers['x-request-id']
  return typeof h === 'string' && REQUEST_ID.test(h) ? h : crypto.randomUUID()
}

/** Fastify server options shared by the server and the tests. */
export const serverOptions = (config: Config) => ({
  bodyLimit: config.BODY_LIMIT,
  // Request ids in every log line, the audit trail and every problem. A caller's X-Request-Id is kept so a trace
  // crosses services, but only a short safe one: anything else (a 6,000-character header, control characters) is
  // replaced by a fresh id, never stored.
  requestIdHeader: false as const,
  genReqId: requestId,
  return503OnClosing: true,
  // one access-log line per request (plugins/access-log.ts)
  logController: new AccessLog(),
  // malformed HTTP that never reaches routing still gets a problem+json (plugins/problem.ts)
  clientErrorHandler,
  frameworkErrors,
  http: { requireHostHeader: false },
  // the not-found handler's router of every route's methods takes the same (plugins/allowed-methods.ts)
  routerOptions: ROUTER_OPTIONS,
  // Behind a load balancer the client address (login throttling, audit) comes from X-Forwarded-For.
  // the last TRUST_PROXY_HOPS hops only (proxy-addr's hop count), not true: true would believe the leftmost
  // address of X-Forwarded-For, which the client writes itself
  trustProxy: config.TRUST_PROXY ? (_address: string, hop: number) => hop < config.TRUST_PROXY_HOPS : false,
})
