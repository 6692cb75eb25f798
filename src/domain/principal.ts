// Who is acting. Every service function takes the principal explicitly, so access rules live in one place and
// a handler never reaches for ambient state.
import type { Scope } from './access.js'

export type Role = 'platform_issuer' | 'issuer' | 'researcher' | 'member' | 'business'

export interface Principal {
  /** app_user id (the token's subject); an API key's id for a token exchanged for an API key */
  userId: string
  role: Role
  /** the one currency this principal belongs to; null for the platform issuer, who acts in every currency */
  currencyId: string | null
  /** the member or business this login speaks for */
  participantId: string | null
  /** login name, for the audit trail */
  username?: string | null
  /** set for API-key principals only: what the key may do. Absent or null: every right of the role. */
  scopes?: Scope[] | null
  /** the API key this token was exchanged for; checked against revocation on every request */
  apiKeyId?: string | null
  /** when the caller's token was issued (seconds since the epoch), checked against its login's revocation */
  issuedAt?: number | null
  /**
   * When the credential behind the token was read (ms since the epoch, rounded down), on the database's clock: the
   * now() of the read of the password hash, or of the API key found active, so a revocation that commits after a
   * login read the old hash (dated by the same clock, after its commit) still covers the token, to the millisecond
   * (a token's iat has whole seconds), whatever the clocks of the instances involved. Carried in this service's own
   * tokens as `auth_ms`.
   */
  authAt?: number | null
}

export const isIssuerOf = (p: Principal | null, currencyId: string): boolean =>
  p != null && (p.role === 'platform_issuer' || (p.role === 'issuer' && p.currencyId === currencyId))

export const isParticipant = (p: Principal | null): p is Principal & { participantId: string } =>
  p != null && (p.role === 'member' || p.role === 'business') && p.participantId != null
