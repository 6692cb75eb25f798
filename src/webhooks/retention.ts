import type pg from 'pg'
import { uuidV7Floor } from '../domain/ids.js'

// How long the webhooks' history is kept (WEBHOOK_RETENTION_DAYS). Both tables only grew: every event to every
// subscribed endpoint left a webhook_delivery row for good, and every secret rotation a webhook_rotation row.
//
// - A delivery is deleted once it is finished (delivered or failed) and nothing has happened to it for the
//   retention: its last attempt, its delivery and its creation all older. A pending one is kept however old (it
//   is still to be sent, or waits for a suspended owner), and so is one whose send is under way.
// - A rotation's Idempotency-Key is forgotten after the retention, except the one that made its endpoint's current
//   secret: a retry with that key still answers the same rotation, however late (one row per endpoint). A retry
//   with a forgotten key rotates anew, as a new key does.
//
// Run by the webhooks plugin at start and then every PRUNE_EVERY_MS, on any number of instances at once (rows one
// instance is deleting are skipped by the others), in batches of BATCH, each its own transaction, so a first run
// over a long history holds no lock for long.

export const PRUNE_EVERY_MS = 10 * 60_000
const BATCH = 5000

/** Deletes what is past the retention as of `now`; `stop` (at shutdown) ends a long run between two batches. */
export async function forgetWebhookHistory (pool: pg.Pool, now: Date, days: number, stop?: AbortSignal): Promise<{ deliveries: number, rotations: number }> {
  const cutoff = new Date(now.getTime() - days * 86_400_000)
  let deliveries = 0
  for (;;) {
    // a delivery's id is a v7 uuid of when its row was written: those below the cutoff's are found through the
    // primary key, so a run reads the old rows only, not the whole log
    const r = await pool.query(`
      WITH gone AS (
        SELECT id FROM webhook_delivery
         WHERE id < $1::uuid AND status <> 'pending'
           AND greatest(created_at, last_attempt_at, delivered_at) < $2::timestamptz
           AND (sending_until IS NULL OR sending_until < $3::timestamptz)
         ORDER BY id LIMIT $4
           FOR UPDATE SKIP LOCKED)
      DELETE FROM webhook_delivery d USING gone WHERE d.id = gone.id`, [uuidV7Floor(cutoff), cutoff, now, BATCH])
    deliveries += r.rowCount ?? 0
    if ((r.rowCount ?? 0) < BATCH || stop?.aborted === true) break
  }
  const rotations = (await pool.query(`
    DELETE FROM webhook_rotation r
     WHERE r.created_at < $1::timestamptz
       AND NOT EXISTS (SELECT 1 FROM webhook w WHERE w.id = r.webhook_id AND w.status <> 'deleted'
                          AND w.rotated_by = r.created_by AND w.rotation_key = r.idempotency_key)`, [cutoff])).rowCount ?? 0
  return { deliveries, rotations }
}
