import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { RESET_CODE_DESCRIPTION, ResetCodeSchema, StaffCreatedSchema, StaffCreateSchema, StaffListQuerySchema, StaffPageSchema, StaffSuspensionSchema, SuspensionCreateSchema } from '../schemas/access.js'
import { CodeParams, IdParams, paged, problems } from '../schemas/common.js'
import { requestMeta } from './request-meta.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { staff, logins } = app.services

  app.post('/v1/currencies/:code/researchers', {
    config: { audit: { action: 'researcher.register' } },
    schema: {
      tags: ['access'], summary: 'Register a researcher login for a currency: reports and exports only (issuer)',
      params: CodeParams, body: StaffCreateSchema, response: { 201: StaffCreatedSchema, ...problems(400, 401, 403, 404, 409, 413, 415, 422) },
    },
  }, async (request, reply) =>
    reply.code(201).send(await staff.registerResearcher(request.principal, request.params.code, request.body, requestMeta(request))))

  app.post('/v1/currencies/:code/issuers', {
    config: { audit: { action: 'issuer.register' } },
    schema: {
      tags: ['access'], summary: 'Register issuer staff for one currency (platform issuer)',
      params: CodeParams, body: StaffCreateSchema, response: { 201: StaffCreatedSchema, ...problems(400, 401, 403, 404, 409, 413, 415, 422) },
    },
  }, async (request, reply) =>
    reply.code(201).send(await staff.registerIssuer(request.principal, request.params.code, request.body, requestMeta(request))))

  app.get('/v1/currencies/:code/staff', {
    schema: {
      tags: ['access'], summary: 'The currency\'s staff logins, issuer staff and researchers, oldest first, with whether each is suspended (issuer)',
      params: CodeParams, querystring: StaffListQuerySchema, response: { 200: StaffPageSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (request) => await staff.list(request.principal, request.params.code, paged(request.query)))

  app.put('/v1/staff/:id/suspension', {
    config: { audit: { action: 'login.suspend' } },
    schema: {
      tags: ['access'],
      summary: 'Suspend a staff login: no new tokens, its tokens stop working at once (a researcher: an issuer of its currency; issuer staff: the platform issuer)',
      description: 'For a researcher whose study has ended or a login whose password may have leaked. Suspending a suspended login ' +
        'changes nothing. The instance that suspends refuses the login\'s tokens at once; other instances within LOGIN_CHECK_MS. ' +
        'Nobody suspends their own login, and the platform issuer\'s is no one\'s to suspend (404).',
      params: IdParams, body: SuspensionCreateSchema,
      response: { 200: StaffSuspensionSchema, ...problems(400, 401, 403, 404, 413, 415, 422) },
    },
  }, async (request) => await logins.suspendStaff(request.principal, request.params.id, request.body, requestMeta(request)))

  app.delete('/v1/staff/:id/suspension', {
    config: { audit: { action: 'login.reinstate' } },
    schema: {
      tags: ['access'],
      summary: 'Lift the suspension of a staff login; tokens issued before it stay dead (as for suspending it)',
      params: IdParams, response: { 200: StaffSuspensionSchema, ...problems(400, 401, 403, 404, 413, 415) },
    },
  }, async (request) => await logins.reinstateStaff(request.principal, request.params.id, requestMeta(request)))

  app.post('/v1/staff/:id/password-reset', {
    config: { audit: { action: 'login.reset_code' } },
    schema: {
      tags: ['access'],
      summary: 'A one-time code with which a staff login that forgot its password sets a new one (who may: as for its suspension)',
      description: RESET_CODE_DESCRIPTION,
      params: IdParams, response: { 201: ResetCodeSchema, ...problems(400, 401, 403, 404, 413, 415) },
    },
  }, async (request, reply) => await reply.code(201).header('cache-control', 'no-store')
    .send(await logins.staffResetCode(request.principal, request.params.id, requestMeta(request))))
}
export default routes
