import t from 'tap'
import { CURSOR_ANY, CURSOR_DATE, CURSOR_INT, CURSOR_UUID, decodeCursor, encodeCursor } from '../../src/domain/cursor.js'
import { DomainError } from '../../src/domain/errors.js'

const refused = (cursor: string, shape: Parameters<typeof decodeCursor>[1]) => {
  try { decodeCursor(cursor, shape); return false } catch (err) { return err instanceof DomainError && err.code === 'INVALID_CURSOR' }
}

t.test('a cursor the service issued comes back as its key', async (t) => {
  t.same(decodeCursor(encodeCursor(['922337203685477580']), [CURSOR_INT]), ['922337203685477580'])
  t.same(decodeCursor(encodeCursor(['Café Ñ', '3f1c0a52-7d3e-4b7a-9a51-0c2d4e6f8a10']), [CURSOR_ANY, CURSOR_UUID]), ['Café Ñ', '3f1c0a52-7d3e-4b7a-9a51-0c2d4e6f8a10'])
  t.same(decodeCursor(encodeCursor(['2024-02-29']), [CURSOR_DATE]), ['2024-02-29'])
  t.equal(decodeCursor(undefined, [CURSOR_INT]), null)
  t.equal(decodeCursor('', [CURSOR_INT]), null)
})

t.test('anything a query would refuse is INVALID_CURSOR, never an error of the database', async (t) => {
  for (const [name, key, shape] of [
    ['an id beyond bigint', ['9999999999999999999'], [CURSOR_INT]],
    ['a negative id', ['-1'], [CURSOR_INT]],
    ['text with a NUL', ['a\u0000b', '3f1c0a52-7d3e-4b7a-9a51-0c2d4e6f8a10'], [CURSOR_ANY, CURSOR_UUID]],
    ['text too long', ['x'.repeat(501), '3f1c0a52-7d3e-4b7a-9a51-0c2d4e6f8a10'], [CURSOR_ANY, CURSOR_UUID]],
    ['the 30th of February', ['2026-02-30'], [CURSOR_DATE]],
    ['a 13th month', ['2026-13-01'], [CURSOR_DATE]],
    ['year 0', ['0000-01-01'], [CURSOR_DATE]],
    ['a number, not a string', [5], [CURSOR_INT]],
    ['too many parts', ['1', '2'], [CURSOR_INT]],
  ] as Array<[string, unknown[], Parameters<typeof decodeCursor>[1]]>) {
    t.ok(refused(encodeCursor(key), shape), name)
  }
  t.ok(refused('not base64 json', [CURSOR_INT]), 'not one this service made at all')
})
