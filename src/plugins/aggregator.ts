import fp from 'fastify-plugin'
import { maintain } from '../reports/aggregate.js'

// Keeps the circulation aggregates close behind the ledger: every interval, fold queued transfers into the
// buckets and recompute the composites reports asked for recently (src/reports/aggregate.ts). Reports catch up
// themselves before they read, so this only keeps that catch-up short. Any number of instances may run it: the aggregator takes an advisory lock.
export default fp<{ intervalMs: number }>(async (app, opts) => {
  if (opts.intervalMs <= 0) return
  let running: Promise<unknown> | null = null
  const timer = setInterval(() => {
    if (running != null) return
    running = maintain(app.pool)
      .then(() => { app.services.reports.caughtUp() })
      .catch((err: unknown) => { app.log.warn({ err }, 'circulation aggregates: catch-up failed; the next run retries') })
      .finally(() => { running = null })
  }, opts.intervalMs)
  timer.unref()
  app.addHook('onClose', async () => {
    clearInterval(timer)
    await running
  })
}, { name: 'aggregator', dependencies: ['db', 'services'] })
