import Negotiator from 'negotiator'
import type { FastifyReply, FastifyRequest } from 'fastify'

// The two forms as they are sent: an Accept range that names a parameter matches only a form that has it with
// that value, so `text/csv; charset=utf-8` is CSV and `text/csv; charset=latin1` (which the service cannot write)
// is not. header=present is RFC 4180's parameter: every CSV here has its header row.
const JSON_TYPE = 'application/json; charset=utf-8'
const CSV_TYPE = 'text/csv; charset=utf-8; header=present'
// JSON first: where the header ranks the two alike (*/*, or nothing it names), JSON is the answer
const FORMS = [JSON_TYPE, CSV_TYPE]

/**
 * The form a route that answers JSON or CSV answers in: ?format when given, otherwise what the Accept header
 * prefers of the two, read as RFC 9110 (section 12.5.1) reads it (types in any case, wildcards, q-values,
 * parameters; of ranges that tie, the more specific), JSON when it accepts neither or there is none, so a client
 * that asks for anything gets what it always got. Read from the query as sent, so it gives the same answer before
 * validation (the caller-share hook runs on onRequest) and after. Marks the answer as varying by Accept, for
 * caches, when the header chose.
 */
export function answerFormat (request: FastifyRequest, reply?: FastifyReply): 'json' | 'csv' {
  const asked = (request.query as { format?: unknown } | undefined)?.format
  if (asked === 'csv' || asked === 'json') return asked
  if (reply != null) void reply.header('vary', 'Accept')
  const accept = request.headers.accept
  if (typeof accept !== 'string') return 'json'
  return new Negotiator({ headers: { accept } }).mediaType(FORMS) === CSV_TYPE ? 'csv' : 'json'
}
