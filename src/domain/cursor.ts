import { DomainError } from './errors.js'

// Opaque keyset cursors: base64url JSON of the sort key of the last row served.
export function encodeCursor (key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url')
}

/** What one part of a cursor must be: a pattern, or a check of its own. */
interface Part { test: (s: string) => boolean }

/**
 * Decodes a cursor whose parts must each pass their check, so that nothing a query would refuse (an id out of
 * bigint's range, a NUL in text, a date that does not exist) reaches one: a cursor the service did not issue is
 * always 400 INVALID_CURSOR.
 */
export function decodeCursor (cursor: string | undefined, shape: Part[]): string[] | null {
  if (cursor == null || cursor === '') return null
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown
    if (Array.isArray(v) && v.length === shape.length && v.every((x, i) => typeof x === 'string' && shape[i].test(x))) return v as string[]
  } catch {}
  throw new DomainError('INVALID_CURSOR', 'cursor is not one this service issued; start again without it')
}

export const CURSOR_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
// ids are bigserial: 18 digits is beyond any this service will issue and within bigint's range
export const CURSOR_INT = /^[0-9]{1,18}$/
// text as PostgreSQL stores it: anything but NUL
export const CURSOR_ANY: Part = { test: (s) => s.length <= 500 && !s.includes('\0') }
/** A calendar date (YYYY-MM-DD) that exists. */
export const CURSOR_DATE: Part = {
  test: (s) => /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(s) && s >= '0001-01-01' && new Date(`${s}T00:00:00Z`).toISOString().startsWith(s),
}
