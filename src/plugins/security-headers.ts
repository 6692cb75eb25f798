import helmet from '@fastify/helmet'
import fp from 'fastify-plugin'

// Security headers on every response (@fastify/helmet). What matters is the two HTML pages the service serves,
// /dashboard and /docs: their every script, style, image and request comes from this service (Chart.js and
// Swagger UI are served from node_modules), so the policy allows 'self' and nothing else, no inline script, no
// framing by any other site, and no Referer sent anywhere. The JSON API gets the same headers, harmlessly, and
// Cache-Control: no-store on every answer to a request with credentials.
// No upgrade-insecure-requests: the demo serves plain HTTP on 127.0.0.1, where upgrading would break the pages.
export const CONTENT_SECURITY_POLICY = {
  'default-src': ["'self'"],
  'base-uri': ["'self'"],
  'connect-src': ["'self'"],
  'font-src': ["'self'", 'data:'],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'img-src': ["'self'", 'data:'],
  'object-src': ["'none'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'"],
}

/**
 * The headers that matter, for answers given before any hook runs (plugins/problem.ts, frameworkErrors: a URL that
 * does not decode, a path segment too long), which helmet never sees.
 */
export const BASELINE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': Object.entries(CONTENT_SECURITY_POLICY).map(([k, v]) => `${k} ${v.join(' ')}`).join(';'),
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
}

export default fp(async (app) => {
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives: CONTENT_SECURITY_POLICY },
    referrerPolicy: { policy: 'no-referrer' },
    frameguard: { action: 'deny' },
  })
  // An answer to a caller with credentials (a balance, a statement, a payment request and its payer's name) is
  // stored by no browser or proxy: in a browser's disk cache the next person on a shared till or library computer
  // could find it after logging out. A route that chose its own Cache-Control keeps it (the QR images).
  app.addHook('onSend', async (request, reply) => {
    if (request.headers.authorization != null && !reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store')
  })
}, { name: 'security-headers' })
