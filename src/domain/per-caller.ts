import type { Principal } from './principal.js'

/**
 * How many of a shared thing (event streams, batches in line, long-polls) each caller holds right now, so that one
 * caller cannot take them all. A caller's count is kept only while it holds any.
 */
export class PerCaller {
  private readonly held = new Map<string, number>()
  /** callers holding any */
  get size (): number { return this.held.size }
  /** what all callers hold */
  get total (): number { let n = 0; for (const x of this.held.values()) n += x; return n }
  of (caller: string): number { return this.held.get(caller) ?? 0 }
  take (caller: string): void { this.held.set(caller, this.of(caller) + 1) }
  give (caller: string): void {
    const n = this.of(caller) - 1
    if (n <= 0) this.held.delete(caller)
    else this.held.set(caller, n)
  }
}

/** A participant with all its logins and API keys, or a staff login: whose share a request counts against. */
export const participantOrLogin = (p: Principal): string => p.participantId ?? p.userId

/**
 * The currency whose share of an instance a request counts against: the caller's own (the platform issuer's
 * requests are counted apart). A currency's issuer registers as many members and businesses as it likes, each with
 * a caller's share of its own, so bounds per caller alone would let one currency's participants take all of an
 * instance's event streams, batch places or long-polls, and another currency's callers would get none.
 */
export const callerCurrency = (p: Pick<Principal, 'currencyId'>): string => p.currencyId ?? 'platform'

/** What one currency may hold of an instance's `bound`: CURRENCY_SHARE_PERCENT of it, at least one. */
export const currencyShare = (bound: number, percent: number): number => Math.max(1, Math.floor(bound * percent / 100))
