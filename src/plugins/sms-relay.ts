import fp from 'fastify-plugin'
import { outboxRelay, restGateway, type OutboxRelay, type RestGatewayOptions } from '../sms/gateway.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** the relay that sends queued texts through the configured gateway; null when none is configured */
    smsRelay: OutboxRelay | null
  }
}

// Sends the texts queued in sms_outbox through the real gateway (src/sms/gateway.ts), every intervalMs, when one
// is configured (SMS_ACCOUNT_SID, SMS_FROM, SMS_AUTH_TOKEN). Without one the texts stay queued, readable by issuers
// at GET /v1/sms/outbox. Any number of instances may run it: rows are claimed with SKIP LOCKED.
export default fp<{ gateway: RestGatewayOptions | null, intervalMs: number }>(async (app, opts) => {
  if (opts.gateway == null) {
    app.decorate('smsRelay', null)
    return
  }
  const relay = outboxRelay(app.pool, restGateway(opts.gateway))
  app.decorate('smsRelay', relay)
  let running: Promise<unknown> | null = null
  const timer = setInterval(() => {
    if (running != null) return
    running = relay.round()
      .then((r) => { if (r.sent + r.failed + r.retry > 0) app.log.info(r, 'texts handed to the gateway') })
      .catch((err: unknown) => { app.log.warn({ err }, 'text relay: the round failed; the next one retries') })
      .finally(() => { running = null })
  }, opts.intervalMs)
  timer.unref()
  app.addHook('onClose', async () => {
    clearInterval(timer)
    await running
  })
}, { name: 'sms-relay', dependencies: ['db'] })
