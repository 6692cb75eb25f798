import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { IdParams, IdempotencyHeaders, paged, problems } from '../schemas/common.js'
import {
  AccountOrderParams, OccurrencePageSchema, OccurrenceQuerySchema, StandingOrderCreateSchema, StandingOrderListQuerySchema,
  StandingOrderPageSchema, StandingOrderSchema,
} from '../schemas/standing-orders.js'
import { idempotencyOf } from './idempotency.js'
import { requestMeta } from './request-meta.js'

// Standing orders: payments on a schedule, made by the scheduler in the service (docs/scheme-operations.md).

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { standingOrders } = app.services

  app.post('/v1/accounts/:id/standing-orders', {
    config: { audit: { action: 'standing_order.create', issuersOnly: true } },
    schema: {
      tags: ['standing-orders'], summary: 'Set up a standing order paying from this account every week or month (owner or issuer)',
      params: IdParams, headers: IdempotencyHeaders, body: StandingOrderCreateSchema,
      response: { 201: StandingOrderSchema, ...problems(400, 401, 403, 404, 409, 413, 415, 422) },
    },
  }, async (request, reply) => {
    const r = await standingOrders.create(request.principal, request.params.id, request.body, idempotencyOf(request), requestMeta(request))
    return await reply.code(201).header('idempotent-replayed', String(r.replayed)).send(r.order)
  })

  app.get('/v1/accounts/:id/standing-orders', {
    schema: {
      tags: ['standing-orders'], summary: 'The account\'s standing orders, oldest first (owner or issuer)',
      params: IdParams, querystring: StandingOrderListQuerySchema, response: { 200: StandingOrderPageSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (request) => await standingOrders.list(request.principal, request.params.id, paged(request.query)))

  app.get('/v1/accounts/:id/standing-orders/:orderId', {
    schema: {
      tags: ['standing-orders'], summary: 'One standing order (owner or issuer)',
      params: AccountOrderParams, response: { 200: StandingOrderSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (request) => await standingOrders.get(request.principal, request.params.id, request.params.orderId))

  app.delete('/v1/accounts/:id/standing-orders/:orderId', {
    config: { audit: { action: 'standing_order.cancel', issuersOnly: true } },
    schema: {
      tags: ['standing-orders'], summary: 'Cancel a standing order; occurrences not yet paid are cancelled with it (owner or issuer); 409 once it has finished',
      params: AccountOrderParams, response: { 200: StandingOrderSchema, ...problems(400, 401, 403, 404, 409, 413, 415) },
    },
  }, async (request) => await standingOrders.cancel(request.principal, request.params.id, request.params.orderId, requestMeta(request)))

  app.get('/v1/standing-orders/:id/occurrences', {
    schema: {
      tags: ['standing-orders'], summary: 'Each due date of a standing order, oldest first: paid with its transfer, or failed with its reason (owner or issuer)',
      params: IdParams, querystring: OccurrenceQuerySchema, response: { 200: OccurrencePageSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (request) => await standingOrders.occurrences(request.principal, request.params.id, paged(request.query)))
}
export default routes
