import { DomainError } from './errors.js'
import type { Principal } from './principal.js'

// Pure rules of access: API key scopes, audit actions and rows, and the login lockout policy.

/** What an API key may do. A password login has every right of its role; an API key only its scopes. */
export const SCOPES = ['payments:write', 'redemptions:write', 'statements:read', 'accounts:read'] as const
export type Scope = typeof SCOPES[number]
export const isScope = (s: string): s is Scope => (SCOPES as readonly string[]).includes(s)

/** Where a request came from, for the audit trail and the login throttle. */
export interface RequestMeta {
  clientAddress: string | null
  requestId: string | null
}
export const NO_META: RequestMeta = { clientAddress: null, requestId: null }

export const AUDIT_ACTIONS = [
  'currency.create', 'member.register', 'business.register', 'researcher.register', 'issuer.register',
  'account.update', 'payment.create', 'issuance.create', 'redemption.create', 'transfer.reverse',
  'auth.login', 'auth.api_key', 'api_key.create', 'api_key.revoke',
] as const
export type AuditAction = typeof AUDIT_ACTIONS[number]

/** One row of audit_event, as the repository writes it. */
export interface AuditRecord {
  actorId: string | null
  actorName: string | null
  role: string | null
  action: AuditAction
  target: string | null
  currencyId: string | null
  outcome: 'success' | 'failure'
  errorCode: string | null
  clientAddress: string | null
  requestId: string | null
  detail: Record<string, unknown>
}

export function auditRecord (principal: Principal | null, action: AuditAction, meta: RequestMeta | undefined, f: {
  target?: string | null, currencyId?: string | null, outcome?: 'success' | 'failure', errorCode?: string | null,
  detail?: Record<string, unknown>, actorId?: string | null, actorName?: string | null,
}): AuditRecord {
  return {
    actorId: f.actorId ?? principal?.userId ?? null,
    actorName: f.actorName ?? principal?.username ?? null,
    role: principal?.role ?? null,
    action,
    target: f.target ?? null,
    currencyId: f.currencyId ?? principal?.currencyId ?? null,
    outcome: f.outcome ?? 'success',
    errorCode: f.errorCode ?? null,
    clientAddress: meta?.clientAddress ?? null,
    requestId: meta?.requestId ?? null,
    detail: f.detail ?? {},
  }
}

export interface LockoutPolicy {
  /** failures (within the window) before the first lockout */
  maxFailures: number
  /** the first lockout; each further failure doubles it */
  baseSeconds: number
  maxSeconds: number
}

/**
 * How long a client address is locked out after its n-th failed login: nothing before maxFailures, then
 * base, 2×base, 4×base, ... up to maxSeconds. Exponential, so guessing passwords from one address stays slow
 * while a person who mistyped a few times waits seconds.
 */
export function lockoutSeconds (failures: number, p: LockoutPolicy): number {
  if (failures < p.maxFailures) return 0
  const exp = Math.min(failures - p.maxFailures, 30)
  return Math.min(p.baseSeconds * 2 ** exp, p.maxSeconds)
}

/** A 429 that says when to come back (src/plugins/rate-limits.ts turns it into a Retry-After header). */
export class RateLimitedError extends DomainError {
  constructor (readonly retryAfterSeconds: number, detail: string) { super('RATE_LIMITED', detail) }
}
