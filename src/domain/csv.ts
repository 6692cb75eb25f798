import { pipeline, Readable } from 'node:stream'
import { stringify as stringifyStream, type Options, type Stringifier } from 'csv-stringify'
import { stringify as stringifySync } from 'csv-stringify/sync'

// Every CSV the service writes goes through here (statements, reports, flows, research exports, and any CSV a
// later route adds), so no cell can reach a spreadsheet as a formula. A client chooses some of the text that lands
// in a cell (a payment's reference shows on the payee's statement): a cell that begins with =, +, -, @, tab or
// carriage return (or the full-width =, +, -, @ that some spreadsheets also read as formulas) is written with a
// leading apostrophe, as OWASP's CSV injection guidance recommends ("=HYPERLINK(...)" becomes "'=HYPERLINK(...)"),
// which spreadsheets show as text. Numbers stay numbers: a cell that is a plain decimal number ("-12.60", "42") is
// written as it is, so amounts and counts keep their sign and remain numbers in a spreadsheet.
//
// csv-stringify's own escape_formulas option would do the escaping, but it leaves "-" alone only for JS numbers,
// and money here is never a JS number (decimal strings everywhere), so every negative amount would become text.

const FORMULA_START = /^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/
const NUMBER = /^-?[0-9]+(\.[0-9]+)?$/

/** The cell as it is safe to write: numbers untouched, anything else that a spreadsheet would evaluate made text. */
export function safeCell (value: string): string {
  return FORMULA_START.test(value) && !NUMBER.test(value) ? `'${value}` : value
}

/** A cell value as the helpers below take it; null and undefined are empty cells. */
export type CsvCell = string | number | bigint | boolean | null | undefined

const options = (columns: readonly string[]): Options => ({
  header: true,
  columns: [...columns],
  cast: {
    string: safeCell,
    // counts and other integers the code hands over as numbers are numbers: written as they are
    number: (n: number) => String(n),
    bigint: (n: bigint) => n.toString(),
  },
})

/** A whole CSV document, header first. Rows are arrays in the order of `columns`, or objects keyed by them. */
export function csvDocument (columns: readonly string[], rows: ReadonlyArray<readonly CsvCell[] | Record<string, CsvCell>>): string {
  return stringifySync(rows as unknown[], options(columns))
}

/** A streaming CSV writer (pipe rows into it), header first, for files too large to build in memory. */
export function csvStream (columns: readonly string[]): Stringifier {
  return stringifyStream(options(columns))
}

/**
 * A streamed CSV file of rows read as it goes (pages of a query). Joined with pipeline(), not pipe(): a failed read
 * (the database lost mid-file) errors the file, so the reply is cut off (or, before its first byte, answered with a
 * problem) instead of the read's error going unhandled and the file never ending; and a file destroyed when its
 * client goes stops the reads.
 */
export function csvFile (columns: readonly string[], rows: AsyncIterable<readonly CsvCell[]>): Readable {
  const out = csvStream(columns)
  pipeline(Readable.from(rows), out, () => {})
  return out
}
