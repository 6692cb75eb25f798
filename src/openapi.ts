import Fastify from 'fastify'
import app, { serverOptions } from './app.js'
import { generateJwk, keySetFromJwks } from './auth/keys.js'
import { loadConfig } from './config.js'

/**
 * The OpenAPI document as the route schemas describe it. Builds the app without touching a database (the pool
 * connects lazily), so `npm run openapi` and the contract test need no PostgreSQL.
 */
export async function generateOpenApiYaml (): Promise<string> {
  const config = loadConfig({}, { DATABASE_URL: 'postgresql://unused@127.0.0.1:1/unused' })
  const server = Fastify({ ...serverOptions(config), logger: false })
  await server.register(app, { config, databaseUrl: config.DATABASE_URL!, keys: await keySetFromJwks([await generateJwk()]) })
  await server.ready()
  try {
    return server.swagger({ yaml: true })
  } finally {
    await server.close()
  }
}
