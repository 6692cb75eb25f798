import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { CodeParams, IdParams, IdempotencyHeaders, paged, problems } from '../schemas/common.js'
import {
  IssuanceCreateSchema, PaymentCreateSchema, RedemptionCreateSchema, ReversalCreateSchema, TransferPageSchema, TransferSchema, TRANSFER_SEARCH_DESCRIPTION, TransferSearchQuerySchema,
} from '../schemas/ledger.js'
import type { TransferView } from '../services/transfer.service.js'
import { idempotencyOf } from './idempotency.js'
import { requestMeta } from './request-meta.js'

const moneyProblems = problems(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)

/** 201 with the movement; a replay answers the same status and body, marked by a header. */
const created = (reply: FastifyReply, r: { transfer: TransferView, replayed: boolean }) =>
  reply.code(201).header('idempotent-replayed', String(r.replayed)).send(r.transfer)

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { transfers } = app.services

  app.post('/v1/currencies/:code/payments', {
    config: { scope: 'payments:write', audit: { action: 'payment.create', issuersOnly: true } },
    preHandler: app.limits.money,
    schema: {
      tags: ['transfers'], summary: 'Pay from an account (its owner, or an issuer); the receiver\'s channel fee is a second transfer',
      params: CodeParams, headers: IdempotencyHeaders, body: PaymentCreateSchema,
      response: { 201: TransferSchema, ...moneyProblems },
    },
  }, async (request, reply) =>
    created(reply, await transfers.pay(request.principal, request.params.code, request.body, idempotencyOf(request), requestMeta(request))))

  app.post('/v1/currencies/:code/issuances', {
    config: { audit: { action: 'issuance.create' } },
    preHandler: app.limits.money,
    schema: {
      tags: ['transfers'], summary: 'Issue currency 1:1 against sterling received into the reserve (issuer)',
      params: CodeParams, headers: IdempotencyHeaders, body: IssuanceCreateSchema,
      response: { 201: TransferSchema, ...moneyProblems },
    },
  }, async (request, reply) =>
    created(reply, await transfers.issue(request.principal, request.params.code, request.body, idempotencyOf(request), requestMeta(request))))

  app.post('/v1/currencies/:code/redemptions', {
    config: { scope: 'redemptions:write', audit: { action: 'redemption.create', issuersOnly: true } },
    preHandler: app.limits.money,
    schema: {
      tags: ['transfers'], summary: 'Redeem a business\'s currency to sterling, the redemption fee withheld (business or issuer)',
      params: CodeParams, headers: IdempotencyHeaders, body: RedemptionCreateSchema,
      response: { 201: TransferSchema, ...moneyProblems },
    },
  }, async (request, reply) =>
    created(reply, await transfers.redeem(request.principal, request.params.code, request.body, idempotencyOf(request), requestMeta(request))))

  app.get('/v1/transfers/:id', {
    config: { scope: 'statements:read' },
    schema: {
      tags: ['transfers'], summary: 'One transfer with its related legs (its parties, or an issuer)',
      params: IdParams, response: { 200: TransferSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (request) => await transfers.get(request.principal, request.params.id))

  app.post('/v1/transfers/:id/reversal', {
    config: { audit: { action: 'transfer.reverse' }, optionalBody: true },
    // the body is optional: a reversal sent with none (as before it had one) is checked as an empty one, and
    // hashed as none, so a key used without a body still replays
    preValidation: async (request) => { if (request.body == null) request.body = {} },
    preHandler: app.limits.money,
    schema: {
      tags: ['transfers'], summary: 'Reverse a money movement once, by new transfers (issuer)',
      params: IdParams, headers: IdempotencyHeaders, body: ReversalCreateSchema,
      response: { 201: TransferSchema, ...moneyProblems },
    },
  }, async (request, reply) =>
    created(reply, await transfers.reverse(request.principal, request.params.id, request.body, idempotencyOf(request, Object.keys(request.body).length === 0 ? null : request.body), requestMeta(request))))

  app.get('/v1/currencies/:code/transfers', {
    schema: {
      tags: ['transfers'], summary: 'Search a currency\'s transfers by kind, account and time, oldest first (issuer)',
      description: TRANSFER_SEARCH_DESCRIPTION,
      params: CodeParams, querystring: TransferSearchQuerySchema, response: { 200: TransferPageSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (request) => await transfers.search(request.principal, request.params.code, paged(request.query)))
}
export default routes
