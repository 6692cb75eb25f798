import type { FastifyPluginAsync } from 'fastify'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

// The shop pages (docs/shop.md): /pay/{id}, the phone page a payment request's link and QR code open, and /till,
// where a business asks for an amount and sees it paid. Static files from public/pages that call the JSON API
// with the bearer token the page logs in for; nothing from another host, so they work offline and under the
// service's content security policy (src/plugins/security-headers.ts). Like /dashboard, UIs: not in openapi.yaml.

const PUBLIC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../public/pages')
const HTML = 'text/html; charset=utf-8'
const FILES: Record<string, { file: string, type: string }> = {
  '/till': { file: 'till.html', type: HTML },
  '/pages/common.js': { file: 'common.js', type: 'text/javascript; charset=utf-8' },
  '/pages/pay.js': { file: 'pay.js', type: 'text/javascript; charset=utf-8' },
  '/pages/till.js': { file: 'till.js', type: 'text/javascript; charset=utf-8' },
  '/pages/pages.css': { file: 'pages.css', type: 'text/css; charset=utf-8' },
}

const routes: FastifyPluginAsync = async (app) => {
  const send = (body: Buffer, type: string) => async (_req: unknown, reply: import('fastify').FastifyReply) =>
    await reply.type(type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(body)
  for (const [url, { file, type }] of Object.entries(FILES)) {
    // read once at start: a missing file fails the start, not a request
    app.get(url, { schema: { hide: true }, logLevel: 'warn', config: { public: true } }, send(fs.readFileSync(path.join(PUBLIC, file)), type))
  }
  // one page for every request id: the page reads the id from its path and asks the API, which decides access
  const pay = fs.readFileSync(path.join(PUBLIC, 'pay.html'))
  app.get('/pay/:id', { schema: { hide: true }, logLevel: 'warn', config: { public: true } }, send(pay, HTML))
}
export default routes
