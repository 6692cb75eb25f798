import type { ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import { EventHub } from '../events/hub.js'
import { PerCaller } from '../domain/per-caller.js'

// The instance's event hub (src/events/hub.ts) and its open event streams. The hub connects on first use (a
// stream or the webhook worker), so an instance nobody listens to holds no extra connection. On close, every open
// stream is ended first (clients reconnect elsewhere with Last-Event-ID), then the hub.

export interface EventsOptions {
  databaseUrl: string
  heartbeatMs: number
  streamMaxSeconds: number
  maxStreams: number
  streamsPerCaller: number
  /** streams one currency's callers may hold open on this instance (CURRENCY_SHARE_PERCENT of maxStreams); default all */
  streamsPerCurrency?: number
}

declare module 'fastify' {
  interface FastifyInstance {
    events: {
      hub: EventHub
      options: EventsOptions
      /** open streams: their responses with what ends each, and how many each caller holds */
      streams: Map<ServerResponse, () => void>
      perCaller: PerCaller
      /** how many each currency's callers hold (domain/per-caller.ts, callerCurrency) */
      perCurrency: PerCaller
    }
  }
}

export default fp<EventsOptions>(async (app, opts) => {
  const hub = new EventHub({ databaseUrl: opts.databaseUrl, pool: app.pool, log: app.log })
  const streams = new Map<ServerResponse, () => void>()
  app.decorate('events', { hub, options: opts, streams, perCaller: new PerCaller(), perCurrency: new PerCaller() })
  app.addHook('preClose', async () => {
    for (const stop of [...streams.values()]) stop()
    streams.clear()
  })
  app.addHook('onClose', async () => { await hub.close() })
}, { name: 'events', dependencies: ['db'] })
