import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AUDIT_PAGE_DESCRIPTION, AuditAllQuerySchema, AuditPageSchema, AuditQuerySchema } from '../schemas/access.js'
import { CodeParams, paged, problems } from '../schemas/common.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { audit } = app.services

  app.get('/v1/currencies/:code/audit', {
    schema: {
      tags: ['access'],
      summary: 'The currency\'s audit trail, oldest first: issuer actions, logins, API keys (issuer, platform issuer)',
      description: AUDIT_PAGE_DESCRIPTION,
      params: CodeParams, querystring: AuditQuerySchema, response: { 200: AuditPageSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (request) => await audit.forCurrency(request.principal, request.params.code, paged(request.query)))

  app.get('/v1/audit', {
    schema: {
      tags: ['access'],
      summary: 'The whole audit trail, also events of no currency (platform logins, unknown usernames) (platform issuer)',
      description: AUDIT_PAGE_DESCRIPTION,
      querystring: AuditAllQuerySchema, response: { 200: AuditPageSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (request) => await audit.all(request.principal, paged(request.query)))
}
export default routes
