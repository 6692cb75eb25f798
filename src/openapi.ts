import Fastify, { type FastifyInstance } from 'fastify'
import app, { serverOptions } from './app.js'
import { generateJwk, keySetFromJwks } from './auth/keys.js'
import { loadConfig } from './config.js'

/**
 * Builds the app without touching a database (the pool connects lazily), so `npm run openapi` and the contract
 * test need no PostgreSQL. Also returns every route as it was registered.
 */
async function buildOffline (): Promise<{ server: FastifyInstance, routes: Array<{ method: string, url: string }> }> {
  const config = loadConfig({}, { DATABASE_URL: 'postgresql://unused@127.0.0.1:1/unused' })
  const server = Fastify({ ...serverOptions(config), logger: false })
  const routes: Array<{ method: string, url: string }> = []
  server.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routes.push({ method, url: r.url })
  })
  await server.register(app, { config, databaseUrl: config.DATABASE_URL!, keys: await keySetFromJwks([await generateJwk()]) })
  await server.ready()
  return { server, routes }
}

/** The OpenAPI document as the route schemas describe it. */
export async function generateOpenApiYaml (): Promise<string> {
  const { server } = await buildOffline()
  try { return server.swagger({ yaml: true }) } finally { await server.close() }
}

/** Every method and path the app serves, in OpenAPI's path syntax ({id}), without the docs and dashboard UIs
 *  and HEAD twins. */
export async function servedOperations (): Promise<string[]> {
  const { server, routes } = await buildOffline()
  await server.close()
  return routes
    .filter(r => !r.url.startsWith('/docs') && !r.url.startsWith('/dashboard') && !/^\/(pay\/|till$|pages\/)/.test(r.url) && r.method !== 'HEAD' && r.method !== 'OPTIONS')
    .map(r => `${r.method} ${r.url.replace(/:([^/]+)/g, '{$1}')}`)
}
