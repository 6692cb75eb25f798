import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { problems, transportProblems } from '../schemas/common.js'
import { PasswordChangeSchema, PasswordResetSchema, TokenRequestSchema, WhoAmISchema } from '../schemas/access.js'
import { requestMeta } from './request-meta.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { auth } = app.services

  app.post('/v1/auth/token', {
    config: { public: true },
    schema: {
      tags: ['auth'],
      summary: 'Exchange a username and password, or an API key, for a short-lived bearer token',
      description: 'Failed attempts are counted per client address: past LOGIN_MAX_FAILURES the address is locked ' +
        'out (429, Retry-After), for a time that doubles with every further failure.',
      body: TokenRequestSchema,
      response: {
        200: Type.Object({
          accessToken: Type.String({ description: 'EdDSA-signed JWT' }),
          tokenType: Type.Literal('Bearer'),
          expiresIn: Type.Integer({ description: 'seconds until it expires' }),
        }),
        ...problems(400, 401, 403, 413, 415, 422, 429),
      },
    },
  }, async (request, reply) => {
    const b = request.body
    const principal = 'apiKey' in b
      ? await auth.loginWithApiKey(b.apiKey, requestMeta(request))
      : await auth.login(b.username, b.password, requestMeta(request))
    const t = await app.tokens.sign(principal)
    // a bearer token is a secret like an API key: kept by no cache (RFC 6749, 5.1)
    return await reply.header('cache-control', 'no-store')
      .send({ accessToken: t.accessToken, tokenType: 'Bearer' as const, expiresIn: t.expiresIn })
  })

  app.get('/v1/auth/me', {
    config: { anyScope: true },
    schema: {
      tags: ['auth'],
      summary: 'Who the token speaks for: role, login, currency, participant and its account ids (any token, an API key\'s too)',
      response: { 200: WhoAmISchema, ...problems(400, 401) },
    },
  }, async (request) => await auth.whoAmI(request.principal))

  app.post('/v1/auth/password', {
    config: { audit: { action: 'login.password' } },
    schema: {
      tags: ['auth'],
      summary: 'Change the caller\'s own password; every token of the login from before stops working (a password login only)',
      description: 'A wrong currentPassword is 422 WRONG_PASSWORD and counts as a failed login (LOGIN_MAX_FAILURES, 429 past it); ' +
        'a suspended login is 403 LOGIN_SUSPENDED. Every token of the login from before the change stops working (and, for a ' +
        'business, the tokens already exchanged for its API keys; the keys stay valid), on this instance at once and on others ' +
        'within LOGIN_CHECK_MS; log in again with the new password. A password reset code handed out for the login and not used ' +
        'stops working too.',
      body: PasswordChangeSchema,
      response: { 204: Type.Null({ description: 'changed' }), ...problems(400, 401, 403, 413, 415, 422, 429) },
    },
  }, async (request, reply) => {
    await auth.changePassword(request.principal, request.body, requestMeta(request))
    return await reply.code(204).send(null)
  })

  app.post('/v1/auth/password/reset', {
    config: { public: true },
    schema: {
      tags: ['auth'],
      summary: 'Set a new password with the one-time code an issuer handed out (for a forgotten password); every token of the login from before stops working',
      description: 'Throttled as a login is (LOGIN_MAX_FAILURES per address and per username, 429 past it). A wrong, expired or ' +
        'used code and an unknown username are all 401 INVALID_CREDENTIALS. A suspended login is 403 LOGIN_SUSPENDED and a new ' +
        'password the rules refuse is 422 at /newPassword; in both cases the code still works. On success the code is spent.',
      body: PasswordResetSchema,
      response: { 204: Type.Null({ description: 'the new password is set' }), ...problems(400, 401, 403, 413, 415, 422, 429) },
    },
  }, async (request, reply) => {
    await auth.resetPassword(request.body, requestMeta(request))
    return await reply.code(204).send(null)
  })

  app.get('/.well-known/jwks.json', {
    config: { public: true },
    schema: {
      tags: ['auth'], summary: 'Public keys that verify this service\'s tokens (live and retired)',
      response: { 200: Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) }), ...transportProblems() },
    },
  }, async () => app.tokens.jwks())
}
export default routes
