// What text the service accepts from a client. Every string of every request (body, query, path, headers, and the
// keys of objects such as `metadata`) is held to this rule at the boundary (src/plugins/validation.ts), so text that
// PostgreSQL cannot store, or that would mislead whoever reads it later, is refused with a 422 naming the field
// before it can reach the database. A value the database refuses inside a batched ledger call would otherwise fail
// every payment posted with it.
//
// Refused everywhere:
//   - NUL (U+0000): PostgreSQL's text and jsonb cannot hold it;
//   - lone surrogates (half of a UTF-16 pair): not Unicode text at all; Node would store them as U+FFFD (silently
//     changing the value) and jsonb refuses them;
//   - other C0 controls, DEL and the C1 controls (U+0080 to U+009F): invisible, and meaningless in a name, a
//     reference or a key;
//   - the bidirectional overrides U+202D and U+202E: they reverse how the characters after them are drawn, so a
//     reference could show another amount or name on a statement than the one it holds ("Trojan Source").
// Multi-line text (a schema marked `x-text: multiline`) may also hold tab, line feed and carriage return.
// A name (`x-text: name`: a participant's or a currency's name, a key's, a staff member's, a suspension's reason) is
// one line that must also hold a visible character: minLength counts spaces and invisible characters, and the
// services trim, so "   " or a zero-width space alone would be stored as a blank name in the directory or the
// audit trail.

export type TextKind = 'line' | 'multiline' | 'name'

/** The schema keyword that carries the rule (an OpenAPI extension, so it may appear in openapi.yaml). */
export const TEXT_KEYWORD = 'x-text'

// eslint-disable-next-line no-control-regex
const LINE = /[\u0000-\u001F\u007F-\u009F\u202D\u202E]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
// eslint-disable-next-line no-control-regex
const MULTILINE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u202D\u202E]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const NAMES: Record<number, string> = {
  0x00: 'a NUL character', 0x09: 'a tab', 0x0a: 'a line feed', 0x0d: 'a carriage return', 0x1b: 'an escape character',
  0x7f: 'a DEL character', 0x202d: 'a left-to-right override', 0x202e: 'a right-to-left override',
}

const LINE_ALL = new RegExp(LINE.source, 'g')
const MULTILINE_ALL = new RegExp(MULTILINE.source, 'g')

/**
 * The text with each character the rule refuses replaced by a space: for text the service must take as it comes
 * and answer, not refuse (a member's text message, which the SMS gateway hands over as it was typed). A space
 * only ever splits words, never joins them.
 */
export function refusedAsSpaces (s: string, kind: Exclude<TextKind, 'name'> = 'line'): string {
  return s.replace(kind === 'multiline' ? MULTILINE_ALL : LINE_ALL, ' ')
}

const hex = (c: number) => `U+${c.toString(16).toUpperCase().padStart(4, '0')}`

/** A character that shows: not white space (\s covers the Unicode spaces and U+FEFF), not a format character
 *  (zero-width spaces and joiners, bidirectional marks, the soft hyphen). Control characters never get this far. */
const VISIBLE = /[^\s\p{Cf}]/u

/** Why this text is refused (first offending character and where), or null when it is acceptable. */
export function textProblem (s: string, kind: TextKind = 'line'): string | null {
  const m = (kind === 'multiline' ? MULTILINE : LINE).exec(s)
  if (m == null) return kind === 'name' && !VISIBLE.test(s) ? 'must hold a visible character, not only spaces or invisible characters' : null
  const c = m[0].charCodeAt(0)
  const what = c >= 0xd800 && c <= 0xdfff
    ? `a lone surrogate (${hex(c)}), which is not Unicode text`
    : `${NAMES[c] ?? 'a control character'} (${hex(c)})`
  return `must not contain ${what}; found at character ${m.index + 1}`
}
