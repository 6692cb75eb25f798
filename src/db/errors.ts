import { DomainError, isErrorCode, type ErrorCode } from '../domain/errors.js'

// Maps PostgreSQL and pool failures to domain errors. The ledger function answers a problem code per movement;
// constraints that guard invariants surface under their own names.
const DETAILS: Partial<Record<ErrorCode, string>> = {
  IDEMPOTENCY_IN_FLIGHT: 'a request with this Idempotency-Key is still being processed; retry shortly',
  IDEMPOTENCY_KEY_REUSED: 'this Idempotency-Key was already used with a different request body',
  ACCOUNT_NOT_FOUND: 'account not found',
  CURRENCY_MISMATCH: 'the accounts belong to a different currency',
  ACCOUNT_FROZEN: 'an account in this transfer is frozen',
  ACCOUNT_CLOSED: 'an account in this transfer is closed',
  INSUFFICIENT_FUNDS: 'the payer does not have enough funds (the account would pass its floor)',
  CEILING_EXCEEDED: 'the receiving account would pass its ceiling',
  RESERVE_EXCEEDED: 'the currency\'s sterling reserve cannot cover this: it would pay out sterling that was never paid in (money spent on credit is not backed by sterling)',
  ALREADY_REVERSED: 'this transfer has already been reversed',
  TRANSFER_NOT_FOUND: 'transfer not found',
  SAME_ACCOUNT: 'payer and payee must be different accounts',
  INVALID_LIMITS: 'floor must not be above ceiling',
  INVALID_AMOUNT: 'an amount must be greater than zero, with at most 6 decimals and 18 digits before the point',
}

// Constraints that guard invariants: they fire only if something got past the ledger function's own checks.
const CONSTRAINTS: Record<string, ErrorCode> = {
  account_floor_check: 'INSUFFICIENT_FUNDS',
  account_ceiling_check: 'CEILING_EXCEEDED',
  account_limits_check: 'INVALID_LIMITS',
  transfer_reverses_once: 'ALREADY_REVERSED',
}

export function fromDatabaseError (err: unknown): DomainError | null {
  const e = err as { code?: string, message?: string, constraint?: string, detail?: string }
  if (e == null || typeof e !== 'object') return null
  if ((e.code === '23514' || e.code === '23505') && e.constraint != null && CONSTRAINTS[e.constraint] != null) {
    return domainErrorFor(CONSTRAINTS[e.constraint])
  }
  if (isUnavailable(err)) return new DomainError('SERVICE_UNAVAILABLE', 'the database is unavailable or busy; retry shortly')
  if (isDataException(err)) {
    return new DomainError('VALIDATION_FAILED', 'a value in the request cannot be stored (e.g. a NUL character, or a number out of range)')
  }
  return null
}

// The database is away, restarting, overloaded or too slow: the request may succeed if retried, so 503 + Retry-After.
// Seen under the faults suite (test-faults/): pg's socket errors, "Connection terminated unexpectedly", a pool
// timeout, PostgreSQL's shutdown/startup/crash codes, and Prisma wrapping any of these (P1001, or P2010 with the
// driver adapter's error in meta) depending on the call.
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'EAI_AGAIN'])
// 08: connection exception; 53: insufficient resources; 57P01-57P05: shutdown, crash, cannot connect now, idle
// session timeout; 57014: statement timeout; 55P03: lock not available; 40001/40P01: still failing after retries;
// 25006: a write reached a host that turned read-only (a primary demoted during a failover, src/db/hosts.ts)
const UNAVAILABLE_SQLSTATE = /^(08...|53...|57P0.|57014|55P03|40001|40P01|25006)$/
const ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections', 'TlsConnectionError', 'TransactionWriteConflict'])
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2028', 'P2034'])
const MESSAGES = /timeout exceeded when trying to connect|Connection terminated|connection error|Can't reach database server|server closed the connection|Client was closed|Cannot use a pool after calling end|the database system is (starting up|shutting down|in recovery mode)/i

interface AdapterCause { kind?: string, code?: string, originalCode?: string }
const adapterCause = (e: { meta?: unknown }): AdapterCause | null =>
  (e.meta as { driverAdapterError?: { cause?: AdapterCause } } | undefined)?.driverAdapterError?.cause ?? null

export function isUnavailable (err: unknown): boolean {
  const e = err as { code?: string, message?: string, meta?: unknown, cause?: unknown }
  if (e == null || typeof e !== 'object') return false
  if (typeof e.code === 'string' && (NET_CODES.has(e.code) || UNAVAILABLE_SQLSTATE.test(e.code) || PRISMA_CODES.has(e.code))) return true
  const cause = adapterCause(e)
  if (cause != null) {
    if (cause.kind != null && ADAPTER_KINDS.has(cause.kind)) return true
    const code = cause.originalCode ?? cause.code
    if (code != null && UNAVAILABLE_SQLSTATE.test(code)) return true
  }
  if (e.constructor?.name === 'PrismaClientInitializationError') return true
  if (typeof e.message === 'string' && MESSAGES.test(e.message)) return true
  return e.cause != null && e.cause !== err && isUnavailable(e.cause)
}

// Data exceptions a value from a client can cause (a NUL character in text, a number or date out of range, a
// string too long): the client can fix it, so a 422, never a 500. Only these: other class-22 codes are raised on
// purpose by SQL functions and keep their own message.
const DATA_SQLSTATES = new Set(['22021', '22P05', '22001', '22003', '22P02', '22007', '22008'])
const DATA_KINDS = new Set(['LengthMismatch', 'ValueOutOfRange', 'InvalidInputValue'])
export function isDataException (err: unknown): boolean {
  const e = err as { code?: string, meta?: unknown }
  if (e == null || typeof e !== 'object') return false
  if (typeof e.code === 'string' && DATA_SQLSTATES.has(e.code)) return true
  const cause = adapterCause(e)
  if (cause == null) return false
  if (cause.kind != null && DATA_KINDS.has(cause.kind)) return true
  const code = cause.originalCode ?? cause.code
  return code != null && DATA_SQLSTATES.has(code)
}

/** The domain error for a problem code the ledger function reports for a movement. */
export function domainErrorFor (code: string): DomainError {
  if (isErrorCode(code)) return new DomainError(code, DETAILS[code] ?? code.toLowerCase().replaceAll('_', ' '))
  return new DomainError('INTERNAL', `unexpected ledger result ${code}`)
}
