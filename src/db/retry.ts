import { setTimeout as sleep } from 'node:timers/promises'

/** SQLSTATEs worth retrying inside the service: serialization failure, deadlock. */
export const RETRYABLE = new Set(['40001', '40P01'])

export const isRetryable = (err: unknown): boolean => RETRYABLE.has((err as { code?: string } | null)?.code ?? '')

/**
 * Runs fn, again after a short random pause when it failed with a deadlock or a serialization failure (which
 * roll the transaction back, so running it again is safe), at most `attempts` times in all. Anything else, and
 * the last failure, is thrown as it came. The one retry loop of the service: a client never sees a 500 for a
 * conflict it could not have caused.
 */
export async function withRetry<T> (fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      if (!isRetryable(err) || attempt >= attempts) throw err
      await sleep(5 * attempt + Math.random() * 10 * attempt)
    }
  }
}
