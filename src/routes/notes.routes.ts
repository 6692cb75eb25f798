import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { Type, type TSchema } from 'typebox'
import { CodeParams, IdempotencyHeaders, problems } from '../schemas/common.js'
import { TransferSchema } from '../schemas/ledger.js'
import {
  NoteBuybackSchema, NoteDepositSchema, NoteSaleSchema, NoteWithdrawalSchema, ReserveQuerySchema, ReserveSchema,
} from '../schemas/notes.js'
import type { TransferView } from '../services/transfer.service.js'
import { revocationOf } from '../auth/revocation.js'
import { answerFormat } from './format.js'
import { idempotencyOf } from './idempotency.js'
import { requestMeta } from './request-meta.js'

// Paper notes recorded by exchange points (issuer staff), and the sterling reserve (docs/scheme-operations.md).

const moneyProblems = problems(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
const created = (reply: FastifyReply, r: { transfer: TransferView, replayed: boolean }) =>
  reply.code(201).header('idempotent-replayed', String(r.replayed)).send(r.transfer)

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { notes } = app.services
  const schema = <B extends TSchema>(summary: string, body: B) => ({
    tags: ['notes'], summary, params: CodeParams, headers: IdempotencyHeaders, body, response: { 201: TransferSchema, ...moneyProblems },
  })

  app.post('/v1/currencies/:code/notes/sales', {
    config: { audit: { action: 'notes.sale' } }, preHandler: app.limits.money,
    schema: schema('Record paper notes sold for sterling: paper circulation and the reserve grow (issuer staff)', NoteSaleSchema),
  }, async (request, reply) =>
    created(reply, await notes.sell(request.principal, request.params.code, request.body, idempotencyOf(request), requestMeta(request))))

  app.post('/v1/currencies/:code/notes/deposits', {
    config: { audit: { action: 'notes.deposit' } }, preHandler: app.limits.money,
    schema: schema('Record paper notes paid into an account: paper circulation shrinks, the account grows (issuer staff)', NoteDepositSchema),
  }, async (request, reply) =>
    created(reply, await notes.deposit(request.principal, request.params.code, request.body, idempotencyOf(request), requestMeta(request))))

  app.post('/v1/currencies/:code/notes/buybacks', {
    config: { audit: { action: 'notes.buyback' } }, preHandler: app.limits.money,
    schema: schema('Record a business\'s paper notes bought back for sterling, the redemption fee withheld (issuer staff)', NoteBuybackSchema),
  }, async (request, reply) =>
    created(reply, await notes.buyback(request.principal, request.params.code, request.body, idempotencyOf(request), requestMeta(request))))

  app.post('/v1/currencies/:code/notes/withdrawals', {
    config: { audit: { action: 'notes.withdrawal' } }, preHandler: app.limits.money,
    schema: schema('Record worn or lost paper notes taken out of circulation; their sterling leaves the reserve (issuer staff)', NoteWithdrawalSchema),
  }, async (request, reply) =>
    created(reply, await notes.withdraw(request.principal, request.params.code, request.body, idempotencyOf(request), requestMeta(request))))

  app.get('/v1/currencies/:code/reserve', {
    config: { ownShare: true },
    preHandler: app.readBudget,
    schema: {
      tags: ['notes'],
      summary: 'The sterling reserve against electronic and paper circulation at a time; the difference is always 0. As CSV: the reconciliation, every sterling movement with its running total (issuers; researchers read the JSON totals)',
      params: CodeParams, querystring: ReserveQuerySchema,
      response: {
        200: {
          description: 'the reserve; as CSV (format=csv, streamed) one row per sterling movement: time, transfer_id, kind, sterling_reference, amount, running_total',
          content: { 'application/json': { schema: ReserveSchema }, 'text/csv': { schema: Type.String() } },
        },
        ...problems(400, 401, 403, 404, 429),
      },
    },
  }, async (request, reply) => {
    const r = await notes.reserve(request.principal, request.params.code, { ...request.query, format: answerFormat(request, reply) })
    if ('csv' in r) {
      // Fastify answers HEAD with this handler and would drain a stream, reading every movement for a body nobody
      // receives: a HEAD has had the checks above and gets the headers only. Streamed: the reply's type, written
      // for the JSON and the CSV's schema, does not know a stream.
      return await (reply as FastifyReply).type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="reserve-${request.params.code.toUpperCase()}.csv"`)
        // the caller's right is checked again before each further page: a token revoked meanwhile cuts the file off
        .send(request.method === 'HEAD' ? '' : r.csv(async () => request.principal != null && await revocationOf(app.services, request.principal) == null))
    }
    return r.json
  })
}
export default routes
