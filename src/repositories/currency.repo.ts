import type { Db } from './db.js'

export interface NewCurrency {
  code: string, name: string, backing: string, decimals: number
  feeText: string, feeApp: string, feeOnline: string, feeApi: string, feeTill: string
  redemptionFee: string, localAreas: string[], timeZone: string
}

const withSystemAccounts = { accounts: { where: { systemKind: { not: null } }, select: { id: true, systemKind: true } } } as const

/**
 * A system account's limits are rules of the currency, set when it is made and never changed (account.service.ts
 * update): every one is active. The issuance account's balance is minus the sterling reserve (everything issued
 * and not yet paid out), so it has no floor, and its ceiling of zero keeps the reserve from falling below zero: a
 * redemption, buyback or withdrawal pays out only sterling that was received. Without it, money a member or
 * business spent on credit (an account with a floor below zero) could be redeemed for sterling nobody paid in.
 * The fee and paper accounts' floor of zero keeps fees and notes paid in within what was charged and sold; they
 * have no ceiling.
 */
export const SYSTEM_ACCOUNT_RULES: Record<string, { floor: string | null, ceiling: string | null }> = {
  issuance: { floor: null, ceiling: '0' },
  fees: { floor: '0', ceiling: null },
  paper: { floor: '0', ceiling: null },
}

export const currencyRepo = (prisma: Db) => ({
  /** A currency and its system accounts, created together, with their rules (SYSTEM_ACCOUNT_RULES). */
  create: async (c: NewCurrency) => await prisma.currency.create({
    data: {
      ...c,
      accounts: {
        create: Object.entries(SYSTEM_ACCOUNT_RULES).map(([systemKind, r]) => ({ systemKind, floor: r.floor, ceiling: r.ceiling })),
      },
    },
    include: withSystemAccounts,
  }),
  byCode: async (code: string) => await prisma.currency.findUnique({ where: { code }, include: withSystemAccounts }),
  byId: async (id: string) => await prisma.currency.findUnique({ where: { id }, include: withSystemAccounts }),
})

export type CurrencyWithSystem = NonNullable<Awaited<ReturnType<ReturnType<typeof currencyRepo>['byCode']>>>
