import type pg from 'pg'
import type { ReplicaReads } from '../db/replica.js'
import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import { auditRecord, type RequestMeta } from '../domain/access.js'
import { csvDocument } from '../domain/csv.js'
import { CURSOR_INT, decodeCursor, encodeCursor } from '../domain/cursor.js'
import { DomainError } from '../domain/errors.js'
import { formatMoney, Money, parseLimit } from '../domain/money.js'
import { FIRST_INSTANT, toMillis } from '../domain/periods.js'
import { isIssuerOf, type Principal } from '../domain/principal.js'
import { accountRepo, statementRows } from '../repositories/account.repo.js'
import { SYSTEM_ACCOUNT_RULES } from '../repositories/currency.repo.js'
import { DEFAULT_PAGE } from '../schemas/common.js'
import { auditRepo } from '../repositories/audit.repo.js'
import type { AccountPatch, Channel, StatementQuery, TransferKind } from '../schemas/ledger.js'
import type { CurrencyService } from './currency.service.js'

/** the first part of a newest-first statement's cursor */
const NEWEST = { test: (x: string) => x === 'newest' }

type AccountRow = Prisma.AccountGetPayload<object>

export function accountView (a: AccountRow, currency: string, decimals: number) {
  const money = (v: Prisma.Decimal | null) => v == null ? null : formatMoney(v.toString(), decimals)
  return {
    id: a.id, currency, participantId: a.participantId, systemKind: a.systemKind,
    balance: formatMoney(a.balance.toString(), decimals), floor: money(a.floor), ceiling: money(a.ceiling),
    status: a.status as 'active' | 'frozen' | 'closed', createdAt: a.createdAt.toISOString(), updatedAt: a.updatedAt.toISOString(),
  }
}

/**
 * pools.pool: statements as JSON pages; pools.readPool: statements as CSV (an expensive read, see plugins/db.ts),
 * or pools.reads, which sends them to a caught-up replica (db/replica.ts).
 */
