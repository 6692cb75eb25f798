import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import app, { serverOptions } from './app.js'
import { loadKeySet } from './auth/keys.js'
import { loadConfig } from './config.js'
import { startEmbeddedPostgres, type EmbeddedDb } from './db/embedded.js'
import { migrate } from './db/migrate.js'
import { demoIssuer } from './demo/credentials.js'

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

await server.register(app, { config, databaseUrl, keys: await loadKeySet(config.JWT_PRIVATE_KEYS, config.DATA_DIR, config.JWT_RETIRED_PUBLIC_KEYS) })
await server.ready()
// The platform issuer: from ISSUER_USERNAME/ISSUER_PASSWORD; for the embedded default without them, a random
// password kept in the data folder (never a default password).
const issuer = embedded != null && config.ISSUER_USERNAME == null
  ? demoIssuer(config.DATA_DIR)
  : { username: config.ISSUER_USERNAME, password: config.ISSUER_PASSWORD }
if (await server.services.auth.ensurePlatformIssuer(issuer.username, issuer.password)) {
  log.info({ username: issuer.username }, 'platform issuer created')
}

// Graceful shutdown: stop accepting, let in-flight requests finish, close the pool, then the embedded database.
closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err != null) log.error({ err }, 'shutting down after an error')
  else log.info({ signal }, 'shutting down')
  await server.close()
  await embedded?.stop()
})

const address = await server.listen({ host: config.HOST, port: config.PORT })
if (embedded != null) {
  const base = address.replace('0.0.0.0', '127.0.0.1')
  // Printed plainly (not as a JSON log line) for the person who just ran `npm start`.
  console.log(`\nCirculate is serving on ${base} (embedded PostgreSQL, data in ${config.DATA_DIR})\n` +
    `  API docs:        ${base}/docs\n` +
    `  platform issuer: ${issuer.username} / ${issuer.password}\n`)
}
