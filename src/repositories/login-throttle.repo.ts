import type { Db } from './db.js'

export interface ThrottlePolicy {
  /** failures (within the window) before a key is locked out; also the most attempts checked at once per key */
  maxFailures: number
  /** the first lockout; each further failure doubles it */
  baseSeconds: number
  maxSeconds: number
  /** failures older than this are forgotten */
  windowSeconds: number
}

// Counters of login attempts per key ("address:..." or "user:..."), in the database so that every instance sees
// the same ones; migration 20261201010000_login_attempts has the rules. Times are the database's clock unless the
// caller passes `now` (tests inject a clock).
export const loginThrottleRepo = (db: Db) => ({
  /** Claims one attempt on every key, or refuses it (claiming nothing) while any key is locked out or busy. */
  claim: async (keys: string[], p: ThrottlePolicy, now: Date | null): Promise<{ allowed: boolean, retryAfter: number }> => {
    const rows = await db.$queryRaw<Array<{ allowed: boolean, retry_after: number }>>`
      SELECT allowed, retry_after FROM login_attempt_claim(${keys}::text[], ${p.maxFailures}::int, ${p.windowSeconds}::int, ${now}::timestamptz)`
    return { allowed: rows[0].allowed, retryAfter: rows[0].retry_after }
  },

  /** Decides a claimed attempt: a failure counts (and may lock the keys out); a success resets `reset` (a username). */
  done: async (keys: string[], failed: boolean, reset: string | null, p: ThrottlePolicy, now: Date | null) => {
    // $executeRaw: Prisma cannot read a void result back
    await db.$executeRaw`
      SELECT login_attempt_done(${keys}::text[], ${failed}, ${reset}::text, ${p.maxFailures}::int, ${p.baseSeconds}::int,
        ${p.maxSeconds}::int, ${p.windowSeconds}::int, ${now}::timestamptz)`
  },
})
