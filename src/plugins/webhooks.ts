import fp from 'fastify-plugin'
import { webhookService } from '../services/webhook.service.js'
import { checkResolver, type AddressPolicy } from '../webhooks/address.js'
import { forgetWebhookHistory, PRUNE_EVERY_MS } from '../webhooks/retention.js'
import { WebhookWorker } from '../webhooks/worker.js'

// Webhooks: the service (endpoints, delivery log) and, where WEBHOOK_DELIVERY is on, this instance's delivery
// worker, woken by the event hub's notifications (any instance's commits) and by its interval (retries). An
// instance that delivers also deletes the history past WEBHOOK_RETENTION_DAYS, at start and every PRUNE_EVERY_MS.

export interface WebhooksOptions {
  policy: AddressPolicy
  deliver: boolean
  intervalMs: number
  timeoutMs: number
  giveUpHours: number
  disableAfterFailures: number
  disableAfterHours: number
  maxPerOwner: number
  /** WEBHOOK_RETENTION_DAYS: finished deliveries and old rotation keys are deleted after it (retention.ts) */
  retentionDays: number
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

    let pruning: Promise<unknown> | null = null
    const closing = new AbortController()
    const prune = () => {
      if (pruning != null || closing.signal.aborted) return
      pruning = forgetWebhookHistory(app.pool, new Date(), opts.retentionDays, closing.signal)
        .then((n) => { if (n.deliveries + n.rotations > 0) app.log.info(n, 'webhooks: history past WEBHOOK_RETENTION_DAYS deleted') })
        .catch((err: unknown) => { app.log.warn({ err }, 'webhooks: deleting old history failed; the next run retries') })
        .finally(() => { pruning = null })
    }
    const timer = setInterval(prune, PRUNE_EVERY_MS)
    timer.unref()
    app.addHook('onReady', async () => { prune() })
    app.addHook('onClose', async () => { clearInterval(timer); closing.abort(); await pruning })
  }
}, { name: 'webhooks', dependencies: ['db', 'services', 'events'] })
