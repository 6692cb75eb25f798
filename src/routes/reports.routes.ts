import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import type { Readable } from 'node:stream'
import { Type } from 'typebox'
import { CodeParams, problems } from '../schemas/common.js'
import {
  AccountExportQuerySchema, CirculationQuerySchema, CirculationReportSchema, FlowsQuerySchema, FlowsReportSchema,
  TransferExportQuerySchema,
} from '../schemas/reports.js'
import type { Principal } from '../domain/principal.js'
import { revocationOf } from '../auth/revocation.js'
import { answerFormat } from './format.js'

const asOfHeader = { 'x-as-of': { type: 'string', format: 'date-time', description: 'every movement committed before this instant is included (the read may have run on a replica)' } }
const jsonOrCsv = (schema: object, what: string) => ({
  description: `${what}; as CSV one row per ${what === 'the report' ? 'period plus a total row' : 'cell'}, hidden cells say "suppressed"`,
  headers: asOfHeader,
  content: { 'application/json': { schema }, 'text/csv': { schema: Type.String() } },
})
const csvOnly = (what: string) => ({
  description: `${what} (streamed CSV). The X-Export-Id header names this export: pass it as ?export= to get the other file with the same pseudonyms`,
  // @fastify/swagger wraps a response header's schema itself: give it the schema, not a header object
  headers: { 'x-export-id': { type: 'string', format: 'uuid', description: 'this export: pass it as ?export= for the other file' }, ...asOfHeader },
  content: { 'text/csv': { schema: Type.String() } },
})

const csv = (reply: FastifyReply, name: string, body: string | Readable) =>
  reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}.csv"`).send(body)

// a report's JSON comes serialized from where it was computed (src/reports/compute-tasks.ts): Fastify sends a
// string with a JSON content type as it is
const json = (reply: FastifyReply, text: string) => reply.type('application/json; charset=utf-8').send(text)

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { reports } = app.services

  // Fastify answers HEAD with the GET's handler: for an export that would make a new export (a salt kept in the
  // database) and read every row, for a body nobody receives. A HEAD checks what the GET would and records nothing.
  const exportHead = async (principal: Principal | null, code: string, q: { export?: string, from?: string, to?: string },
    file: 'transfers' | 'accounts', reply: FastifyReply) => {
    const r = await reports.checkExport(principal, code, q)
    if (r.exportId != null) void reply.header('x-export-id', r.exportId)
    return csv(reply, r.exportId == null ? file : `${file}-${r.exportId}`, '')
  }

  app.get('/v1/currencies/:code/reports/circulation', {
    config: { ownShare: true },
    preHandler: app.readBudget,
    schema: {
      tags: ['reports'],
      summary: 'Circulation metrics per day, week or month and for the whole range, with disclosure control (researchers and issuers)',
      params: CodeParams, querystring: CirculationQuerySchema,
      response: { 200: jsonOrCsv(CirculationReportSchema, 'the report'), ...problems(400, 401, 403, 404, 429) },
    },
  }, async (request, reply) => {
    const r = await reports.circulation(request.principal, request.params.code, { ...request.query, format: answerFormat(request, reply) })
    void reply.header('x-as-of', r.asOf)
    return 'csv' in r ? csv(reply, `circulation-${request.params.code.toUpperCase()}`, r.csv) : json(reply, r.json)
  })

  app.get('/v1/currencies/:code/reports/flows', {
    config: { ownShare: true },
    preHandler: app.readBudget,
    schema: {
      tags: ['reports'],
      summary: 'Volume of economic payments by payer group x payee group, by sector or postcode district (researchers and issuers)',
      params: CodeParams, querystring: FlowsQuerySchema,
      response: { 200: jsonOrCsv(FlowsReportSchema, 'the flows'), ...problems(400, 401, 403, 404, 429) },
    },
  }, async (request, reply) => {
    const r = await reports.flows(request.principal, request.params.code, { ...request.query, format: answerFormat(request, reply) })
    void reply.header('x-as-of', r.asOf)
    return 'csv' in r ? csv(reply, `flows-${request.params.code.toUpperCase()}`, r.csv) : json(reply, r.json)
  })

  app.get('/v1/currencies/:code/exports/transfers', {
    config: { ownShare: true },
    preHandler: app.readBudget,
    schema: {
      tags: ['reports'],
      summary: 'Pseudonymised transfers: id, timeset, transfer_subtype, source, target, weight, token_name, parent_id, reverses_id; or ?dialect=sarafu for the Sarafu data set\'s columns (researchers)',
      params: CodeParams, querystring: TransferExportQuerySchema,
      response: { 200: csvOnly('every transfer, oldest first'), ...problems(400, 401, 403, 404, 429) },
    },
  }, async (request, reply) => {
    if (request.method === 'HEAD') return await exportHead(request.principal, request.params.code, request.query, 'transfers', reply)
    // the caller's right is checked again before each further page: a token revoked meanwhile (a suspension, a
    // password change) cuts the file off, as it ends an event stream
    const principal = request.principal
    const allowed = async () => principal != null && await revocationOf(app.services, principal) == null
    const r = await reports.exportTransfers(principal, request.params.code, request.query, allowed)
    return csv(reply.header('x-export-id', r.exportId).header('x-as-of', r.asOf), `transfers-${r.exportId}`, r.csv)
  })

  app.get('/v1/currencies/:code/exports/accounts', {
    config: { ownShare: true },
    preHandler: app.readBudget,
    schema: {
      tags: ['reports'],
      summary: 'Pseudonymised, k-anonymous accounts: id, start, final_bal, area_name, area_type, held_roles, business_type, status; or ?dialect=sarafu for the Sarafu data set\'s columns (researchers)',
      params: CodeParams, querystring: AccountExportQuerySchema,
      response: { 200: csvOnly('every account'), ...problems(400, 401, 403, 404, 429) },
    },
  }, async (request, reply) => {
    if (request.method === 'HEAD') return await exportHead(request.principal, request.params.code, request.query, 'accounts', reply)
    const r = await reports.exportAccounts(request.principal, request.params.code, request.query)
    return csv(reply.header('x-export-id', r.exportId).header('x-as-of', r.asOf), `accounts-${r.exportId}`, r.csv)
  })
}
export default routes
