import type { FastifyRequest } from 'fastify'
import type { RequestMeta } from '../domain/access.js'

/** Where the request came from, for the audit trail and the login throttle (request.ip honours TRUST_PROXY). */
export const requestMeta = (request: FastifyRequest): RequestMeta => ({ clientAddress: request.ip, requestId: String(request.id) })
