import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ApiKeyCreatedSchema, ApiKeyCreateSchema, ApiKeyListQuerySchema, ApiKeyPageSchema } from '../schemas/access.js'
import { IdParams, paged, problems } from '../schemas/common.js'
import { requestMeta } from './request-meta.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { apiKeys } = app.services

  app.post('/v1/api-keys', {
    config: { audit: { action: 'api_key.create' } },
    schema: {
      tags: ['access'], summary: 'Create an API key for an integration (business, with a password login); the key is shown once',
      body: ApiKeyCreateSchema, response: { 201: ApiKeyCreatedSchema, ...problems(400, 401, 403, 409, 413, 415, 422) },
    },
  }, async (request, reply) =>
    reply.code(201).header('cache-control', 'no-store').send(await apiKeys.create(request.principal, request.body, requestMeta(request))))

  app.get('/v1/api-keys', {
    schema: {
      tags: ['access'], summary: 'The business\'s API keys, oldest first, without the keys themselves (business)',
      querystring: ApiKeyListQuerySchema, response: { 200: ApiKeyPageSchema, ...problems(400, 401, 403) },
    },
  }, async (request) => await apiKeys.list(request.principal, paged(request.query)))

  app.delete('/v1/api-keys/:id', {
    config: { audit: { action: 'api_key.revoke' } },
    schema: {
      tags: ['access'], summary: 'Revoke an API key: it gets no more tokens, and tokens it already got stop working (business)',
      params: IdParams, response: { 204: Type.Null({ description: 'revoked (also when it already was)' }), ...problems(400, 401, 403, 404, 413, 415) },
    },
  }, async (request, reply) => {
    await apiKeys.revoke(request.principal, request.params.id, requestMeta(request))
    return await reply.code(204).send(null)
  })
}
export default routes
