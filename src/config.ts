import envSchema from 'env-schema'
import { Type, type Static } from 'typebox'
import { isLinkHost } from './domain/host.js'
import { checkNewPassword } from './domain/password-rules.js'

// The one place that reads process.env. Bad config stops the process with a message naming the variable.

/** The longest TOKEN_TTL_SECONDS allowed: no instance signs a token that lives longer (login.service.ts counts on it). */
export const TOKEN_TTL_MAX_SECONDS = 86_400

export const ConfigSchema = Type.Object({
  /** `production` in the Docker image; nothing else reads it but libraries. */
  NODE_ENV: Type.String({ default: 'development' }),
  /**
   * Where to listen. Unset: 127.0.0.1 with the embedded demo database (its logins are printed at start, so it is
   * not for other machines), 0.0.0.0 with DATABASE_URL. The Dockerfile sets 0.0.0.0.
   */
  HOST: Type.Optional(Type.String({ minLength: 1 })),
  /** Port of the HTTP server. */
  PORT: Type.Integer({ default: 3000, minimum: 0, maximum: 65535 }),
  /** pino JSON logs, a request id on every line (X-Request-Id is honoured). */
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' }),
  /** PostgreSQL 15+. Unset: an embedded PostgreSQL is started with its data under DATA_DIR. The service adds `-c TimeZone=UTC` to the URL's `options` (or to PGOPTIONS when the URL has none): its sessions run in UTC whatever the server's zone (each currency's own zone is named where a day is meant). */
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  /** The embedded database, the generated signing key and the demo logins. */
  DATA_DIR: Type.String({ default: './.data' }),
  /** Port of the embedded PostgreSQL (only without DATABASE_URL). */
  EMBEDDED_PG_PORT: Type.Integer({ default: 54329, minimum: 1, maximum: 65535 }),
  /** Connections of the main pool (the ledger write path and Prisma share it). */
  DB_POOL_MAX: Type.Integer({ default: 10, minimum: 1, maximum: 200 }),
  /**
   * A streaming replica for reports, research exports and statement CSVs (docs/operations.md "Read replica").
   * Unset: they read on the primary's read pool.
   */
  REPLICA_DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  /** A read waits at most this long for the replica to replay what the primary had; past it, it reads on the primary. */
  REPLICA_MAX_LAG_MS: Type.Integer({ default: 2000, minimum: 0, maximum: 600000 }),
  /** How long a request may wait for a database connection before it is shed with a 503. */
  DB_ACQUIRE_TIMEOUT_MS: Type.Integer({ default: 2000, minimum: 10 }),
  /** No statement on the main pool runs longer. */
  DB_STATEMENT_TIMEOUT_MS: Type.Integer({ default: 10000, minimum: 100 }),
  /**
   * Reports, research exports and statement CSVs run on a pool of their own (plugins/db.ts: readPool), so however
   * many of them run, the ledger's writes keep every connection of DB_POOL_MAX.
   */
  // one by default: a wide report keeps a database core busy, and on a small server the payments need the other;
  // raise it where the database has cores to spare (docs/operations.md)
  READ_POOL_MAX: Type.Integer({ default: 1, minimum: 1, maximum: 100 }),
  /** How long a report or export waits for a read connection before it is shed with a 503. */
  READ_ACQUIRE_TIMEOUT_MS: Type.Integer({ default: 15000, minimum: 10 }),
  /** No statement of a report or export runs longer (the read pool's own statement timeout). */
  READ_STATEMENT_TIMEOUT_MS: Type.Integer({ default: 30000, minimum: 100 }),
  /**
   * Worker threads that compute reports' metrics, flows, CSV and largest circulations off the event loop, so payments
   * do not wait behind a report (docs/architecture.md "Where report computation runs"); 0 computes them on the event loop.
   */
  // one by default: the service runs on two cores, and PostgreSQL needs one of them
  REPORT_WORKERS: Type.Integer({ default: 1, minimum: 0, maximum: 8 }),
  /**
   * The heap (old space) of each report worker, in MB, a quarter of it for the circulation solvers it keeps; a report
   * that needs more answers 503 and the worker is replaced.
   */
  REPORT_WORKER_HEAP_MB: Type.Integer({ default: 64, minimum: 1, maximum: 4096 }),
  /**
   * Refused attempts (a 403, a 422 ...) one caller may have written one by one to one currency's audit trail in a
   * minute, per instance; past it they are counted into summary rows (one per action and login or key) when the minute
   * is over. 0: every one written.
   */
  AUDIT_REFUSALS_PER_MINUTE: Type.Integer({ default: 30, minimum: 0 }),
  /** Rows of the audit trail one page with a filter (action, actor, outcome, from/to) looks at, at most; a page that reaches it unfilled is shorter and goes on in nextCursor. */
  AUDIT_WINDOW: Type.Integer({ default: 1000, minimum: 1, maximum: 1000000 }),
  /**
   * Requests one caller (a participant with all its logins and keys, or a staff login) may have running at once on
   * one instance; more wait their turn. Reports, exports and batches have budgets of their own; event streams and
   * long-polls give their place back once they wait. 0: no limit.
   */
  CALLS_PER_CALLER: Type.Integer({ default: 4, minimum: 0, maximum: 1000 }),
  /** Requests of one caller that may wait for one of its CALLS_PER_CALLER places; one more answers 429. */
  CALLS_WAITING_PER_CALLER: Type.Integer({ default: 256, minimum: 0, maximum: 100000 }),
  /**
   * Requests one currency's callers together may have running at once on one instance while another currency's
   * callers have requests running or waiting there; the rest wait their turn, caller by caller. A currency alone on
   * an instance is not held back.
   */
  CALLS_PER_CURRENCY: Type.Integer({ default: 16, minimum: 1, maximum: 100000 }),
  /** Reports, exports, CSV statements and reserve reads one caller (a participant with all its logins and keys, or a staff login) may have running at once, and as many again waiting; more answer 429. */
  READS_PER_CALLER: Type.Integer({ default: 2, minimum: 1, maximum: 100 }),
  /**
   * A report, export, CSV statement or reserve read whose client takes nothing of its response for this long (its
   * send buffer full and not drained) is ended and its connection closed, giving its place in READS_PER_CALLER and
   * READS_PER_CURRENCY back. Waiting for the database does not count. 0: never.
   */
  READ_STALL_MS: Type.Integer({ default: 30000, minimum: 0 }),
  /**
   * A report, export, CSV statement or reserve read whose client takes less than this on average over READ_STALL_MS
   * while the service has more to send (its send buffer full all along) is ended too, giving its places back: a client
   * reading a few KB at a time drains the buffer now and then, and held its place for hours. Waiting for the database
   * does not count. 0: never.
   */
  READ_MIN_BYTES_PER_SECOND: Type.Integer({ default: 65536, minimum: 0 }),
  /** Reports and exports one currency's callers together may have running at once on one instance while another currency's are running or waiting there (kept in the instance's memory, with or without REDIS_URL: it shares out the instance's read pool). */
  READS_PER_CURRENCY: Type.Integer({ default: 2, minimum: 1, maximum: 100 }),
  /** Larger request bodies get 413. */
  BODY_LIMIT: Type.Integer({ default: 65536, minimum: 1024 }),
  /** Body limit of POST .../transfers/batch (1,000 payments with references and metadata). */
  BATCH_BODY_LIMIT: Type.Integer({ default: 4194304, minimum: 1024 }),
  /** Batch requests at the database at once per process; BATCH_QUEUE_MAX more may wait. */
  BATCH_CONCURRENCY: Type.Integer({ default: 2, minimum: 1, maximum: 32 }),
  /** Batch requests allowed to wait for BATCH_CONCURRENCY before a 503. */
  BATCH_QUEUE_MAX: Type.Integer({ default: 32, minimum: 0 }),
  /** Batch requests one participant (all its logins and keys) or staff login may have running or waiting; more answer 429. */
  BATCH_PER_CALLER: Type.Integer({ default: 4, minimum: 1, maximum: 64 }),
  /** Entries of an account one statement page with a time range (from/to) looks at, at most; a page that reaches it unfilled is shorter and goes on in nextCursor. */
  STATEMENT_WINDOW: Type.Integer({ default: 1000, minimum: 1, maximum: 1000000 }),
  /** Transfers one page of the issuer's transfer search with kind, from or to looks at, at most (with account: the account's); a page that reaches it unfilled is shorter and goes on in nextCursor. */
  TRANSFER_WINDOW: Type.Integer({ default: 1000, minimum: 1, maximum: 1000000 }),
  /** Concurrent single movements are posted together, up to this many per ledger call; 0 posts each alone. */
  PAYMENT_COALESCE_MAX: Type.Integer({ default: 256, minimum: 0, maximum: 1000 }),
  /** Coalesced calls at the database at once per currency; PAYMENT_QUEUE_MAX movements may wait meanwhile. */
  PAYMENT_COALESCE_CONCURRENCY: Type.Integer({ default: 2, minimum: 1, maximum: 32 }),
  /** Single movements allowed to wait for the coalescer before a 503. */
  PAYMENT_QUEUE_MAX: Type.Integer({ default: 10000, minimum: 1 }),
  /** Shed new requests with 503 while the event loop lags more than this (0: off). */
  PRESSURE_MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ default: 1000, minimum: 0 }),
  /** The platform issuer, created on first start when no issuer exists (never a default password); a start with neither logs a warning, as nobody can log in. */
  ISSUER_USERNAME: Type.Optional(Type.String({ minLength: 3 })),
  /**
   * The platform issuer's password (with ISSUER_USERNAME): at least 12 characters, and not only spaces, one character
   * repeated, the username or a common password. Unset on the demo: a random one, printed.
   */
  ISSUER_PASSWORD: Type.Optional(Type.String({ minLength: 12 })),
  /** Signing keys: a JSON array of private Ed25519 JWKs (the first signs; all verify). Unset: a key kept in DATA_DIR. */
  JWT_PRIVATE_KEYS: Type.Optional(Type.String()),
  /** The `iss` claim of the tokens this service signs. */
  JWT_ISSUER: Type.String({ default: 'circulate' }),
  /** The `aud` claim of the tokens this service signs and accepts. */
  JWT_AUDIENCE: Type.String({ default: 'circulate-api' }),
  /** Lifetime of a bearer token. */
  TOKEN_TTL_SECONDS: Type.Integer({ default: 900, minimum: 30, maximum: TOKEN_TTL_MAX_SECONDS }),
  /** How often queued transfers are folded into the circulation aggregates; 0: only when a report asks. */
  REPORTS_AGGREGATE_INTERVAL_MS: Type.Integer({ default: 5000, minimum: 0 }),
  /**
   * How long a research export's record, with the salt its pseudonyms are made with, is kept after it was made; then
   * the aggregator's next run deletes it (so only while REPORTS_AGGREGATE_INTERVAL_MS is above 0). At least 24, the
   * hours in which ?export= continues an export.
   */
  // a kept salt turns that export's published pseudonyms back into account ids (docs/research-exports.md)
  RESEARCH_EXPORT_RETENTION_HOURS: Type.Integer({ default: 24, minimum: 24, maximum: 87600 }),
  /**
   * New research exports (a GET without ?export=) one researcher may start in 24 hours; past it 429 with Retry-After.
   * Continuing an export with ?export= and a HEAD start none. Each keeps its record and salt for
   * RESEARCH_EXPORT_RETENTION_HOURS.
   */
  RESEARCH_EXPORTS_PER_DAY: Type.Integer({ default: 100, minimum: 1, maximum: 100000 }),
  /** How often the standing orders' scheduler looks for due payments (it also looks once at start-up); 0: never. */
  SCHEDULER_INTERVAL_MS: Type.Integer({ default: 60000, minimum: 0 }),
  /**
   * 0: every report first folds in everything committed (exact to the moment it starts). Above 0: a report reads
   * the aggregates as this instance's background aggregator last left them if that was at most this long ago,
   * so reports stay fast under a steady stream of payments (docs/metrics.md, "How it stays fast").
   */
  REPORTS_MAX_STALENESS_MS: Type.Integer({ default: 0, minimum: 0 }),
  /** The demo's simulated year (src/demo/seed.ts): auto = load it when the embedded database (no DATABASE_URL)
   *  has no currency yet; 1 = also into an empty DATABASE_URL database; 0 = never. */
  SEED: Type.Enum(['auto', '0', '1', 'false', 'true'], { default: 'auto' }),
  /** Seed of the simulator's random generator: the same seed gives the same economy. */
  SEED_RANDOM: Type.Integer({ default: 1, minimum: 0 }),
  /** Share of the full Bristol scale (1,400 members, 620 businesses) the demo simulates. */
  SEED_SCALE: Type.Number({ default: 1, exclusiveMinimum: 0, maximum: 1 }),
  /** Verified tokens are remembered this long (never past their expiry), up to TOKEN_CACHE_MAX of them; 0: off. */
  TOKEN_CACHE_MS: Type.Integer({ default: 60000, minimum: 0 }),
  /** Most verified tokens remembered at once (the oldest go first). */
  TOKEN_CACHE_MAX: Type.Integer({ default: 10000, minimum: 1 }),
  /** scrypt cost (N). Tests lower it; production keeps the default. */
  SCRYPT_COST: Type.Integer({ default: 16384, minimum: 1024 }),

  // Access (docs/operations.md, "Keys").
  /** Retired keys: a JSON array of public JWKs that still verify tokens (and are published) but never sign. */
  JWT_RETIRED_PUBLIC_KEYS: Type.Optional(Type.String()),
  /** An external identity provider (OIDC): its JWKS URL, issuer and the audience its tokens carry for this API. */
  OIDC_JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** The provider's `iss`; set with OIDC_JWKS_URL and OIDC_AUDIENCE, and different from JWT_ISSUER. */
  OIDC_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  /** The `aud` the provider's tokens carry for this API. */
  OIDC_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  /** Claims of the provider's tokens: role (one of this service's roles), currency (a code), participant (id). */
  OIDC_ROLE_CLAIM: Type.String({ default: 'role' }),
  /** Claim naming the currency code (every role but platform issuer). */
  OIDC_CURRENCY_CLAIM: Type.String({ default: 'currency' }),
  /** Claim naming the participant id (members and businesses). */
  OIDC_PARTICIPANT_CLAIM: Type.String({ default: 'participant' }),
  /** Claim naming the user; the principal is `oidc:<value>`. */
  OIDC_USER_CLAIM: Type.String({ default: 'sub' }),
  /** Claim with the name the audit trail shows. */
  OIDC_NAME_CLAIM: Type.String({ default: 'preferred_username' }),
  /** Money-moving requests (payments, issuances, redemptions, reversals) per principal per minute; 0: no limit. */
  RATE_LIMIT_MONEY_PER_MINUTE: Type.Integer({ default: 300000, minimum: 0 }),
  /** Failed logins from one client address, or for one username, before it is locked out; the lockout doubles with each further one. */
  LOGIN_MAX_FAILURES: Type.Integer({ default: 5, minimum: 1 }),
  /** The first lockout after LOGIN_MAX_FAILURES failures; it doubles with each further failure. */
  LOGIN_LOCKOUT_SECONDS: Type.Integer({ default: 2, minimum: 1 }),
  /** The longest lockout. */
  LOGIN_LOCKOUT_MAX_SECONDS: Type.Integer({ default: 900, minimum: 1 }),
  /** Failures older than this are forgotten. */
  LOGIN_FAILURE_WINDOW_SECONDS: Type.Integer({ default: 3600, minimum: 1 }),
  /** How long an instance trusts its last look at an API key before checking revocation again (other instances). */
  API_KEY_CHECK_MS: Type.Integer({ default: 5000, minimum: 0 }),
  /**
   * API keys a business may hold that are not revoked; one more answers 409 API_KEY_LIMIT. Each key has its own
   * rate limits and event streams, so this bounds what one business can hold of an instance.
   */
  API_KEYS_PER_BUSINESS: Type.Integer({ default: 20, minimum: 1, maximum: 10000 }),
  /**
   * How long an instance trusts its copy of the suspended logins before reading it again (other instances'
   * suspensions). Never longer than TOKEN_CACHE_MS when that is shorter.
   */
  LOGIN_CHECK_MS: Type.Integer({ default: 5000, minimum: 0 }),
  // Live events (docs/shop.md): GET /v1/accounts/{id}/events.
  /** A comment line is sent on an idle event stream this often, so proxies keep it open. */
  EVENTS_HEARTBEAT_MS: Type.Integer({ default: 15000, minimum: 10, maximum: 300000 }),
  /** An event stream ends after this long (the client reconnects with Last-Event-ID and a fresh token). */
  EVENTS_STREAM_MAX_SECONDS: Type.Integer({ default: 900, minimum: 1, maximum: 86400 }),
  /** Event streams open on one instance; more answer 503. */
  EVENTS_MAX_STREAMS: Type.Integer({ default: 1000, minimum: 1 }),
  /** Event streams one login or API key may hold open on one instance; more answer 429. */
  EVENTS_STREAMS_PER_CALLER: Type.Integer({ default: 5, minimum: 1 }),
  // Webhooks (docs/shop.md).
  /** 1: webhook URLs may be http (never in production); 0: https only. */
  WEBHOOK_ALLOW_HTTP: Type.Enum(['0', '1', 'false', 'true'], { default: '0' }),
  /** 1: webhook URLs may resolve to private, loopback and link-local addresses (tests, a receiver on the same host). */
  WEBHOOK_ALLOW_PRIVATE: Type.Enum(['0', '1', 'false', 'true'], { default: '0' }),
  /** Name servers that resolve webhook hosts (comma-separated ip or ip:port); unset: the system's, from resolv.conf. */
  WEBHOOK_DNS_SERVERS: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
  /** A webhook host's DNS query waits this long for an answer, then is asked once more waiting twice as long. */
  WEBHOOK_DNS_TIMEOUT_MS: Type.Integer({ default: 1500, minimum: 50, maximum: 30000 }),
  /** 1: this instance delivers webhooks (any number may: rows are claimed with SKIP LOCKED); 0: it only records them. */
  WEBHOOK_DELIVERY: Type.Enum(['0', '1', 'false', 'true'], { default: '1' }),
  /** How often due retries are looked for (new events wake the worker at once). */
  WEBHOOK_INTERVAL_MS: Type.Integer({ default: 1000, minimum: 50 }),
  /** One delivery attempt waits this long for an answer; it bounds the whole exchange, the response's body too. */
  WEBHOOK_TIMEOUT_MS: Type.Integer({ default: 10000, minimum: 100, maximum: 60000 }),
  /** A delivery is retried with backoff for this long, then failed (and its endpoint disabled). */
  WEBHOOK_GIVE_UP_HOURS: Type.Number({ default: 72, exclusiveMinimum: 0 }),
  /** An endpoint failing this many times in a row, for at least WEBHOOK_DISABLE_AFTER_HOURS, is disabled. */
  WEBHOOK_DISABLE_AFTER_FAILURES: Type.Integer({ default: 20, minimum: 1 }),
  /** How long the failures in a row must span before the endpoint is disabled. */
  WEBHOOK_DISABLE_AFTER_HOURS: Type.Number({ default: 24, minimum: 0 }),
  /**
   * How long a finished webhook delivery (delivered or failed) stays in its endpoint's delivery log after its last
   * attempt, and a secret rotation's Idempotency-Key is remembered (the one that made an endpoint's current secret
   * stays); then the instances that deliver webhooks delete them, at start and every 10 minutes.
   */
  WEBHOOK_RETENTION_DAYS: Type.Integer({ default: 30, minimum: 1, maximum: 3650 }),
  /** Webhooks one business (or one currency's issuers) may have. */
  WEBHOOK_MAX_PER_OWNER: Type.Integer({ default: 10, minimum: 1, maximum: 100 }),
  /**
   * Redis shared by every instance (docs/operations.md "Redis"): rate limits, the read budget and revocations
   * (API keys, suspended logins) then hold across instances. Unset: each instance keeps them in memory.
   */
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  /** A Redis command slower than this counts as Redis being away (the in-memory fallback answers instead). */
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ default: 250, minimum: 10 }),
  /** Prefix of every Redis key and channel, so deployments can share one Redis. */
  REDIS_PREFIX: Type.String({ default: 'circulate:', pattern: '^[A-Za-z0-9:_.-]{0,64}$' }),
  /**
   * Behind a load balancer: take the client address from X-Forwarded-For (login throttling, audit), as the last
   * TRUST_PROXY_HOPS proxies wrote it. Only the entries the trusted proxies appended are believed: a client that
   * sends its own X-Forwarded-For cannot choose the address it is counted under.
   */
  TRUST_PROXY: Type.Boolean({ default: false }),
  /** How many proxies in front of the service append to X-Forwarded-For (a load balancer alone: 1). */
  TRUST_PROXY_HOPS: Type.Integer({ default: 1, minimum: 1, maximum: 10 }),

  // Pay by text (docs/text-payments.md).
  /** The SMS gateway's auth token: it signs the gateway's webhooks (X-Twilio-Signature). Unset: POST /v1/sms/inbound answers 404. */
  SMS_AUTH_TOKEN: Type.Optional(Type.String({ minLength: 8 })),
  /**
   * The webhook's URL exactly as configured at the gateway (e.g. https://pay.example.org/v1/sms/inbound), which the
   * gateway signs. Behind a proxy the URL this service sees differs; unset, it is rebuilt from the request.
   */
  SMS_PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  /**
   * Sending texts for real (docs/text-payments.md): the gateway account (Twilio's Account SID). With SMS_FROM and
   * SMS_AUTH_TOKEN, or not at all; unset, texts stay queued in the outbox.
   */
  SMS_ACCOUNT_SID: Type.Optional(Type.String({ pattern: '^AC[A-Za-z0-9]{1,64}$' })),
  /** The sender of texts: the scheme's number in E.164 (+447700900000), or a Messaging Service SID (MG...). */
  SMS_FROM: Type.Optional(Type.String({ minLength: 3, maxLength: 66 })),
  /** The gateway's REST API. */
  SMS_API_URL: Type.String({ default: 'https://api.twilio.com', pattern: '^https?://' }),
  /** How often queued texts are handed to the gateway. */
  SMS_SEND_INTERVAL_MS: Type.Integer({ default: 2000, minimum: 50 }),
  /**
   * The service's public address (e.g. https://pay.example.org: a scheme, a host name or IP literal, and an optional
   * port, nothing else), the base of a payment request's payUrl and QR text. Unset: the address the request came in on (its Host header, and X-Forwarded-Proto with TRUST_PROXY).
   */
  PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://[^/?#]+$' })),
  /** How often pending payment requests past their time are written 'expired' with their event (0: never). */
  REQUESTS_EXPIRE_INTERVAL_MS: Type.Integer({ default: 5000, minimum: 0 }),
  /** Long-polling GETs of payment requests waiting at once, per instance; more are answered at once. */
  REQUESTS_MAX_WAITERS: Type.Integer({ default: 10000, minimum: 0 }),
  /** Of those, how many one participant (all its logins and keys) or staff login may have; more are answered at once. */
  REQUESTS_WAITERS_PER_CALLER: Type.Integer({ default: 50, minimum: 0 }),
  /**
   * Of an instance's event streams (EVENTS_MAX_STREAMS), batches running and waiting (BATCH_CONCURRENCY +
   * BATCH_QUEUE_MAX) and payment-request long-polls (REQUESTS_MAX_WAITERS), the share in percent that one currency's
   * callers may hold, and of the webhook sends this instance may have under way the share one currency's may be,
   * so one currency's participants cannot take them all from another's. 100: an instance that serves one scheme
   * only.
   */
  CURRENCY_SHARE_PERCENT: Type.Integer({ default: 50, minimum: 1, maximum: 100 }),
})

