import { DomainError } from './errors.js'
import type { Principal } from './principal.js'

// Pure rules of access: API key scopes, audit actions and rows. (The login lockout lives in the database: migration
// 20261201010000_login_attempts.)

/** What an API key may do. A password login has every right of its role; an API key only its scopes. */
export const SCOPES = ['payments:write', 'redemptions:write', 'statements:read', 'accounts:read', 'requests:write'] as const
export type Scope = typeof SCOPES[number]
export const isScope = (s: string): s is Scope => (SCOPES as readonly string[]).includes(s)

/** Where a request came from, for the audit trail and the login throttle. */
export interface RequestMeta {
  clientAddress: string | null
  requestId: string | null
}
export const NO_META: RequestMeta = { clientAddress: null, requestId: null }

export const AUDIT_ACTIONS = [
  'currency.create', 'currency.time_zone', 'member.register', 'business.register', 'researcher.register', 'issuer.register',
  'account.update', 'payment.create', 'issuance.create', 'redemption.create', 'transfer.reverse',
  'auth.login', 'auth.api_key', 'api_key.create', 'api_key.revoke', 'login.suspend', 'login.reinstate', 'login.password', 'login.reset_code', 'login.password_reset', 'user.rename',
  'text.phone_register', 'text.phone_verify', 'text.phone_remove', 'text.pin_set', 'text.code_set',
  'notes.sale', 'notes.deposit', 'notes.buyback', 'notes.withdrawal', 'standing_order.create', 'standing_order.cancel', 'standing_order.end',
  'webhook.create', 'webhook.delete', 'webhook.retry', 'webhook.rotate_secret',
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

/**
 * What a caller may learn from a refusal. An account of another currency is outside the reach of everyone but the
 * platform issuer (who acts in every currency), so to them "that account is of another currency" would say that it
 * exists: they are told what an unknown account tells them. Applied to every problem the service sends (the error
 * handler) and to each batch item's.
 */
export function disclosed (err: DomainError, principal: Principal | null): DomainError {
  if (err.code === 'CURRENCY_MISMATCH' && principal?.role !== 'platform_issuer') return new DomainError('ACCOUNT_NOT_FOUND', 'account not found')
  return err
}

/** A 429 that says when to come back (src/plugins/rate-limits.ts turns it into a Retry-After header). */
export class RateLimitedError extends DomainError {
  constructor (readonly retryAfterSeconds: number, detail: string) { super('RATE_LIMITED', detail) }
}
