// npm run db:migrate: applies pending migrations to DATABASE_URL (or to the embedded database under DATA_DIR).
import { loadConfig } from '../config.js'
import { startEmbeddedPostgres } from './embedded.js'
import { migrate } from './migrate.js'

const config = loadConfig()
const embedded = config.DATABASE_URL == null
  ? await startEmbeddedPostgres(config.DATA_DIR, config.EMBEDDED_PG_PORT, console.error)
  : null
try {
  const r = await migrate(config.DATABASE_URL ?? embedded!.url)
  console.log(`migrations: ${r.applied.length} applied (${r.applied.join(', ') || 'none'}), ${r.skipped.length} already applied`)
} finally {
  await embedded?.stop()
}
