import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { accountService } from '../services/account.service.js'
import { authService } from '../services/auth.service.js'
import { currencyService } from '../services/currency.service.js'
import { participantService } from '../services/participant.service.js'
import { transferService } from '../services/transfer.service.js'
import { batchService, type BatchOptions } from '../services/batch.service.js'
import { paymentCoalescer, type CoalescerOptions } from '../ledger/coalescer.js'

export interface ServicesOptions {
  scryptCost: number
  batch: BatchOptions
  /** null: every payment is posted alone */
  coalesce: CoalescerOptions | null
}

const build = (app: FastifyInstance, opts: ServicesOptions) => {
  const { scryptCost } = opts
  const currencies = currencyService(app.prisma)
  const coalescer = opts.coalesce == null ? null : paymentCoalescer(app.pool, opts.coalesce)
  return {
    auth: authService(app.prisma, scryptCost),
    currencies,
    participants: participantService(app.prisma, currencies, scryptCost),
    accounts: accountService(app.prisma, currencies),
    transfers: transferService(app.pool, app.prisma, currencies, coalescer),
    batches: batchService(app.pool, currencies, opts.batch),
  }
}

declare module 'fastify' {
  interface FastifyInstance { services: ReturnType<typeof build> }
}

export default fp<ServicesOptions>(async (app, opts) => {
  app.decorate('services', build(app, opts))
}, { name: 'services', dependencies: ['db'] })
