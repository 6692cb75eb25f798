import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { IdParams, IdempotencyHeaders, paged, problems } from '../schemas/common.js'
import {
  DeliveryListQuerySchema, DeliveryPageSchema, DeliveryParams, DeliverySchema, WebhookCreatedSchema, WebhookCreateSchema,
  WebhookListQuerySchema, WebhookPageSchema, WebhookRotatedSchema,
} from '../schemas/webhooks.js'
import { idempotencyOf } from './idempotency.js'
import { requestMeta } from './request-meta.js'

// Webhook endpoints (a business: its own accounts' events; an issuer: its currency's) and their delivery log.
// Managed with a login only (no API-key scope opens these routes). docs/shop.md has the format and a curl walk.
const routes: FastifyPluginAsyncTypebox = async (app) => {
  const svc = app.webhooks.service

  app.post('/v1/webhooks', {
    config: { audit: { action: 'webhook.create' } },
    schema: {
      tags: ['webhooks'],
      summary: 'Register a webhook endpoint (business: its accounts\' events; issuer: the currency\'s); the signing secret is shown once',
      body: WebhookCreateSchema, response: { 201: WebhookCreatedSchema, ...problems(400, 401, 403, 404, 413, 415, 422) },
    },
  }, async (request, reply) => reply.code(201).header('cache-control', 'no-store').send(await svc.create(request.principal, request.body, requestMeta(request))))

  app.get('/v1/webhooks', {
    schema: {
      tags: ['webhooks'], summary: 'The caller\'s webhook endpoints, oldest first, without their secrets',
      querystring: WebhookListQuerySchema, response: { 200: WebhookPageSchema, ...problems(400, 401, 403) },
    },
  }, async (request) => await svc.list(request.principal, paged(request.query)))

  app.delete('/v1/webhooks/:id', {
    config: { audit: { action: 'webhook.delete' } },
    schema: {
      tags: ['webhooks'], summary: 'Delete a webhook endpoint: nothing more is sent to it, pending deliveries are dropped',
      params: IdParams, response: { 204: Type.Null({ description: 'deleted' }), ...problems(400, 401, 403, 404, 413, 415) },
    },
  }, async (request, reply) => {
    await svc.remove(request.principal, request.params.id, requestMeta(request))
    return await reply.code(204).send(null)
  })

  app.post('/v1/webhooks/:id/secret', {
    config: { audit: { action: 'webhook.rotate_secret' } },
    schema: {
      tags: ['webhooks'],
      summary: 'Replace the endpoint\'s signing secret (shown once); the old one signs beside it for a day, so the receiver can change over; a retry with the same Idempotency-Key answers the same rotation',
      params: IdParams, headers: IdempotencyHeaders,
      response: { 200: WebhookRotatedSchema, ...problems(400, 401, 403, 404, 409, 413, 415, 422) },
    },
  }, async (request, reply) => {
    const r = await svc.rotateSecret(request.principal, request.params.id, idempotencyOf(request), requestMeta(request))
    return await reply.header('cache-control', 'no-store').header('idempotent-replayed', String(r.replayed)).send(r.webhook)
  })

  app.get('/v1/webhooks/:id/deliveries', {
    schema: {
      tags: ['webhooks'], summary: 'The endpoint\'s delivery log, newest first: event, attempts, last status code, latency and error',
      description: 'A delivered or failed delivery is kept for WEBHOOK_RETENTION_DAYS (30 unless the operator set otherwise) after its ' +
        'last attempt, then deleted (and no longer listed or retried); a pending one is kept until it is sent or fails.',
      params: IdParams, querystring: DeliveryListQuerySchema, response: { 200: DeliveryPageSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (request) => await svc.deliveries(request.principal, request.params.id, paged(request.query)))

  app.post('/v1/webhooks/:id/deliveries/:deliveryId/retry', {
    config: { audit: { action: 'webhook.retry' } },
    schema: {
      tags: ['webhooks'], summary: 'Send a delivery again now (any status); a disabled endpoint is enabled again; 409 while a send of it is under way',
      params: DeliveryParams, response: { 202: DeliverySchema, ...problems(400, 401, 403, 404, 409, 413, 415) },
    },
  }, async (request, reply) => reply.code(202).send(await svc.retry(request.principal, request.params.id, request.params.deliveryId, requestMeta(request))))
}
export default routes
