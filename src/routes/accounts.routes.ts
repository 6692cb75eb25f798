import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { IdParams, problems } from '../schemas/common.js'
import { AccountPatchSchema, AccountSchema, ParticipantSchema, StatementQuerySchema, StatementSchema } from '../schemas/ledger.js'
import { answerFormat } from './format.js'
import { requestMeta } from './request-meta.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { accounts, participants } = app.services

  app.get('/v1/participants/:id', {
    config: { scope: 'accounts:read' },
    schema: {
      tags: ['participants'], summary: 'A participant and its accounts (the participant itself, or an issuer)',
      params: IdParams, response: { 200: ParticipantSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (request) => await participants.get(request.principal, request.params.id))

  app.get('/v1/accounts/:id', {
    config: { scope: 'accounts:read' },
    schema: {
      tags: ['accounts'], summary: 'An account and its balance (owner or issuer)',
      params: IdParams, response: { 200: AccountSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (request) => await accounts.get(request.principal, request.params.id))

  app.patch('/v1/accounts/:id', {
    config: { audit: { action: 'account.update' } },
    schema: {
      tags: ['accounts'], summary: 'Freeze, close or reopen an account, or change its floor and ceiling (issuer); never a system account\'s (403)',
      params: IdParams, body: AccountPatchSchema, response: { 200: AccountSchema, ...problems(400, 401, 403, 404, 409, 413, 415, 422) },
    },
  }, async (request) => await accounts.update(request.principal, request.params.id, request.body, requestMeta(request)))

  app.get('/v1/accounts/:id/statement', {
    // a CSV statement is read on the read pool, within the caller's budget of expensive reads (not its share of the rest)
    config: { scope: 'statements:read', ownShare: (request) => answerFormat(request) === 'csv' },
    preHandler: async function (request, reply) { if (answerFormat(request) === 'csv') await app.readBudget.call(this, request, reply) },
    schema: {
      tags: ['accounts'],
      summary: 'Entries with their running balance, oldest first or ?order=newest (owner or issuer); ?format=csv for a spreadsheet',
      params: IdParams, querystring: StatementQuerySchema,
      response: {
        200: {
          description: 'the statement page; as CSV the next cursor is in the X-Next-Cursor header',
          content: { 'application/json': { schema: StatementSchema }, 'text/csv': { schema: Type.String() } },
        },
        ...problems(400, 401, 403, 404, 429),
      },
    },
  }, async (request, reply) => {
    const s = await accounts.statement(request.principal, request.params.id, { ...request.query, format: answerFormat(request, reply) })
    if (s.csv !== undefined) {
      if (s.nextCursor != null) void reply.header('x-next-cursor', s.nextCursor)
      // how fresh the CSV is: it may have been read on a replica
      void reply.header('x-as-of', s.asOf)
      return reply.type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="statement-${request.params.id}.csv"`)
        .send(s.csv)
    }
    return s
  })
}
export default routes
