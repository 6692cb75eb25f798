import underPressure from '@fastify/under-pressure'
import fp from 'fastify-plugin'

// Load shedding: when the event loop lags past the limit, new requests are refused at once with 503 problem+json
// (and Retry-After) instead of queueing behind work that is already late. The database side is bounded too: the
// pool's acquire timeout, the payment coalescer's and the batch queue's limits all shed with 503.
export default fp<{ maxEventLoopDelayMs: number }>(async (app, opts) => {
  if (opts.maxEventLoopDelayMs <= 0) return
  await app.register(underPressure, { maxEventLoopDelay: opts.maxEventLoopDelayMs, retryAfter: 1 })
}, { name: 'pressure' })
