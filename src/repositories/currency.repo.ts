import type { Db } from './db.js'

export interface NewCurrency {
  code: string, name: string, backing: string, decimals: number
  feeText: string, feeApp: string, feeOnline: string, feeApi: string, feeTill: string
  redemptionFee: string, localAreas: string[], timeZone: string
}

const withSystemAccounts = { accounts: { where: { systemKind: { not: null } }, select: { id: true, systemKind: true } } } as const

/**
 * A system account's limits are rules of the currency, set when it is made and never changed (account.service.ts
 * update): every one is active with no ceiling; the issuance account has no floor, as its balance is minus
 * everything issued and not yet redeemed; the fee and paper accounts' floor of zero keeps fees and notes paid in
 * within what was charged and sold.
 */
export const SYSTEM_ACCOUNT_RULES: Record<string, { floor: string | null }> = {
  issuance: { floor: null },
  fees: { floor: '0' },
  paper: { floor: '0' },
}

export const currencyRepo = (prisma: Db) => ({
  /** A currency and its system accounts, created together, with their rules (SYSTEM_ACCOUNT_RULES). */
  create: async (c: NewCurrency) => await prisma.currency.create({
    data: {
      ...c,
      accounts: {
        create: Object.entries(SYSTEM_ACCOUNT_RULES).map(([systemKind, r]) => ({ systemKind, floor: r.floor })),
      },
    },
    include: withSystemAccounts,
  }),
  byCode: async (code: string) => await prisma.currency.findUnique({ where: { code }, include: withSystemAccounts }),
  byId: async (id: string) => await prisma.currency.findUnique({ where: { id }, include: withSystemAccounts }),
})

export type CurrencyWithSystem = NonNullable<Awaited<ReturnType<ReturnType<typeof currencyRepo>['byCode']>>>
