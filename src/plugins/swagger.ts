import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { problemResponse } from '../schemas/common.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The body may be left out (the route fills in an empty one before validation): the contract says so. */
    optionalBody?: boolean
  }
}

const OPTIONAL_BODY = 'x-circulate-optional-body'

/**
 * The operation's id when its schema names none: the method and the path's words, parameters as "By<Name>"
 * (GET /v1/accounts/{id}/statement: getAccountsByIdStatement). Stable, unique (a method and a path are), and what
 * generated clients name their functions after.
 */
export function operationId (method: string, url: string): string {
  const words = url.split('/').filter(w => w !== '' && w !== 'v1' && w !== '.well-known').map(w => {
    const param = /^:(\w+)$/.exec(w) ?? /^\{(\w+)\}$/.exec(w)
    const text = param != null ? `by-${param[1]}` : w
    return text.split(/[^A-Za-z0-9]+/).filter(Boolean).map(x => x[0].toUpperCase() + x.slice(1)).join('')
  })
  return method.toLowerCase() + words.join('')
}

// The route schemas are the source of the contract: @fastify/swagger turns them into OpenAPI 3.1,
// `npm run openapi` writes it to openapi.yaml, and test/contract.test.ts fails when the two differ.
export default fp(async (app) => {
  await app.register(swagger, {
    // Shared schemas (added with $id) become named components instead of def-N.
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (json.$id as string | undefined) ?? `def-${i}` },
    // One place decides, from each route's own config, what every operation of the contract says:
    // - a route open to anyone (config.public) needs no token: `security: []` overrides the document's bearer,
    //   so a validating proxy or a generated client calls it without one;
    // - every operation has an operationId (its own, or one made from its method and path);
    // - a path with a parameter can answer 414 URI_TOO_LONG: the router refuses a parameter past its
    //   maxParamLength (app.ts) before any route runs (plugins/problem.ts, frameworkErrors).
    transform: ({ schema, url, route }) => {
      const own = schema as Record<string, unknown>
      const method = [(route as RouteOptions).method].flat()[0]
      const out: Record<string, unknown> = { ...own, operationId: own.operationId ?? operationId(String(method), url) }
      if ((route as RouteOptions).config?.public === true) out.security = []
      if ((route as RouteOptions).config?.optionalBody === true) out[OPTIONAL_BODY] = true
      if (/\/:[^/]/.test(url) && own.response != null) {
        out.response = Object.fromEntries(Object.entries({ ...(own.response as object), 414: problemResponse(414) }).sort(([a], [b]) => a.localeCompare(b)))
      }
      return { schema: out as typeof schema, url }
    },
    // @fastify/swagger marks every body required (Fastify validates one whenever a route has a body schema); a
    // route that fills in an empty one when none is sent is marked by transform above and put right here
    transformObject: (doc) => {
      const paths = ('openapiObject' in doc ? doc.openapiObject.paths : undefined) ?? {}
      for (const item of Object.values(paths) as Array<Record<string, Record<string, unknown> | undefined>>) {
        for (const op of Object.values(item)) {
          if (op == null || typeof op !== 'object' || op[OPTIONAL_BODY] !== true) continue
          delete op[OPTIONAL_BODY]
          if (op.requestBody != null) (op.requestBody as { required: boolean }).required = false
        }
      }
      return 'openapiObject' in doc ? doc.openapiObject : doc.swaggerObject
    },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Circulate',
        version: '1.0.0',
        description: 'A double-entry ledger for community currencies. Amounts are decimal strings; errors are RFC 9457 ' +
          'problem details with a stable `code`; every money-moving POST takes an Idempotency-Key. Every string of a ' +
          'request (body, query, path, headers, object keys) is one line of text: NUL, lone surrogates, control ' +
          'characters and the bidirectional overrides U+202D/U+202E are refused with 422 INVALID_TEXT naming the field; ' +
          'a field marked `x-text: multiline` may also hold tab, line feed and carriage return; one marked `x-text: name` ' +
          'must also hold a visible character, not only spaces or invisible ones (docs/api.md).',
      },
      // relative to wherever the document is served from: the service itself (its /docs/json)
      servers: [{ url: '/', description: 'this service' }],
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
        { name: 'text payments', description: 'pay by text: the SMS gateway\'s webhook, phones, text PINs, the outbox' },
        { name: 'notes', description: 'paper notes at exchange points, and the sterling reserve' },
        { name: 'standing-orders', description: 'payments on a schedule (wages, business rates), made by the service\'s scheduler' },
      ],
    },
  })
  // The pages and the document need no token, and a stale one left in the browser must not turn them into a 401
  // (plugins/auth.ts answers a bad token on a public route as none), as for the dashboard and the shop pages.
  app.addHook('onRoute', (route) => {
    if (route.url === '/docs' || route.url.startsWith('/docs/')) route.config = { ...route.config, public: true }
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // no validator badge: it would load an image from validator.swagger.io, which the page's policy refuses
    uiConfig: { validatorUrl: null },
    // Swagger UI sets inline styles as it draws: allowed on /docs only (styles cannot run script; script-src stays 'self')
    transformStaticCSP: (header: string) => header.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"),
  })
}, { name: 'swagger' })
