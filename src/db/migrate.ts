import { createHash, randomUUID } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { connectClient } from './hosts.js'

// Prisma's CLI cannot run migrations here (it downloads a native engine), so this runner applies
// prisma/migrations/<name>/migration.sql itself, in Prisma's layout and its _prisma_migrations table:
// each file in its own transaction, under an advisory lock (several instances may start at once), with its
// sha256 recorded so reruns are no-ops and an edited migration is refused. `prisma migrate status` still works
// for anyone who has the engine.
export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../prisma/migrations')
const LOCK_ID = 7_211_901 // any constant; shared by every instance of this service

export interface MigrationResult { applied: string[], skipped: string[] }

export async function migrate (databaseUrl: string, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  // a multi-host URL: the writable host (src/db/hosts.ts)
  const client = await connectClient(databaseUrl)
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_ID])
    await client.query(`CREATE TABLE IF NOT EXISTS _prisma_migrations (
      id                  varchar(36) PRIMARY KEY NOT NULL,
      checksum            varchar(64) NOT NULL,
      finished_at         timestamptz,
      migration_name      varchar(255) NOT NULL,
      logs                text,
      rolled_back_at      timestamptz,
      started_at          timestamptz NOT NULL DEFAULT now(),
      applied_steps_count integer NOT NULL DEFAULT 0)`)
    const done = new Map<string, string>()
    const rows = await client.query<{ migration_name: string, checksum: string }>(
      'SELECT migration_name, checksum FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL')
    for (const r of rows.rows) done.set(r.migration_name, r.checksum)

    const names = fs.readdirSync(dir, { withFileTypes: true }).filter(d => d.isDirectory()).map(d => d.name).sort()
    const result: MigrationResult = { applied: [], skipped: [] }
    for (const name of names) {
      const sql = fs.readFileSync(path.join(dir, name, 'migration.sql'), 'utf8')
      const checksum = createHash('sha256').update(sql).digest('hex')
      const prior = done.get(name)
      if (prior !== undefined) {
        if (prior !== checksum) {
          throw new Error(`migration ${name} was edited after it was applied (checksum ${prior} in the database, ` +
            `${checksum} on disk); add a new migration instead of editing an applied one`)
        }
        result.skipped.push(name)
        continue
      }
      await client.query('BEGIN')
      try {
        const id = randomUUID()
        await client.query(
          'INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, now())',
          [id, checksum, name])
        await client.query(sql)
        await client.query(
          'UPDATE _prisma_migrations SET finished_at = now(), applied_steps_count = 1 WHERE id = $1', [id])
        await client.query('COMMIT')
        result.applied.push(name)
      } catch (err) {
        await client.query('ROLLBACK')
        throw new Error(`migration ${name} failed: ${(err as Error).message}`)
      }
    }
    return result
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_ID]).catch(() => {})
    await client.end()
  }
}
