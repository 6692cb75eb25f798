import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { DomainError, type ErrorCode, type FieldError } from '../domain/errors.js'
import { fromDatabaseError } from '../db/errors.js'
import { validationProblem } from './validation.js'
import { disclosed } from '../domain/access.js'
import { BASELINE_HEADERS } from './security-headers.js'
import { allowedMethods } from './allowed-methods.js'

// RFC 9457 problem details for every failure. One mapping from cause to status and stable code; 5xx details
// are logged with the request id, never sent.
export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  instance: string
  code: ErrorCode
  requestId: string
  errors?: FieldError[]
}

const TITLES: Partial<Record<number, string>> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  406: 'Not Acceptable', 408: 'Request Timeout', 409: 'Conflict', 413: 'Content Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type',
  431: 'Request Header Fields Too Large',
  422: 'Unprocessable Content', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
}

export const problemType = (code: string): string => `urn:circulate:problem:${code.toLowerCase().replaceAll('_', '-')}`

export function sendProblem (request: FastifyRequest, reply: FastifyReply, err: DomainError): FastifyReply {
  return reply.code(err.status).type('application/problem+json').send(problemBody(request, err))
}

/** The problem details of an error; `instance` may point into the request (a batch item: "/v1/...#/items/3"). */
export function problemBody (request: FastifyRequest, err: DomainError, instance = request.url): Problem {
  return {
    type: problemType(err.code),
    title: TITLES[err.status] ?? 'Error',
    status: err.status,
    detail: err.message,
    instance,
    code: err.code,
    requestId: String(request.id),
    ...(err.errors != null ? { errors: err.errors } : {}),
  }
}

/** Turns Fastify's own errors (validation, parsing, limits) into domain errors with stable codes. */
function fromFastifyError (err: FastifyError, bodyType = 'application/json'): DomainError | null {
  if (err.validation != null) return validationProblem(err.validationContext ?? 'body', err.validation)
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new DomainError('MALFORMED_JSON', 'the request body is not valid JSON')
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new DomainError('PAYLOAD_TOO_LARGE', 'the request body is larger than this service accepts')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new DomainError('UNSUPPORTED_MEDIA_TYPE', `send the body as ${bodyType}`)
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new DomainError('UNSUPPORTED_MEDIA_TYPE', 'the content type header is not valid')
    case 'FST_ERR_CTP_EMPTY_TYPE':
      return new DomainError('UNSUPPORTED_MEDIA_TYPE', `a body needs a content type (${bodyType})`)
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_ASYNC_CONSTRAINT':
      return new DomainError('BAD_REQUEST', 'the request URL is not valid')
  }
  if (err.statusCode === 429) return new DomainError('RATE_LIMITED', err.message)
  if (err.statusCode === 503) return new DomainError('SERVICE_UNAVAILABLE', 'the service is under pressure; retry shortly')
  if (err.statusCode != null && err.statusCode >= 400 && err.statusCode < 500) return new DomainError('BAD_REQUEST', err.message)
  return null
}

export default fp(async (app) => {
  // Node refuses an HTTP/1.1 request without Host with a bare 400 of its own; app.ts turns that check off
  // (http.requireHostHeader) so that the refusal is made here, as a problem like every other.
  app.addHook('onRequest', async (request) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host == null) throw new DomainError('BAD_REQUEST', 'an HTTP/1.1 request needs a Host header')
  })
  app.setErrorHandler((err: FastifyError, request, reply) => {
    // the body type the route takes: JSON, but for a route that says otherwise (the text gateway's form webhook)
    const bodyType = (request.routeOptions.schema as { consumes?: string[] } | undefined)?.consumes?.[0]
    const found = err instanceof DomainError ? err : (fromFastifyError(err, bodyType) ?? fromDatabaseError(err))
    const domain = found == null ? null : disclosed(found, request.principal)
    if (domain != null && domain.status < 500) {
      request.log.info({ code: domain.code, detail: domain.message }, 'request refused')
      return sendProblem(request, reply, domain)
    }
    if (domain?.code === 'SERVICE_UNAVAILABLE') {
      request.log.warn({ err }, 'service unavailable')
      void reply.header('retry-after', '1')
      return sendProblem(request, reply, domain)
    }
    request.log.error({ err }, 'unhandled error')
    return sendProblem(request, reply, new DomainError('INTERNAL', `an internal error occurred; quote request id ${String(request.id)}`))
  })
  // a path that exists with other methods is 405 with Allow, not 404 (allowed-methods.ts)
  const methods = allowedMethods()
  app.addHook('onRoute', (route) => { methods.add(route.method, route.url) })
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]
    const allow = methods.of(path)
    if (allow.length === 0) return sendProblem(request, reply, new DomainError('NOT_FOUND', `no route for ${request.method} ${path}`))
    void reply.header('allow', allow.join(', '))
    return sendProblem(request, reply, new DomainError('METHOD_NOT_ALLOWED', `${path} does not take ${request.method}; it takes ${allow.join(', ')}`))
  })
}, { name: 'problem' })

/**
 * Requests so malformed that Node's HTTP parser refuses them (a bad request line or header, a header block past
 * the size limit) never reach Fastify's routing or error handler; they still get a problem+json, not Fastify's
 * own JSON shape. Passed to Fastify as `clientErrorHandler` (app.ts).
 */
export function clientErrorHandler (err: NodeJS.ErrnoException, socket: import('node:stream').Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, code, detail]: [number, ErrorCode, string] =
    err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'HEADERS_TOO_LARGE', 'the request headers are larger than this service accepts']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'REQUEST_TIMEOUT', 'the request was not received in time']
        : [400, 'BAD_REQUEST', 'the request is not valid HTTP']
  const body = JSON.stringify({ type: problemType(code), title: TITLES[status] ?? 'Error', status, detail, instance: '', code, requestId: '' })
  if (socket.writable) {
    const headers = Object.entries(BASELINE_HEADERS).map(([k, v]) => `${k}: ${v}\r\n`).join('')
    socket.write(`HTTP/1.1 ${status} ${TITLES[status] ?? 'Error'}\r\nContent-Type: application/problem+json\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy(err)
}

/**
 * Errors Fastify raises before routing (a URL that does not decode, a path parameter past maxParamLength) go to
 * `frameworkErrors`, not to the error handler; they get the same problem+json. Passed to Fastify in app.ts.
 */
export function frameworkErrors (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const domain = err.code === 'FST_ERR_MAX_PARAM_LENGTH'
    ? new DomainError('URI_TOO_LONG', 'a path segment is longer than this service accepts')
    : new DomainError('BAD_REQUEST', 'the request URL is not valid')
  request.log.info({ code: domain.code, detail: err.message }, 'request refused')
  // before routing, so before helmet's hook: the same policy, set here
  void sendProblem(request, reply.headers(BASELINE_HEADERS), domain)
}
