import { LruMap } from 'toad-cache'

// One memory budget for every report cache: the settled buckets' links and the merged prefixes of graph-cache.ts,
// the per-account prefixes of account-cache.ts. Each entry is kept with an estimate of the heap it holds (what
// V8 spends on its arrays, bigints and map entries, not just the number of rows), and the least recently used
// entries go first once the total passes the budget. The service runs with a 256 MB old space
// (--max-old-space-size=256): one budget for all caches is what keeps a ledger of any size inside it, however
// many periods and ranges are asked for. Whatever does not fit is read from the database again.

/** Bytes all report caches may hold together, by default. */
export const DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024

// what an estimate counts for the parts V8 stores (64-bit, no pointer compression)
/** a bigint of up to 64 bits: map, length and one digit, plus the array slot pointing at it */
export const BIGINT_BYTES = 32
/** a Map entry (key, value, chain link, hash bucket) with a heap-number key */
export const MAP_ENTRY_BYTES = 48
/** an object or array header and a typed array's backing store bookkeeping */
export const OBJECT_BYTES = 64
/** every entry's own bookkeeping here: its list node, its key string, the Map entry that finds it */
const ENTRY_BYTES = 160

interface Entry { bytes: number, value: unknown }

let budget = DEFAULT_BUDGET_BYTES
let held = 0
// toad-cache's LruMap keeps the recency order; its own count bound is never the one reached (entries are evicted
// by bytes first, and no entry is counted below ENTRY_BYTES)
const lru = new LruMap<Entry>(2 ** 30)

/** The value kept under key, now the most recently used; undefined when absent. */
export function cached<T> (key: string): T | undefined {
  return lru.get(key)?.value as T | undefined
}

/** Keeps value under key, counted as `bytes` (plus the entry's own), evicting the least recently used. */
export function keep (key: string, value: unknown, bytes: number): void {
  forget(key)
  const size = Math.ceil(bytes) + ENTRY_BYTES + key.length * 2
  if (size > budget) return // larger than everything together: recomputed on every use
  lru.set(key, { bytes: size, value })
  held += size
  while (held > budget) evictOne()
}

export function forget (key: string): void {
  const old = lru.get(key)
  if (old == null) return
  held -= old.bytes
  lru.delete(key)
}

function evictOne (): void {
  const first = lru.first as { key: string, value: Entry } | null
  if (first == null) return
  held -= first.value.bytes
  lru.delete(first.key)
}

/** Bytes held now (estimated as above) and entries. */
export const heldBytes = (): number => held
export const entries = (): number => lru.size
export const budgetBytes = (): number => budget

/** Sets the budget (configuration, tests), evicting down to it. */
export function setBudget (bytes: number): void {
  budget = bytes
  while (held > budget) evictOne()
}

/** Forgets everything (tests). */
export function clearReportCache (): void {
  lru.clear(); held = 0
}

/** Estimated heap of an array of bigints (a BigInt64Array when every value fits, else an Array). */
export function bigintsBytes (a: ArrayLike<bigint>): number {
  return a instanceof BigInt64Array ? a.byteLength + OBJECT_BYTES : a.length * BIGINT_BYTES + OBJECT_BYTES
}

/** A copy as a plain array, by index: Array.from() walks a typed array through its iterator, an object per
 *  element on top of the element, and on a year's links that was the largest part of a report's garbage. */
export function arrayOf<T> (a: ArrayLike<T>): T[] {
  const out = new Array<T>(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i]
  return out
}

/** The range of a BigInt64Array's elements. */
export const MIN64 = -(2n ** 63n)
export const MAX64 = 2n ** 63n - 1n
/** values packed 8 bytes each when they fit in 64 bits (always, for amounts below 9.2 trillion units in millionths),
 *  else kept as they are: either way exact. */
export function packBigints (values: bigint[]): ArrayLike<bigint> {
  for (const v of values) if (v < MIN64 || v > MAX64) return values
  return BigInt64Array.from(values)
}
