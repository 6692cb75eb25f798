import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { StaffCreatedSchema, StaffCreateSchema } from '../schemas/access.js'
import { CodeParams, problems } from '../schemas/common.js'
import { requestMeta } from './request-meta.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { staff } = app.services

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
}
export default routes
