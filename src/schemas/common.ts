import { Type, type Static, type TSchema } from 'typebox'

// Shared TypeBox schemas: the source of truth for validation and for openapi.yaml.
export const Uuid = (description: string) => Type.String({ format: 'uuid', description })
export const AmountString = (description: string) => Type.String({
  description: `${description}. A decimal string with no more decimals than the currency has, e.g. "12.60"`,
  examples: ['12.60'],
})
export const SignedAmountString = (description: string) => Type.String({ description, examples: ['-12.60'] })
export const RateString = (description: string) => Type.String({
  description: `${description}, as a fraction: "0.02" is 2%`, pattern: '^0(\\.[0-9]{1,6})?$', examples: ['0.02'],
})
export const Timestamp = (description: string) => Type.String({ format: 'date-time', description })
export const Nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])
/** ?format on a route that answers JSON or CSV. No default: when it is absent the Accept header chooses
 *  (src/routes/format.ts). */
export const FormatQuery = (csv = 'csv for a spreadsheet') => Type.Optional(Type.Enum(['json', 'csv'], {
  description: `json, or ${csv}; when absent, the Accept header chooses (CSV only when it prefers text/csv to application/json)`,
}))
/**
 * Text that may run over several lines (tab, line feed and carriage return allowed). Every other string of a request
 * is one line: src/domain/text.ts has the rule, src/plugins/validation.ts applies it to every route.
 */
export const MultilineText = (opts: { description: string, minLength?: number, maxLength?: number }) =>
  Type.String({ ...opts, 'x-text': 'multiline' })

export const ProblemSchema = Type.Object({
  type: Type.String({ description: 'URI naming the kind of problem: urn:circulate:problem:<code>' }),
  title: Type.String(),
  status: Type.Integer(),
  detail: Type.String({ description: 'what exactly was wrong with this request' }),
  instance: Type.String({ description: 'the request path' }),
  code: Type.String({ description: 'stable machine-readable cause, e.g. INSUFFICIENT_FUNDS' }),
  requestId: Type.String({ description: 'quote this when asking for help; it is in the logs' }),
  errors: Type.Optional(Type.Array(Type.Object({
    pointer: Type.String({ description: 'JSON pointer to the offending field' }),
    detail: Type.String(),
  }))),
}, { $id: 'Problem', description: 'RFC 9457 problem details (application/problem+json)' })
export type ProblemBody = Static<typeof ProblemSchema>

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'malformed request (bad JSON, path or query, a missing or blank Idempotency-Key)',
  401: 'no valid bearer token',
  403: 'the caller\'s role may not do this',
  404: 'not found (or not yours: existence is not revealed)',
  409: 'conflict (e.g. a request with this Idempotency-Key is still in flight)',
  413: 'body too large',
  414: 'a path parameter longer than the service accepts (URI_TOO_LONG)',
  415: 'body is not application/json, or is labelled with a charset other than UTF-8',
  422: 'well-formed but refused: validation, text the service does not store (INVALID_TEXT), amount, funds, limits, status, idempotency key reuse',
  429: 'too many requests from this caller: past a rate limit, or past its requests running and waiting at once; retry after Retry-After',
  503: 'unavailable for now: the database away or overloaded, or (reports) the currency\'s time zone changed while it was read; retry after Retry-After',
}

/** One problem response of the contract: its description and the shared Problem schema. */
export const problemResponse = (status: number) => ({
  description: PROBLEM_DESCRIPTIONS[status] ?? 'problem',
  content: { 'application/problem+json': { schema: Type.Ref('Problem') } },
})

/**
 * The problem responses a route can give, each as application/problem+json with the shared Problem schema.
 * 503 is on every route: any of them is shed when the database is away or the process is overloaded. A route that
 * takes input (it can answer 400) can also answer 422 INVALID_TEXT, in whichever part of the request the text is;
 * one that takes a token (it can answer 401) can also answer 429: the caller has too many requests running and
 * waiting already (plugins/caller-share.ts).
 */
export const problems = (...statuses: number[]) =>
  problemResponses([...statuses, ...(statuses.includes(400) ? [422] : []), ...(statuses.includes(401) ? [429] : [])])

/** For a route that takes no input: only a request that is not valid HTTP (400) and load shedding (503). */
export const transportProblems = () => problemResponses([400])

const problemResponses = (statuses: number[]) => Object.fromEntries([...new Set([...statuses, 503])].sort().map(s => [s, problemResponse(s)]))

/** The page size of a list when the request does not say. */
export const DEFAULT_PAGE = 50
export const PageQuery = {
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'opaque cursor from the previous page\'s nextCursor' })),
  // optional: a parameter with a default is one the client may leave out (validation fills the default in)
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: DEFAULT_PAGE, description: `page size (1–200, default ${DEFAULT_PAGE})` })),
}
/** A list query with its page size filled in (validation already fills the default; this says so to the types). */
export const paged = <Q extends { limit?: number }>(q: Q): Q & { limit: number } => ({ ...q, limit: q.limit ?? DEFAULT_PAGE })
export const NextCursor = Nullable(Type.String({ description: 'pass as ?cursor= for the next page; null on the last page' }))

export const CodeParams = Type.Object({
  code: Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]{1,9}$', description: 'currency code, e.g. BRS' }),
})
export const IdParams = Type.Object({ id: Uuid('id') })

/**
 * An idempotency key must hold a character other than white space: a key of spaces alone is a client's blank
 * template, and every request sent with it would share one key, so the second would replay the first (or be
 * refused as its reuse) instead of doing what it asks. Refused as a missing key is (src/plugins/validation.ts).
 */
export const IDEMPOTENCY_KEY_PATTERN = '\\S'
/** What a key of white space alone is told, in the header as in a batch item. */
export const BLANK_KEY_DETAIL = 'must hold a character other than white space'

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.String({
    minLength: 1, maxLength: 255, pattern: IDEMPOTENCY_KEY_PATTERN,
    description: 'a unique key per money movement (1-255 characters, not white space alone): a retry with the same key and body replays the first response',
  }),
})
