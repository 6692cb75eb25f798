import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { problems } from '../schemas/common.js'

const TokenRequest = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 64 }),
  password: Type.String({ minLength: 1, maxLength: 200 }),
}, { additionalProperties: false })

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/auth/token', {
    schema: {
      tags: ['auth'], summary: 'Exchange a username and password for a short-lived bearer token',
      body: TokenRequest,
      response: {
        200: Type.Object({
          accessToken: Type.String({ description: 'EdDSA-signed JWT' }),
          tokenType: Type.Literal('Bearer'),
          expiresIn: Type.Integer({ description: 'seconds until it expires' }),
        }),
        ...problems(400, 401, 413, 415, 422),
      },
    },
  }, async (request) => {
    const principal = await app.services.auth.login(request.body.username, request.body.password)
    const t = await app.tokens.sign(principal)
    return { accessToken: t.accessToken, tokenType: 'Bearer' as const, expiresIn: t.expiresIn }
  })

  app.get('/.well-known/jwks.json', {
    schema: {
      tags: ['auth'], summary: 'Public keys that verify this service\'s tokens',
      response: { 200: Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) }) },
    },
  }, async () => app.tokens.jwks())
}
export default routes
