import type { Principal } from '../domain/principal.js'

/** The two caches that know which verified tokens have since died (src/services/login.service.ts, api-key.service.ts). */
export interface RevocationChecks {
  logins: { isRevoked: (p: Principal) => Promise<boolean> }
  apiKeys: { isActive: (id: string) => Promise<boolean> }
}

/**
 * Why a verified token no longer speaks for its caller, or null while it does: its API key revoked, its login (or
 * the participant it speaks for) suspended, or the token issued before its login's tokens were revoked. The one
 * check for every request (src/plugins/auth.ts) and for an open event stream before each delivery
 * (src/routes/events.routes.ts), so a caller's rights end at the same moment on both.
 */
export async function revocationOf (checks: RevocationChecks, p: Principal): Promise<string | null> {
  if (p.apiKeyId != null && !await checks.apiKeys.isActive(p.apiKeyId)) return 'the API key this token was issued for has been revoked'
  if (await checks.logins.isRevoked(p)) return 'this token was revoked: its login is suspended, or was since it was issued'
  return null
}
