import { DomainError, isErrorCode } from '../domain/errors.js'

// Maps PostgreSQL and pool failures to domain errors. The ledger function raises SQLSTATE CL001 with a problem
// code as its message; constraints that guard invariants surface under their own names.
const CONSTRAINTS: Record<string, [code: ConstructorParameters<typeof DomainError>[0], detail: string]> = {
  account_floor_check: ['INSUFFICIENT_FUNDS', 'the payer does not have enough funds (the account would pass its floor)'],
  account_ceiling_check: ['CEILING_EXCEEDED', 'the receiving account would pass its ceiling'],
  account_limits_check: ['INVALID_LIMITS', 'floor must not be above ceiling'],
  transfer_reverses_once: ['ALREADY_REVERSED', 'this transfer has already been reversed'],
}

const DETAILS: Record<string, string> = {
  IDEMPOTENCY_IN_FLIGHT: 'a request with this Idempotency-Key is still being processed; retry shortly',
  IDEMPOTENCY_KEY_REUSED: 'this Idempotency-Key was already used with a different request body',
  ACCOUNT_NOT_FOUND: 'account not found',
  CURRENCY_MISMATCH: 'the accounts belong to a different currency',
  ACCOUNT_FROZEN: 'an account in this transfer is frozen',
  ACCOUNT_CLOSED: 'an account in this transfer is closed',
}

/** SQLSTATEs worth retrying inside the service: serialization failure, deadlock. */
export const RETRYABLE = new Set(['40001', '40P01'])

export function fromDatabaseError (err: unknown): DomainError | null {
  const e = err as { code?: string, message?: string, constraint?: string, detail?: string }
  if (e == null || typeof e !== 'object') return null
  if (e.code === 'CL001' && e.message != null && isErrorCode(e.message)) {
    return new DomainError(e.message, DETAILS[e.message] ?? e.message)
  }
  if ((e.code === '23514' || e.code === '23505') && e.constraint != null && CONSTRAINTS[e.constraint] != null) {
    const [code, detail] = CONSTRAINTS[e.constraint]
    return new DomainError(code, detail)
  }
  const msg = e.message ?? ''
  // The pool could not hand out a connection in time, or the database is away: shed load with a 503.
  if (msg.includes('timeout exceeded when trying to connect') || msg.includes('Connection terminated') ||
      e.code === 'ECONNREFUSED' || e.code === '57P01' || e.code === '57P03' || e.code === '53300' ||
      e.code === '57014' || /P1001|P2024|P1017/.test(e.code ?? '')) {
    return new DomainError('SERVICE_UNAVAILABLE', 'the database is unavailable or busy; retry shortly')
  }
  return null
}

/** The domain error for a problem code the batch function reports per item (same details as ledger_post's). */
export function domainErrorFor (code: string): DomainError {
  const constraint = Object.values(CONSTRAINTS).find(([c]) => c === code)
  if (constraint != null) return new DomainError(constraint[0], constraint[1])
  if (isErrorCode(code)) return new DomainError(code, DETAILS[code] ?? code)
  return new DomainError('INTERNAL', `unexpected ledger result ${code}`)
}
