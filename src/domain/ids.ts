// The ledger's ids are UUIDv7 (RFC 9562): their first 48 bits are Unix milliseconds. A transfer's id is made from
// its own time (uuid_v7_seq(created_at, n) in the posting function: created_at's millisecond, plus a carry only if
// a call posts more than 4,095 legs), so no transfer made at or after a time has an id below that time's floor, and
// an index on ids can be entered there. The same holds for rows whose ids come from uuid_v7() at insert
// (clock_timestamp(), never before the row's now()).

/** The least UUIDv7 of the millisecond of `at`: every v7 id made at or after `at` sorts at or above it. Times
 *  before 1970 give the nil uuid, times past the 48 bits the largest. */
export function uuidV7Floor (at: Date): string {
  const ms = Math.min(Math.max(Math.floor(at.getTime()), 0), 2 ** 48 - 1)
  const h = (Number.isFinite(ms) ? ms : 0).toString(16).padStart(12, '0') + '0'.repeat(20)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}
