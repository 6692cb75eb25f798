import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { accountService } from '../services/account.service.js'
import { authService } from '../services/auth.service.js'
import { currencyService } from '../services/currency.service.js'
import { participantService } from '../services/participant.service.js'
import { reportService } from '../services/report.service.js'
import { transferService } from '../services/transfer.service.js'

const build = (app: FastifyInstance, scryptCost: number, reportsMaxStalenessMs: number) => {
  const currencies = currencyService(app.prisma)
  return {
    auth: authService(app.prisma, scryptCost),
    currencies,
    participants: participantService(app.prisma, currencies, scryptCost),
    accounts: accountService(app.prisma, currencies),
    transfers: transferService(app.pool, app.prisma, currencies),
    reports: reportService(app.pool, currencies, { maxStalenessMs: reportsMaxStalenessMs }),
  }
}

declare module 'fastify' {
  interface FastifyInstance { services: ReturnType<typeof build> }
}

export default fp<{ scryptCost: number, reportsMaxStalenessMs?: number }>(async (app, opts) => {
  app.decorate('services', build(app, opts.scryptCost, opts.reportsMaxStalenessMs ?? 0))
}, { name: 'services', dependencies: ['db'] })
