import fp from 'fastify-plugin'
import { standingOrderScheduler, type StandingOrderScheduler, type TickSummary } from '../scheduler/standing-orders.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The standing orders' scheduler of this instance (src/scheduler/standing-orders.ts). */
    scheduler: StandingOrderScheduler & {
      /** Resolves when the look running now (the one at start-up, say) has finished; at once when none runs. */
      idle: () => Promise<void>
    }
  }
}

export interface SchedulerPluginOptions {
  /** SCHEDULER_INTERVAL_MS: 0 runs no timer (a look happens only when tick() is called) */
  intervalMs: number
  /** the time the scheduler reads (tests inject one) */
  clock?: () => Date
}

// Looks for due standing-order payments once when the service is ready, then every interval. A look that is still
// running when the timer fires again is not doubled; on close the timer stops and the running look is awaited.
export default fp<SchedulerPluginOptions>(async (app, opts) => {
  const scheduler = standingOrderScheduler(app.pool, app.services.currencies, { clock: opts.clock, log: app.log })
  let running: Promise<TickSummary> | null = null
  const look = () => {
    if (running != null) return
    running = scheduler.tick()
      .then((s) => {
        if (s.paid + s.retrying + s.failed + s.errors > 0) app.log.info({ standingOrders: s }, 'standing orders: look done')
        return s
      })
      .finally(() => { running = null })
  }
  app.decorate('scheduler', { ...scheduler, idle: async () => { await running } })
  if (opts.intervalMs <= 0) return
  let timer: NodeJS.Timeout | null = null
  app.addHook('onReady', async () => {
    look()
    timer = setInterval(look, opts.intervalMs)
    timer.unref()
  })
  app.addHook('onClose', async () => {
    if (timer != null) clearInterval(timer)
    await running
  })
}, { name: 'scheduler', dependencies: ['db', 'services'] })
