import type { FastifyError } from 'fastify'
import fp from 'fastify-plugin'
import { DomainError } from '../domain/errors.js'
import { requestMeta } from '../routes/request-meta.js'

// Refused issuer actions go to the audit trail too (a member trying an issuance, an issuer of another currency,
// a reversal the ledger refused). Successful actions are written by the services inside their own transaction;
// this hook only sees failures, after the fact and best-effort. Routes opt in with config.audit.
export default fp(async (app) => {
  app.addHook('onError', async (request, _reply, err) => {
    const audit = request.routeOptions.config.audit
    const p = request.principal
    // Anonymous callers (401 before any identity) are not recorded: there is no one to record.
    if (audit == null || p == null) return
    if (audit.issuersOnly === true && p.role !== 'issuer' && p.role !== 'platform_issuer') return
    const params = (request.params ?? {}) as { code?: string, id?: string }
    const errorCode = err instanceof DomainError ? err.code : ((err as FastifyError).validation != null ? 'VALIDATION_FAILED' : String((err as FastifyError).code ?? 'ERROR'))
    const ok = await app.services.audit.recordFailure(p, audit.action, requestMeta(request), {
      code: params.code, errorCode, target: params.id ?? null,
    })
    if (!ok) request.log.warn({ action: audit.action }, 'could not write the audit row of a refused action')
  })
}, { name: 'audit', dependencies: ['services', 'auth'] })
