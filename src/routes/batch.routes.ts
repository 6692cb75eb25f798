import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyError } from 'fastify'
import type { DomainError } from '../domain/errors.js'
import { requirePrincipal } from '../plugins/auth.js'
import { holdUntilDone } from '../plugins/held-places.js'
import { validationProblem } from '../plugins/validation.js'
import { problemBody } from '../plugins/problem.js'
import { CodeParams, problems } from '../schemas/common.js'
import { BATCH_ITEM_MAX_FIELDS, BATCH_MAX_ITEMS, BatchCreateSchema, BatchResultSchema } from '../schemas/batch.js'
import { requestHash } from './idempotency.js'
import { requestMeta } from './request-meta.js'

export interface BatchRouteOptions { bodyLimit: number }

const PAYMENT_ROUTE = '/v1/currencies/:code/payments'

const routes: FastifyPluginAsyncTypebox<BatchRouteOptions> = async (app, opts) => {
  const { batches } = app.services

  app.post('/v1/currencies/:code/transfers/batch', {
    bodyLimit: opts.bodyLimit,
    // the same scope, audit and per-caller budget as POST .../payments (one batch counts as one request)
    config: { scope: 'payments:write', audit: { action: 'payment.create', issuersOnly: true }, ownShare: true },
    preHandler: app.limits.money,
    schema: {
      tags: ['transfers'],
      summary: 'Up to 1,000 payments in one request, each with its own idempotency key and result (or all-or-nothing with atomic)',
      params: CodeParams, body: BatchCreateSchema,
      response: { 200: BatchResultSchema, ...problems(400, 401, 403, 404, 409, 413, 415, 422, 429, 503) },
    },
    // A bad item fails only itself (below), so the handler sees validation failures instead of Fastify refusing the
    // whole request.
    attachValidation: true,
    // The body may be 4 MiB: parsing and checking that much costs up to a second or two of CPU. So a caller without
    // a token (401), and one that already has BATCH_PER_CALLER batches running or waiting (429), is refused before
    // its body is read (docs/api.md, "Errors in order of precedence"). The place is held until the batch's work is
    // over, also if its client hangs up (held-places.ts).
    onRequest: async (request, reply) => { holdUntilDone(request, reply, batches.admit(requirePrincipal(request))) },
    // The schema reports every error: a million empty items would cost seconds and a reply of hundreds of megabytes.
    // Too many items is refused before the schema looks at one, as the schema itself would refuse it.
    preValidation: async (request) => {
      const items = (request.body as { items?: unknown } | null)?.items
      if (Array.isArray(items) && items.length > BATCH_MAX_ITEMS) {
        throw validationProblem('body', [{ instancePath: '/items', keyword: 'maxItems', message: `must NOT have more than ${BATCH_MAX_ITEMS} items` }])
      }
      // So are items of far more fields than a payment has: 1,000 items of hundreds of unknown keys each would cost
      // seconds of checking and an answer of megabytes, one error per key. They are no payment: the whole request
      // is refused, naming the first such item.
      const bloated = Array.isArray(items) ? items.findIndex(x => x != null && typeof x === 'object' && Object.keys(x).length > BATCH_ITEM_MAX_FIELDS) : -1
      if (bloated >= 0) {
        throw validationProblem('body', [{ instancePath: `/items/${bloated}`, keyword: 'maxProperties', message: `must NOT have more than ${BATCH_ITEM_MAX_FIELDS} properties` }])
      }
    },
  }, async (request) => {
    const refused = refusedItems(request.validationError)
    // Each item hashes as the single payment it stands for: a key used with POST .../payments replays here too.
    const hashes = request.body.items.map((item, i) => {
      if (refused.has(i)) return ''
      const { idempotencyKey, ...payment } = item
      return requestHash('POST', PAYMENT_ROUTE, request.params, payment)
    })
    const r = await batches.payBatch(request.principal, request.params.code, request.body, hashes, requestMeta(request), refused)
    let posted = 0; let replayed = 0; let failed = 0
    const items = r.items.map((x) => {
      if (x.ok) {
        if (x.replayed) replayed++; else posted++
        return { index: x.index, idempotencyKey: x.idempotencyKey, status: 201, replayed: x.replayed, transfer: x.transfer }
      }
      failed++
      return {
        index: x.index, idempotencyKey: x.idempotencyKey, status: x.error.status, replayed: false,
        problem: problemBody(request, x.error, `${request.url}#/items/${x.index}`),
      }
    })
    return { atomic: r.atomic, posted, replayed, failed, items }
  })
}
/**
 * The items that failed the body schema, each with its own problem (pointers into the request, "/items/3/reference").
 * A failure outside the items (the envelope, the path, more than 1,000 items) fails the whole request as usual.
 */
function refusedItems (err: (Error & { validation?: FastifyError['validation'], validationContext?: string }) | undefined): Map<number, DomainError> {
  const out = new Map<number, DomainError>()
  if (err == null) return out
  if (err.validationContext !== 'body' || err.validation == null) throw err
  const item = /^\/items\/(\d+)(\/|$)/
  if (err.validation.some(v => !item.test(v.instancePath ?? ''))) throw err
  const byItem = new Map<number, NonNullable<typeof err.validation>>()
  for (const v of err.validation) {
    const i = Number(item.exec(v.instancePath ?? '')![1])
    let errors = byItem.get(i)
    if (errors == null) { errors = []; byItem.set(i, errors) }
    errors.push(v)
  }
  for (const [i, errors] of byItem) out.set(i, validationProblem('body', errors, `item ${i}`))
  return out
}

export default routes
