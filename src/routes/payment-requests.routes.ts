import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import QRCode from 'qrcode'
import { Type } from 'typebox'
import { DomainError } from '../domain/errors.js'
import { isLinkHost } from '../domain/host.js'
import { qrPng } from '../domain/qr-png.js'
import { leaveShare } from '../plugins/caller-share.js'
import { CodeParams, IdParams, IdempotencyHeaders, paged, problems } from '../schemas/common.js'
import { TransferSchema } from '../schemas/ledger.js'
import {
  PaymentRequestCreateSchema, PaymentRequestGetQuerySchema, PaymentRequestListQuerySchema, PaymentRequestPageSchema,
  PaymentRequestPaySchema, PaymentRequestSchema,
} from '../schemas/requests.js'
import { idempotencyOf } from './idempotency.js'

// Payment requests (src/services/payment-request.service.ts, docs/shop.md): a business asks, a member pays once.

export interface PaymentRequestRoutesOptions {
  /** the service's public address, the base of payUrl and the QR text; null: the address the request came in on */
  publicUrl: string | null
}

const moneyProblems = problems(400, 401, 403, 404, 409, 413, 415, 422, 429)
const readProblems = problems(400, 401, 403, 404)

const routes: FastifyPluginAsyncTypebox<PaymentRequestRoutesOptions> = async (app, opts) => {
  const { requests } = app.services
  // Without PUBLIC_URL the links and QR codes are made from the Host the request came in with, which the client
  // chooses: only a host name or an IP literal, with a port, is put into them, behind http or https (anything else
  // could be markup, a script URL, or too long for a QR code). A request whose answer carries no link (paying)
  // does not need one: `needed` false gives an empty base there instead of refusing it.
  const base = (request: FastifyRequest, needed = true) => {
    if (opts.publicUrl != null) return opts.publicUrl
    const ok = isLinkHost(request.host) && (request.protocol === 'http' || request.protocol === 'https')
    if (ok) return `${request.protocol}://${request.host}`
    if (!needed) return ''
    throw new DomainError('BAD_REQUEST', 'the Host header is not a host name, or the protocol not http or https (or set PUBLIC_URL, the address links are made from)')
  }

  app.post('/v1/currencies/:code/payment-requests', {
    config: { scope: 'requests:write' },
    schema: {
      tags: ['payment requests'],
      summary: 'Ask for a payment into a business\'s account (the business, or its API key with requests:write); answers its pay link and QR text',
      params: CodeParams, headers: IdempotencyHeaders, body: PaymentRequestCreateSchema,
      response: { 201: PaymentRequestSchema, ...problems(400, 401, 403, 404, 409, 413, 415, 422) },
    },
  }, async (request, reply) => {
    const r = await requests.create(request.principal, request.params.code, request.body, idempotencyOf(request), base(request))
    return await reply.code(201).header('idempotent-replayed', String(r.replayed)).send(r.request)
  })

  app.get('/v1/payment-requests/:id', {
    // a long-poll waits up to a minute: it holds a place in the caller share while it reads, and none while it
    // waits (REQUESTS_WAITERS_PER_CALLER bounds those)
    config: { scope: 'requests:write' },
    schema: {
      tags: ['payment requests'],
      summary: 'A payment request (any member or business of its currency holding the id, or an issuer); ?waitSeconds= long-polls while it is pending',
      params: IdParams, querystring: PaymentRequestGetQuerySchema,
      response: { 200: PaymentRequestSchema, ...readProblems },
    },
  }, async (request) => {
    const waitMs = (request.query.waitSeconds ?? 0) * 1000
    // a client that hangs up stops its wait
    const abort = new AbortController()
    const onClose = () => { abort.abort() }
    request.raw.once('close', onClose)
    try {
      return await requests.get(request.principal, request.params.id, base(request), waitMs, abort.signal, () => { leaveShare(request) })
    } finally {
      request.raw.off('close', onClose)
    }
  })

  app.get('/v1/payment-requests/:id/qr.svg', {
    config: { scope: 'requests:write' },
    schema: {
      tags: ['payment requests'], summary: 'The request\'s QR code as SVG (who may read the request)',
      params: IdParams,
      response: { 200: { description: 'an SVG image encoding the request\'s qr text', content: { 'image/svg+xml': { schema: Type.String() } } }, ...readProblems },
    },
  }, async (request, reply) => {
    const text = await requests.qr(request.principal, request.params.id, base(request))
    const svg = await QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 4 })
    return await reply.type('image/svg+xml; charset=utf-8').header('cache-control', 'private, max-age=300').send(svg)
  })

  app.get('/v1/payment-requests/:id/qr.png', {
    config: { scope: 'requests:write' },
    schema: {
      tags: ['payment requests'], summary: 'The request\'s QR code as PNG (who may read the request)',
      params: IdParams,
      response: { 200: { description: 'a PNG image encoding the request\'s qr text', content: { 'image/png': { schema: Type.String({ format: 'binary' }) } } }, ...readProblems },
    },
  }, async (request, reply) => {
    const text = await requests.qr(request.principal, request.params.id, base(request))
    const png = qrPng(text, { errorCorrectionLevel: 'M', margin: 4, scale: 8 })
    return await reply.type('image/png').header('cache-control', 'private, max-age=300').send(png as unknown as string)
  })

  app.post('/v1/payment-requests/:id/payments', {
    config: { scope: 'payments:write' },
    preHandler: app.limits.money,
    schema: {
      tags: ['payment requests'],
      summary: 'Pay a payment request once, from the caller\'s account, with the channel\'s fee (a member or business of its currency); 409 once paid, cancelled, declined or expired',
      params: IdParams, headers: IdempotencyHeaders, body: PaymentRequestPaySchema,
      response: { 201: TransferSchema, ...moneyProblems },
    },
  }, async (request, reply) => {
    const r = await requests.pay(request.principal, request.params.id, request.body, idempotencyOf(request), base(request, false))
    return await reply.code(201).header('idempotent-replayed', String(r.replayed)).send(r.transfer)
  })

  app.post('/v1/payment-requests/:id/cancel', {
    config: { scope: 'requests:write' },
    schema: {
      tags: ['payment requests'], summary: 'Withdraw a pending payment request (the payee)',
      params: IdParams, response: { 200: PaymentRequestSchema, ...problems(400, 401, 403, 404, 409, 413, 415) },
    },
  }, async (request) => await requests.cancel(request.principal, request.params.id, base(request)))

  app.post('/v1/payment-requests/:id/decline', {
    config: { scope: 'payments:write' },
    schema: {
      tags: ['payment requests'], summary: 'Refuse a pending payment request addressed to the caller\'s account (403 for an open request: it is simply left unpaid)',
      params: IdParams, response: { 200: PaymentRequestSchema, ...problems(400, 401, 403, 404, 409, 413, 415, 422) },
    },
  }, async (request) => await requests.decline(request.principal, request.params.id, base(request)))

  app.get('/v1/accounts/:id/payment-requests', {
    config: { scope: 'statements:read' },
    schema: {
      tags: ['payment requests'],
      summary: 'An account\'s payment requests both ways, newest first, by status (owner or issuer)',
      params: IdParams, querystring: PaymentRequestListQuerySchema, response: { 200: PaymentRequestPageSchema, ...readProblems },
    },
  }, async (request) => await requests.list(request.principal, request.params.id, paged(request.query), base(request)))
}
export default routes
