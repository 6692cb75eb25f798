import fp from 'fastify-plugin'
import { webhookService } from '../services/webhook.service.js'
import { checkResolver, type AddressPolicy } from '../webhooks/address.js'
import { WebhookWorker } from '../webhooks/worker.js'

// Webhooks: the service (endpoints, delivery log) and, where WEBHOOK_DELIVERY is on, this instance's delivery
// worker, woken by the event hub's notifications (any instance's commits) and by its interval (retries).

export interface WebhooksOptions {
  policy: AddressPolicy
  deliver: boolean
  intervalMs: number
  timeoutMs: number
  giveUpHours: number
  disableAfterFailures: number
  disableAfterHours: number
  maxPerOwner: number
  /** CURRENCY_SHARE_PERCENT: the share of the webhook sends under way that one currency's may be */
  currencySharePercent: number
}

declare module 'fastify' {
  interface FastifyInstance {
    webhooks: { service: ReturnType<typeof webhookService>, worker: WebhookWorker | null }
  }
}

export default fp<WebhooksOptions>(async (app, opts) => {
  checkResolver(opts.policy)
  const worker = opts.deliver
    ? new WebhookWorker({
      pool: app.pool, log: app.log, policy: opts.policy, intervalMs: opts.intervalMs, timeoutMs: opts.timeoutMs,
      giveUpHours: opts.giveUpHours, disableAfterFailures: opts.disableAfterFailures, disableAfterHours: opts.disableAfterHours,
      currencySharePercent: opts.currencySharePercent,
    })
    : null
  const service = webhookService(app.pool, app.prisma, app.services.currencies, {
    policy: opts.policy, maxPerOwner: opts.maxPerOwner, kick: () => { worker?.kick() }, log: app.log,
  })
  app.decorate('webhooks', { service, worker })
  if (worker != null) {
    let off: (() => void) | null = null
    app.addHook('onReady', async () => {
      off = app.events.hub.onEvents(() => { worker.kick() })
      // listening is what makes any instance's events wake this worker at once; meanwhile the interval delivers
      app.events.hub.keepListening()
      worker.start()
    })
    app.addHook('onClose', async () => { off?.(); await worker.close() })
  }
}, { name: 'webhooks', dependencies: ['db', 'services', 'events'] })
