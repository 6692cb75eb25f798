import type { Db } from './db.js'

// Times come from the database clock only, so instances with skewed clocks agree on a lockout.
export const loginThrottleRepo = (db: Db) => ({
  /** Whole seconds until the address may try again; 0 when it is not locked out. */
  lockedFor: async (client: string): Promise<number> => {
    const rows = await db.$queryRaw<Array<{ s: number }>>`
      SELECT ceil(extract(epoch FROM locked_until - now()))::int AS s
        FROM login_throttle WHERE client = ${client} AND locked_until > now()`
    return rows[0]?.s ?? 0
  },

  /** Counts a failure (forgetting failures older than the window) and returns how many there are now. */
  recordFailure: async (client: string, windowSeconds: number): Promise<number> => {
    const rows = await db.$queryRaw<Array<{ failures: number }>>`
      INSERT INTO login_throttle AS t (client, failures, last_failure_at) VALUES (${client}, 1, now())
      ON CONFLICT (client) DO UPDATE SET
        failures = CASE WHEN t.last_failure_at < now() - make_interval(secs => ${windowSeconds}::int) THEN 1 ELSE t.failures + 1 END,
        last_failure_at = now()
      RETURNING failures`
    return rows[0].failures
  },

  /** Locks the address out for this long from now (never shortening a longer lockout already running). */
  lock: async (client: string, seconds: number) => {
    await db.$executeRaw`
      UPDATE login_throttle SET locked_until = GREATEST(locked_until, now() + make_interval(secs => ${seconds}::int))
       WHERE client = ${client}`
  },
})
