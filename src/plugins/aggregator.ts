import fp from 'fastify-plugin'
import { maintain } from '../reports/aggregate.js'

// Keeps the circulation aggregates close behind the ledger: every interval, fold queued transfers into the
// buckets and recompute the composites reports asked for recently (src/reports/aggregate.ts). Reports catch up
// themselves before they read, so this only keeps that catch-up short. Any number of instances may run it: the aggregator takes an advisory lock.
// Each run also deletes the research exports past RESEARCH_EXPORT_RETENTION_HOURS (their salts undo pseudonyms).
export default fp<{ intervalMs: number, exportRetentionHours: number, clock?: () => Date }>(async (app, opts) => {
  if (opts.intervalMs <= 0) return
  const exports = { clock: opts.clock ?? (() => new Date()), hours: opts.exportRetentionHours }
  let running: Promise<unknown> | null = null
  const timer = setInterval(() => {
    if (running != null) return
    running = maintain(app.pool, exports)
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
