import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import app, { serverOptions } from './app.js'
import { loadKeySet } from './auth/keys.js'
import { loadConfig } from './config.js'
import { startEmbeddedPostgres, type EmbeddedDb } from './db/embedded.js'
import { migrate } from './db/migrate.js'

// Configures the logger, the database and listens; everything else is in app.ts.
const config = loadConfig()
const server = Fastify({
  ...serverOptions(config),
  logger: {
    level: config.LOG_LEVEL,
    redact: ['req.headers.authorization', 'req.headers.cookie', 'req.body.password'],
  },
})
const log = server.log

let embedded: EmbeddedDb | null = null
let databaseUrl = config.DATABASE_URL
if (databaseUrl == null) {
  log.info({ dataDir: config.DATA_DIR }, 'no DATABASE_URL: starting embedded PostgreSQL')
  embedded = await startEmbeddedPostgres(config.DATA_DIR, config.EMBEDDED_PG_PORT, m => log.warn(m))
  databaseUrl = embedded.url
}
const migrated = await migrate(databaseUrl)
log.info({ applied: migrated.applied, alreadyApplied: migrated.skipped.length }, 'migrations done')

await server.register(app, { config, databaseUrl, keys: await loadKeySet(config.JWT_PRIVATE_KEYS, config.DATA_DIR) })
await server.ready()
if (await server.services.auth.ensurePlatformIssuer(config.ISSUER_USERNAME, config.ISSUER_PASSWORD)) {
  log.info({ username: config.ISSUER_USERNAME }, 'platform issuer created from ISSUER_USERNAME')
}

// Graceful shutdown: stop accepting, let in-flight requests finish, close the pool, then the embedded database.
closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err != null) log.error({ err }, 'shutting down after an error')
  else log.info({ signal }, 'shutting down')
  await server.close()
  await embedded?.stop()
})

await server.listen({ host: config.HOST, port: config.PORT })