export type Config = Static<typeof ConfigSchema>

export function loadConfig (env: Record<string, string | undefined> = process.env, overrides: Partial<Config> = {}): Config {
  const data: Record<string, unknown> = { ...env }
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) data[k] = String(v)
  // An empty DATABASE_URL means "unset" (shells and compose files leave empty strings behind).
  if (data.DATABASE_URL === '') delete data.DATABASE_URL
  if (data.REDIS_URL === '') delete data.REDIS_URL
  if (data.REPLICA_DATABASE_URL === '') delete data.REPLICA_DATABASE_URL
  let config: Config
  try {
    config = envSchema<Config>({ schema: ConfigSchema, data, dotenv: false })
  } catch (err) {
    throw new Error(`Invalid configuration: ${(err as Error).message}`)
  }
  const gateway = [config.SMS_ACCOUNT_SID, config.SMS_FROM].filter(v => v != null).length
  if (gateway !== 0 && (gateway !== 2 || config.SMS_AUTH_TOKEN == null)) {
    throw new Error('Invalid configuration: SMS_ACCOUNT_SID and SMS_FROM are set together, with SMS_AUTH_TOKEN, or not at all')
  }
  if (config.SMS_FROM != null && !/^\+[1-9][0-9]{6,14}$/.test(config.SMS_FROM) && !/^MG[A-Za-z0-9]{1,64}$/.test(config.SMS_FROM)) {
    throw new Error('Invalid configuration: SMS_FROM must be a number in E.164 form or a Messaging Service SID (MG...)')
  }
  // the platform issuer's first password keeps the rules every other new password keeps (domain/password-rules.ts)
  if (config.ISSUER_PASSWORD != null) {
    try {
      checkNewPassword(config.ISSUER_USERNAME ?? '', config.ISSUER_PASSWORD)
    } catch (err) {
      throw new Error(`Invalid configuration: ISSUER_PASSWORD ${(err as Error).message.replace(/^the password /, '')}`)
    }
  }
  // the base of every pay link and QR code: a scheme and a host only (the grammar a Host header must match without it)
  if (config.PUBLIC_URL != null && !isLinkHost(config.PUBLIC_URL.replace(/^https?:\/\//, ''))) {
    throw new Error('Invalid configuration: PUBLIC_URL must be http:// or https:// and a host name or IP literal, with an optional port (no user, password, path or other characters)')
  }
  const oidc = [config.OIDC_JWKS_URL, config.OIDC_ISSUER, config.OIDC_AUDIENCE].filter(v => v != null).length
  if (oidc !== 0 && oidc !== 3) {
    throw new Error('Invalid configuration: OIDC_JWKS_URL, OIDC_ISSUER and OIDC_AUDIENCE are set together or not at all')
  }
  if (config.OIDC_ISSUER != null && config.OIDC_ISSUER === config.JWT_ISSUER) {
    throw new Error('Invalid configuration: OIDC_ISSUER must differ from JWT_ISSUER (the issuer picks the keys that verify a token)')
  }
  return config
}

/** Where the server listens: HOST, else only this machine when the embedded demo database is in use. */
export const listenHost = (config: Config, embedded: boolean): string => config.HOST ?? (embedded ? '127.0.0.1' : '0.0.0.0')

/**
 * Settings meant for a laptop or a benchmark that are unsafe on a real deployment. They are not refused (the bench
 * runs the built service with NODE_ENV=production and sets them) but said at every start (server.ts), so nobody runs
 * a scheme with them unaware.
 */
export function productionWarnings (config: Config): string[] {
  if (config.NODE_ENV !== 'production') return []
  const on = (v: string) => v === '1' || v === 'true'
  const out: string[] = []
  if (on(config.WEBHOOK_ALLOW_PRIVATE)) out.push('WEBHOOK_ALLOW_PRIVATE is on: any business can aim a webhook at this network\'s private, loopback and link-local addresses')
  if (on(config.WEBHOOK_ALLOW_HTTP)) out.push('WEBHOOK_ALLOW_HTTP is on: webhooks may be sent unencrypted over plain http')
  if (on(config.SEED)) out.push('SEED is on: an empty database is filled with a simulated year and demo logins with issuer powers')
  return out
}
