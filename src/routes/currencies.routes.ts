import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { CodeParams, paged, problems } from '../schemas/common.js'
import { requestMeta } from './request-meta.js'
import {
  BusinessCreateSchema, CurrencyCreateSchema, CurrencySchema, CurrencyUpdateSchema, DirectoryPageSchema, DirectoryQuerySchema,
  MemberCreateSchema, RegisteredSchema,
} from '../schemas/ledger.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { currencies, participants } = app.services

  app.post('/v1/currencies', {
    config: { audit: { action: 'currency.create' } },
    schema: {
      tags: ['currencies'], summary: 'Create a currency and its system accounts (platform issuer)',
      body: CurrencyCreateSchema, response: { 201: CurrencySchema, ...problems(400, 401, 403, 409, 413, 415, 422) },
    },
  }, async (request, reply) => reply.code(201).send(await currencies.create(request.principal, request.body, requestMeta(request))))

  app.get('/v1/currencies/:code', {
    config: { public: true },
    schema: {
      tags: ['currencies'], summary: 'A currency: its fees, decimals, local areas and system accounts',
      params: CodeParams, response: { 200: CurrencySchema, ...problems(400, 404) },
    },
  }, async (request) => await currencies.get(request.params.code))

  app.patch('/v1/currencies/:code', {
    config: { audit: { action: 'currency.time_zone' } },
    schema: {
      tags: ['currencies'],
      summary: 'Change a currency\'s time zone, while it has no transfers (issuer)',
      description: 'The reports\' days, weeks and months and the holding days are local days of the currency\'s zone. ' +
        'Its aggregates are cut in that zone as transfers come in, so the zone can change only until the first transfer; after that the answer is 409 TIME_ZONE_FIXED.',
      params: CodeParams, body: CurrencyUpdateSchema, response: { 200: CurrencySchema, ...problems(400, 401, 403, 404, 409, 413, 415, 422) },
    },
  }, async (request) => await currencies.updateTimeZone(request.principal, request.params.code, request.body, requestMeta(request)))

  app.post('/v1/currencies/:code/members', {
    config: { audit: { action: 'member.register' } },
    schema: {
      tags: ['participants'], summary: 'Register a member with an account and a login (issuer)',
      params: CodeParams, body: MemberCreateSchema, response: { 201: RegisteredSchema, ...problems(400, 401, 403, 404, 409, 413, 415, 422) },
    },
  }, async (request, reply) =>
    reply.code(201).send(await participants.registerMember(request.principal, request.params.code, request.body, requestMeta(request))))

  app.post('/v1/currencies/:code/businesses', {
    config: { audit: { action: 'business.register' } },
    schema: {
      tags: ['participants'], summary: 'Register a business with an account, a login and a directory listing (issuer)',
      params: CodeParams, body: BusinessCreateSchema, response: { 201: RegisteredSchema, ...problems(400, 401, 403, 404, 409, 413, 415, 422) },
    },
  }, async (request, reply) =>
    reply.code(201).send(await participants.registerBusiness(request.principal, request.params.code, request.body, requestMeta(request))))

  app.get('/v1/currencies/:code/businesses', {
    config: { public: true },
    schema: {
      tags: ['participants'], summary: 'The public business directory: search by name, sector and district',
      params: CodeParams, querystring: DirectoryQuerySchema, response: { 200: DirectoryPageSchema, ...problems(400, 404) },
    },
  }, async (request) => await participants.directory(request.params.code, paged(request.query)))
}
export default routes
