import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import { hashPassword } from '../auth/password.js'
import { checkNewPassword } from '../domain/password-rules.js'
import { auditRecord, type RequestMeta } from '../domain/access.js'
import { CURSOR_ANY, CURSOR_UUID, decodeCursor, encodeCursor } from '../domain/cursor.js'
import { DomainError } from '../domain/errors.js'
import { parsePostcode, isLocal } from '../domain/postcode.js'
import { isIssuerOf, type Principal } from '../domain/principal.js'
import { auditRepo } from '../repositories/audit.repo.js'
import { participantRepo } from '../repositories/participant.repo.js'
import { accountView } from './account.service.js'
import type { BusinessCreate as BusinessInput, DirectoryQuery, MemberCreate as MemberInput } from '../schemas/ledger.js'
import type { CurrencyService } from './currency.service.js'

export function participantService (prisma: PrismaClient, currencies: CurrencyService, scryptCost: number) {
  const repo = participantRepo(prisma)

  async function register (principal: Principal | null, code: string, kind: 'member' | 'business',
    fields: { name: string, postcode: string, sector?: string, independent?: boolean, textCode?: string }, login: { username: string, password: string },
    meta?: RequestMeta) {
    const currency = await currencies.resolve(code)
    currencies.assertIssuer(principal, currency.id)
    const pc = parsePostcode(fields.postcode)
    checkNewPassword(login.username, login.password)
    const passwordHash = await hashPassword(login.password, scryptCost)
    try {
      const p = await prisma.$transaction(async (tx) => {
        const p = await participantRepo(tx).create({
          currencyId: currency.id, kind, name: fields.name.trim(), postcode: pc.full, district: pc.district,
          sector: fields.sector, independent: fields.independent, textCode: fields.textCode?.toUpperCase(), login: { username: login.username, passwordHash },
        })
        await auditRepo(tx).insert(auditRecord(principal, `${kind}.register`, meta, {
          target: p.id, currencyId: currency.id, detail: { username: login.username, accountId: p.accounts[0].id },
        }))
        return p
      })
      return { id: p.id, accountId: p.accounts[0].id }
    } catch (err) {
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') {
        const code = fields.textCode?.toUpperCase()
        if (code != null && await prisma.participant.count({ where: { currencyId: currency.id, textCode: code } }) > 0) {
          throw new DomainError('TEXT_CODE_TAKEN', `text code ${code} is taken in this currency`)
        }
        throw new DomainError('USERNAME_TAKEN', `username ${login.username} is taken`)
      }
      throw err
    }
  }

  return {
    registerMember: async (principal: Principal | null, code: string, b: MemberInput, meta?: RequestMeta) =>
      await register(principal, code, 'member', { name: b.name, postcode: b.postcode }, b, meta),

    registerBusiness: async (principal: Principal | null, code: string, b: BusinessInput, meta?: RequestMeta) =>
      await register(principal, code, 'business',
        { name: b.tradingName, postcode: b.postcode, sector: b.sector, independent: b.independent, textCode: b.textCode }, b, meta),

    /** The public directory of businesses: anyone may search it; it shows no personal data. */
    async directory (code: string, q: DirectoryQuery & { limit: number }) {
      const currency = await currencies.resolve(code)
      const after = decodeCursor(q.cursor, [CURSOR_ANY, CURSOR_UUID])
      const rows = await repo.directory({
        currencyId: currency.id, q: q.q?.trim() || undefined, sector: q.sector, district: q.district?.toUpperCase(),
      }, after == null ? null : { name: after[0], id: after[1] }, q.limit)
      const page = rows.slice(0, q.limit)
      const last = page.at(-1)
      return {
        items: page.map(r => ({
          id: r.id, tradingName: r.name, sector: r.sector ?? '', district: r.district,
          independent: r.independent ?? false, local: isLocal(r.district, currency.localAreas), textCode: r.textCode,
        })),
        nextCursor: rows.length > q.limit && last != null ? encodeCursor([last.name, last.id]) : null,
      }
    },

    /** A participant and its accounts: the participant itself, or an issuer of its currency. Others get 404. */
    async get (principal: Principal | null, id: string) {
      const p = await repo.byId(id)
      const mayRead = p != null && principal != null &&
        (principal.participantId === p.id || isIssuerOf(principal, p.currencyId))
      if (p == null || !mayRead) {
        if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
        if (principal.role === 'researcher') throw new DomainError('FORBIDDEN', 'researchers see reports and exports, not participants')
        throw new DomainError('PARTICIPANT_NOT_FOUND', 'participant not found')
      }
      const currency = await currencies.resolveId(p.currencyId)
      return {
        id: p.id, kind: p.kind as 'member' | 'business', currency: currency.code, name: p.name, postcode: p.postcode,
        district: p.district, sector: p.sector, independent: p.independent,
        accounts: p.accounts.map(a => accountView(a, currency.code, currency.decimals)),
        createdAt: p.createdAt.toISOString(),
        loginSuspendedAt: p.user?.suspendedAt?.toISOString() ?? null,
        textCode: p.textCode,
      }
    },
  }
}
