import type { FastifyError } from 'fastify'
import fp from 'fastify-plugin'
import { DomainError } from '../domain/errors.js'
import { requestMeta } from '../routes/request-meta.js'

// Refused issuer actions go to the audit trail too (a member trying an issuance, an issuer of another currency,
// a reversal the ledger refused). Successful actions are written by the services inside their own transaction;
// this hook only sees failures, after the fact and best-effort. Routes opt in with config.audit. A caller's
// refusals past AUDIT_REFUSALS_PER_MINUTE in one currency become one summary row (audit.service.ts), written by
// the caller's next refusal after its minute or by the sweep below, whichever comes first.
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
  const sweep = async (all: boolean) => {
    const lost = await app.services.audit.flushRefusals(all)
    if (lost > 0) app.log.warn({ lost }, 'could not write the summary rows of refused attempts past the per-caller bound')
  }
  const timer = setInterval(() => { void sweep(false) }, 60_000)
  timer.unref()
  app.addHook('onClose', async () => { clearInterval(timer); await sweep(true) })
}, { name: 'audit', dependencies: ['services', 'auth'] })
