import type { FastifyRequest } from 'fastify'
import { createHash } from 'node:crypto'
import type { Idempotency } from '../services/transfer.service.js'

/**
 * The request's Idempotency-Key (required by the route schema) and a hash of what it asks: method, route, path
 * parameters and body with keys sorted, so {"a":1,"b":2} and {"b":2,"a":1} count as the same request.
 */
export function idempotencyOf (request: FastifyRequest): Idempotency {
  const key = String(request.headers['idempotency-key'])
  return { key, requestHash: requestHash(request.method, request.routeOptions.url ?? '', request.params, request.body ?? null) }
}

/** The hash of one request: a batch item hashes as the single payment it stands for, so the two share keys. */
export function requestHash (method: string, routeUrl: string, params: unknown, body: unknown): string {
  return createHash('sha256').update(`${method} ${routeUrl}\n${canonical(params)}\n${canonical(body)}`).digest('base64url')
}

function canonical (v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map(k => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(v) ?? 'null'
}
