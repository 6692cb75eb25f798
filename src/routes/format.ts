import negotiate from '@fastify/accept-negotiator'
import type { FastifyReply, FastifyRequest } from 'fastify'

const FORMS = ['application/json', 'text/csv']

/**
 * The form a route that answers JSON or CSV answers in: ?format when given, otherwise what the Accept header
 * prefers of the two (RFC 9110, section 12.5.1), JSON when it names neither or there is none, so a client that
 * asks for anything gets what it always got. Read from the query as sent, so it gives the same answer before
 * validation (the caller-share hook runs on onRequest) and after. Marks the answer as varying by Accept, for
 * caches, when the header chose.
 */
export function answerFormat (request: FastifyRequest, reply?: FastifyReply): 'json' | 'csv' {
  const asked = (request.query as { format?: unknown } | undefined)?.format
  if (asked === 'csv' || asked === 'json') return asked
  if (reply != null) void reply.header('vary', 'Accept')
  const accept = request.headers.accept
  return typeof accept === 'string' && negotiate(accept, FORMS) === 'text/csv' ? 'csv' : 'json'
}