export function accountService (prisma: PrismaClient, currencies: CurrencyService, pools: { pool: Pick<pg.Pool, 'query'>, readPool: Pick<pg.Pool, 'query'>, reads?: ReplicaReads },
  opts: { statementWindow: number }) {
  const repo = accountRepo(prisma)

  /** Loads an account the principal may read: its owner or an issuer of its currency; anyone else gets 404. */
  async function readable (principal: Principal | null, id: string) {
    if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
    if (principal.role === 'researcher') throw new DomainError('FORBIDDEN', 'researchers see reports and exports, not accounts')
    const a = await repo.byId(id)
    if (a == null || !(isIssuerOf(principal, a.currencyId) ||
        (a.participantId != null && a.participantId === principal.participantId))) {
      throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found')
    }
    return { account: a, currency: await currencies.resolveId(a.currencyId) }
  }

  return {
    readable,

    async get (principal: Principal | null, id: string) {
      const { account, currency } = await readable(principal, id)
      return accountView(account, currency.code, currency.decimals)
    },

    async update (principal: Principal | null, id: string, patch: AccountPatch, meta?: RequestMeta) {
      const { account, currency } = await readable(principal, id)
      currencies.assertIssuer(principal, account.currencyId)
      const lim = (v: string | null | undefined, field: string) =>
        v === undefined ? undefined : v === null ? null : parseLimit(v, currency.decimals, field).toFixed()
      // A system account's limits and status are rules of the currency, not settings (SYSTEM_ACCOUNT_RULES): a
      // lifted paper floor would let notes be paid in that were never sold, a frozen fee account refuse every payment
      // with a fee. A PATCH may only set them to what the rules say, which puts right an account changed by hand.
      if (account.systemKind != null) {
        const rule = SYSTEM_ACCOUNT_RULES[account.systemKind]
        const asRule = (v: string | null) => v == null ? null : new Money(v).toFixed()
        const floor = lim(patch.floor, 'floor')
        const ceiling = lim(patch.ceiling, 'ceiling')
        const off = (patch.status !== undefined && patch.status !== 'active') ||
          (floor !== undefined && floor !== asRule(rule.floor)) ||
          (ceiling !== undefined && ceiling !== asRule(rule.ceiling))
        if (off) {
          throw new DomainError('FORBIDDEN', `the ${account.systemKind} account is the currency's own: it is active, with ` +
            `${rule.floor == null ? 'no floor' : `a floor of ${rule.floor}`} and ${rule.ceiling == null ? 'no ceiling' : `a ceiling of ${rule.ceiling}`}`)
        }
      }
      try {
        const change = { status: patch.status, floor: lim(patch.floor, 'floor'), ceiling: lim(patch.ceiling, 'ceiling') }
        const a = await prisma.$transaction(async (tx) => {
          // The account as this change finds it, locked until it commits: another change made since the read above
          // (an issuer freezing it while this one waited) is what the audit row's `before` shows, and what is closed.
          await tx.$queryRaw`SELECT 1 FROM account WHERE id = ${id}::uuid FOR NO KEY UPDATE`
          const current = (await accountRepo(tx).byId(id))!
          const before = accountView(current, currency.code, currency.decimals)
          if (patch.status === 'closed' && current.status !== 'closed') await assertClosable(tx, current)
          const a = await accountRepo(tx).update(id, change)
          await auditRepo(tx).insert(auditRecord(principal, 'account.update', meta, {
            target: id, currencyId: account.currencyId,
            detail: { before: { status: before.status, floor: before.floor, ceiling: before.ceiling }, change: patch },
          }))
          return a
        })
        return accountView(a, currency.code, currency.decimals)
      } catch (err) {
        // CHECK constraints: the balance already sits outside the requested limits, or floor > ceiling.
        if (String((err as Error).message).includes('account_') || (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2004')) {
          throw new DomainError('INVALID_LIMITS', 'the new limits would put the current balance outside them, or floor is above ceiling')
        }
        throw err
      }
    },

    async statement (principal: Principal | null, id: string, q: StatementQuery) {
      const { account, currency } = await readable(principal, id)
      const newest = q.order === 'newest'
      // a newest-first cursor is marked, so that one made in the other order is refused rather than read the wrong way
      const after = decodeCursor(q.cursor, newest ? [NEWEST, CURSOR_INT] : [CURSOR_INT])?.at(-1)
      const from = parseTime(q.from, 'from')
      const to = parseTime(q.to, 'to')
      const limit = q.limit ?? DEFAULT_PAGE
      const src = q.format === 'csv' && pools.reads != null ? await pools.reads.choose() : null
      const { rows, resumeAfter } = await statementRows(q.format === 'csv' ? (src?.pool ?? pools.readPool) : pools.pool, {
        accountId: account.id, from, to, after: after == null ? undefined : BigInt(after), newest,
      }, limit, opts.statementWindow)
      const page = rows.slice(0, limit)
      const items = page.map(e => ({
        entryId: e.id,
        transferId: e.transferId,
        kind: e.kind as TransferKind,
        channel: e.channel as Channel | null,
        counterparty: e.fromAccountId === account.id ? e.toAccountId : e.fromAccountId,
        amount: formatMoney(e.amount, currency.decimals),
        balanceAfter: formatMoney(e.balanceAfter, currency.decimals),
        reference: e.reference,
        createdAt: e.createdAt.toISOString(),
      }))
      const last = page.at(-1)
      // a page with a time range that looked at its whole window without filling up goes on after the window
      const resume = rows.length > limit && last != null ? last.id : resumeAfter
      const nextCursor = resume != null ? encodeCursor(newest ? ['newest', resume] : [resume]) : null
      if (q.format === 'csv') {
        const csv = csvDocument(['entryId', 'transferId', 'createdAt', 'kind', 'channel', 'counterparty', 'amount', 'balanceAfter', 'reference'], items)
        return { csv, nextCursor, asOf: (src?.asOf ?? new Date()).toISOString() }
      }
      return { account: account.id, currency: currency.code, items, nextCursor }
    },
  }
}

/**
 * An account may close only when it holds nothing: money in a closed account could never move again, and would
 * stay in the supply the backing covers. Its row is locked until the change commits, so no payment lands between
 * this check and the close (the ledger locks the same row and then sees it closed). A system account never
 * closes: every issuance, fee or paper note of the currency moves through it.
 */
async function assertClosable (tx: Prisma.TransactionClient, account: { id: string, systemKind: string | null }) {
  if (account.systemKind != null) throw new DomainError('FORBIDDEN', `the ${account.systemKind} account is the currency's own and cannot be closed`)
  const [row] = await tx.$queryRaw<Array<{ balance: Prisma.Decimal }>>`SELECT balance FROM account WHERE id = ${account.id}::uuid FOR NO KEY UPDATE`
  if (!row.balance.isZero()) {
    throw new DomainError('ACCOUNT_NOT_EMPTY', 'the account still holds money: move its balance out first (an issuer may pay from any account of its currency), then close it')
  }
}

function parseTime (v: string | undefined, field: string): Date | undefined {
  if (v == null) return undefined
  const d = new Date(toMillis(v))
  // the schema checked the form (RFC 3339); the database has no year 0
  if (Number.isNaN(d.getTime()) || d.getTime() < FIRST_INSTANT) throw new DomainError('INVALID_QUERY', `${field} must be an RFC 3339 time such as 2026-01-31T00:00:00Z`)
  return d
}
export { parseTime }

export type AccountService = ReturnType<typeof accountService>
