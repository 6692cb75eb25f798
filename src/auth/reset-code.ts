import { createHash, randomInt } from 'node:crypto'

// A password reset code is read out or written down by an issuer at a counter and typed on a phone, so it is
// made of letters and digits that cannot be mistaken for each other (no I, L, O, U: Crockford's base 32), in four
// groups of four: 80 random bits. Like an API key, that is far beyond guessing (and every guess is throttled as a
// login is), so a plain SHA-256 is enough to keep. Input is taken in either case, with or without the hyphens
// and spaces between the groups.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const GROUPS = 4
const GROUP = 4

/** How long a reset code works after it is handed out. */
export const RESET_CODE_HOURS = 24

export function newResetCode (): { code: string, hash: string } {
  const chars = Array.from({ length: GROUPS * GROUP }, () => ALPHABET[randomInt(ALPHABET.length)])
  const code = Array.from({ length: GROUPS }, (_, g) => chars.slice(g * GROUP, (g + 1) * GROUP).join('')).join('-')
  return { code, hash: hashResetCode(code) }
}

/** The code as typed, in its one form: capitals, no separators. */
const canonical = (code: string): string => code.toUpperCase().replace(/[\s-]/g, '')

export const hashResetCode = (code: string): string => createHash('sha256').update(canonical(code), 'utf8').digest('hex')
