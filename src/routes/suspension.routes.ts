import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { RESET_CODE_DESCRIPTION, ResetCodeSchema, SuspensionCreateSchema, SuspensionSchema } from '../schemas/access.js'
import { IdParams, problems } from '../schemas/common.js'
import { requestMeta } from './request-meta.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { logins } = app.services

  app.put('/v1/participants/:id/suspension', {
    config: { audit: { action: 'login.suspend' } },
    schema: {
      tags: ['access'],
      summary: 'Suspend a member\'s or business\'s login: no new tokens, its tokens and its API keys stop working at once, its webhooks are sent nothing until it is lifted (issuer)',
      description: 'Suspending a suspended login changes nothing. The instance that suspends refuses the login\'s tokens at once; ' +
        'other instances within LOGIN_CHECK_MS. The participant\'s accounts are untouched (freeze them with PATCH /v1/accounts/{id}).',
      params: IdParams, body: SuspensionCreateSchema,
      response: { 200: SuspensionSchema, ...problems(400, 401, 403, 404, 413, 415, 422) },
    },
  }, async (request) => await logins.suspend(request.principal, request.params.id, request.body, requestMeta(request)))

  app.delete('/v1/participants/:id/suspension', {
    config: { audit: { action: 'login.reinstate' } },
    schema: {
      tags: ['access'],
      summary: 'Lift the suspension of a participant\'s login (issuer)',
      params: IdParams, response: { 200: SuspensionSchema, ...problems(400, 401, 403, 404, 413, 415) },
    },
  }, async (request) => await logins.reinstate(request.principal, request.params.id, requestMeta(request)))

  app.post('/v1/participants/:id/password-reset', {
    config: { audit: { action: 'login.reset_code' } },
    schema: {
      tags: ['access'],
      summary: 'A one-time code with which a member or business that forgot its password sets a new one (issuer)',
      description: RESET_CODE_DESCRIPTION,
      params: IdParams, response: { 201: ResetCodeSchema, ...problems(400, 401, 403, 404, 413, 415) },
    },
  }, async (request, reply) => await reply.code(201).header('cache-control', 'no-store')
    .send(await logins.participantResetCode(request.principal, request.params.id, requestMeta(request))))
}
export default routes
