import { DomainError } from './errors.js'

// Opaque keyset cursors: base64url JSON of the sort key of the last row served.
export function encodeCursor (key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url')
}

/** Decodes a cursor whose parts must each match a pattern (so nothing malformed ever reaches a query). */
export function decodeCursor (cursor: string | undefined, shape: RegExp[]): string[] | null {
  if (cursor == null || cursor === '') return null
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown
    if (Array.isArray(v) && v.length === shape.length && v.every((x, i) => typeof x === 'string' && shape[i].test(x))) return v as string[]
  } catch {}
  throw new DomainError('INVALID_CURSOR', 'cursor is not one this service issued; start again without it')
}

export const CURSOR_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
export const CURSOR_INT = /^[0-9]{1,19}$/
export const CURSOR_ANY = /^[\s\S]{0,500}$/
