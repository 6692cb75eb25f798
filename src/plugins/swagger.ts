import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

// The route schemas are the source of the contract: @fastify/swagger turns them into OpenAPI 3.1,
// `npm run openapi` writes it to openapi.yaml, and test/contract.test.ts fails when the two differ.
export default fp(async (app) => {
  await app.register(swagger, {
    // Shared schemas (added with $id) become named components instead of def-N.
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (json.$id as string | undefined) ?? `def-${i}` },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Circulate',
        version: '1.0.0',
        description: 'A double-entry ledger for community currencies. Amounts are decimal strings; errors are RFC 9457 ' +
          'problem details with a stable `code`; every money-moving POST takes an Idempotency-Key. Every string of a ' +
          'request (body, query, path, headers, object keys) is one line of text: NUL, lone surrogates, control ' +
          'characters and the bidirectional overrides U+202D/U+202E are refused with 422 INVALID_TEXT naming the field; ' +
          'a field marked `x-text: multiline` may also hold tab, line feed and carriage return (docs/api.md).',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      security: [{ bearer: [] }],
      tags: [
        { name: 'ops', description: 'liveness and readiness' },
        { name: 'auth', description: 'tokens and keys' },
        { name: 'access', description: 'staff logins, API keys for integrations, the audit trail' },
        { name: 'currencies', description: 'the tenants' },
        { name: 'participants', description: 'members, businesses and the directory' },
        { name: 'accounts', description: 'balances, limits and statements' },
        { name: 'transfers', description: 'the one write path: payments, issuance, redemption, reversal' },
      ],
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
}, { name: 'swagger' })
