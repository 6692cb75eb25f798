import type { FastifyPluginAsync } from 'fastify'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

// The dashboard: a static page for issuers and researchers that draws the reports API with Chart.js. Every
// asset is served from here (the page from public/dashboard, Chart.js from node_modules), never from a CDN, so the
// page works offline. Like /docs it is a UI, not part of the API contract: hidden from openapi.yaml.

const PUBLIC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../public/dashboard')
const chartJs = path.join(path.dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js')

const FILES: Record<string, { file: string, type: string }> = {
  '/dashboard': { file: path.join(PUBLIC, 'index.html'), type: 'text/html; charset=utf-8' },
  '/dashboard/dashboard.js': { file: path.join(PUBLIC, 'dashboard.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard/dashboard.css': { file: path.join(PUBLIC, 'dashboard.css'), type: 'text/css; charset=utf-8' },
  '/dashboard/vendor/chart.umd.min.js': { file: chartJs, type: 'text/javascript; charset=utf-8' },
}

const routes: FastifyPluginAsync = async (app) => {
  for (const [url, { file, type }] of Object.entries(FILES)) {
    // read once at start: a handful of small files, and a missing one fails the start, not a request
    const body = fs.readFileSync(file)
    app.get(url, { schema: { hide: true }, logLevel: 'warn', config: { public: true } }, async (_req, reply) =>
      await reply.type(type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(body))
  }

  // The currencies to choose from (their codes, names and time zones are public: GET /v1/currencies/{code} is open
  // to anyone); the zone gives the page the currency's local today for its default range.
  app.get('/dashboard/config.json', { schema: { hide: true }, logLevel: 'warn', config: { public: true } }, async () => {
    const currencies = await app.prisma.currency.findMany({ select: { code: true, name: true, timeZone: true }, orderBy: { createdAt: 'asc' } })
    return { currencies }
  })
}
export default routes
