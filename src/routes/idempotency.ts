import type { FastifyRequest } from 'fastify'
import { createHash } from 'node:crypto'
import { DomainError } from '../domain/errors.js'
import type { Idempotency } from '../services/transfer.service.js'

/**
 * The request's Idempotency-Key (required by the route schema) and a hash of what it asks: method, route, path
 * parameters and body with keys sorted, so {"a":1,"b":2} and {"b":2,"a":1} count as the same request. `body`: what
 * the route counts as its body, where that is not what was sent (an optional body sent empty counts as none).
 */
export function idempotencyOf (request: FastifyRequest, body: unknown = request.body ?? null): Idempotency {
  const key = String(request.headers['idempotency-key'])
  return { key, requestHash: requestHash(request.method, request.routeOptions.url ?? '', request.params, body) }
}

/**
 * The hash of one request: a batch item hashes as the single payment it stands for, so the two share keys. The path
 * names its currency and ids in either case (a code is looked up without regard to case, a uuid is one in either),
 * so they are hashed in one case: a retry of /currencies/brs/... replays what /currencies/BRS/... posted instead of
 * being told its key was used for another request. The body is hashed as sent (keys sorted), as the API's
 * idempotency rules say.
 */
export function requestHash (method: string, routeUrl: string, params: unknown, body: unknown): string {
  return createHash('sha256').update(`${method} ${routeUrl}\n${canonical(inOneCase(params))}\n${canonical(body)}`).digest('base64url')
}

function inOneCase (params: unknown): unknown {
  if (params == null || typeof params !== 'object') return params
  const p = params as Record<string, unknown>
  return {
    ...p,
    ...(typeof p.code === 'string' ? { code: p.code.toUpperCase() } : {}),
    ...(typeof p.id === 'string' ? { id: p.id.toLowerCase() } : {}),
  }
}

/** Deeper than any body the API takes: a body past it is refused, where the recursion below would overflow the stack. */
const MAX_DEPTH = 64

function canonical (v: unknown, depth = 0): string {
  if (depth > MAX_DEPTH) {
    // a route without a body schema (a reversal, a payment request's cancel) hashes whatever JSON it is sent
    throw new DomainError('VALIDATION_FAILED', `the body nests deeper than ${MAX_DEPTH} levels`, [{ pointer: '', detail: `nests deeper than ${MAX_DEPTH} levels` }])
  }
  if (Array.isArray(v)) return `[${v.map(x => canonical(x, depth + 1)).join(',')}]`
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map(k => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k], depth + 1)}`).join(',')}}`
  }
  return JSON.stringify(v) ?? 'null'
}
