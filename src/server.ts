import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import app, { serverOptions } from './app.js'
import { loadKeySet } from './auth/keys.js'
import { listenHost, loadConfig, productionWarnings } from './config.js'
import { startEmbeddedPostgres, type EmbeddedDb } from './db/embedded.js'
import { migrate } from './db/migrate.js'
import { banner } from './demo/banner.js'
import { demoIssuer } from './demo/credentials.js'
import { hasCurrency, rememberedDemo, startDemoSeed, type DemoSeed } from './demo/seed.js'

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
for (const warning of productionWarnings(config)) log.warn(warning)
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
} else if (!(await server.services.auth.hasPlatformIssuer())) {
  // a database started without ISSUER_USERNAME/ISSUER_PASSWORD: the service answers, but no login can do anything
  log.warn('no platform issuer: nobody can log in to make a currency or its issuers. Set ISSUER_USERNAME and ' +
    'ISSUER_PASSWORD and start again; the first start with them makes the platform issuer')
}

let seeding: DemoSeed | null = null
// Graceful shutdown: stop the demo's loading between two movements, stop accepting, let in-flight requests
// finish, close the pool, then the embedded database.
closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  // before anything is awaited: the embedded database's own exit hook, called on the same signal, then waits
  embedded?.closing()
  if (err != null) log.error({ err }, 'shutting down after an error')
  else log.info({ signal }, 'shutting down')
  await seeding?.stop()
  await server.close()
  await embedded?.stop()
})

const address = await server.listen({ host: listenHost(config, embedded != null), port: config.PORT })
const base = address.replace('0.0.0.0', '127.0.0.1')
// The demo: a simulated year when the database has no currency yet; by default only for the embedded database,
// never into someone's DATABASE_URL unless SEED=1. Loaded after listen, in the background (src/demo/seed.ts).
const seedWanted = config.SEED === '1' || config.SEED === 'true' || (config.SEED === 'auto' && embedded != null)
const shownIssuer = embedded != null && config.ISSUER_USERNAME == null ? issuer as { username: string, password: string } : null
const dataDir = embedded != null ? config.DATA_DIR : null
// Printed plainly (not as JSON log lines) for the person who just ran `npm start`.
if (seedWanted && !(await hasCurrency(server.pool))) {
  seeding = startDemoSeed({
    databaseUrl, dataDir: config.DATA_DIR, scryptCost: config.SCRYPT_COST, seed: config.SEED_RANDOM, scale: config.SEED_SCALE,
    onReady: (logins, state) => { console.log(banner({ base, dataDir, issuer: shownIssuer, logins, state, loading: true })) },
    onDone: (state, seconds) => {
      console.log(`\nThe simulated year of ${state.currency} is loaded: ${state.total} movements in ${seconds.toFixed(0)} s. ` +
        `Dashboard: ${base}/dashboard\n`)
    },
    warn: (msg, err) => { log.warn({ err }, msg) },
  })
} else if (seedWanted || embedded != null) {
  // a file of the data folder that cannot be read is logged with what to do, and the start goes on without it
  const { state, logins } = await rememberedDemo(server.pool, config.DATA_DIR, (msg) => { log.warn(msg) })
  console.log(banner({ base, dataDir, issuer: shownIssuer, logins, state }))
}
