import type { FastifyRequest } from 'fastify'
import { createHash } from 'node:crypto'
import type { Idempotency } from '../services/transfer.service.js'

/**
 * The request's Idempotency-Key (required by the route schema) and a hash of what it asks: method, route, path
 * parameters and body with keys sorted, so {"a":1,"b":2} and {"b":2,"a":1} count as the same request.
 */
export function idempotencyOf (request: FastifyRequest): Idempotency {
  const key = String(request.headers['idempotency-key'])
  const requestHash = createHash('sha256')
    .update(`${request.method} ${request.routeOptions.url ?? ''}\n${canonical(request.params)}\n${canonical(request.body ?? null)}`)
    .digest('base64url')
  return { key, requestHash }
}

function canonical (v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map(k => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(v) ?? 'null'
}
