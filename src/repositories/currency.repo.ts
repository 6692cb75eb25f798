import type { Db } from './db.js'

export interface NewCurrency {
  code: string, name: string, backing: string, decimals: number
  feeText: string, feeApp: string, feeOnline: string, feeApi: string, feeTill: string
  redemptionFee: string, localAreas: string[], timeZone: string
}

const withSystemAccounts = { accounts: { where: { systemKind: { not: null } }, select: { id: true, systemKind: true } } } as const

export const currencyRepo = (prisma: Db) => ({
  /** A currency and its system accounts, created together. */
  create: async (c: NewCurrency) => await prisma.currency.create({
    data: {
      ...c,
      accounts: {
        // issuance has no floor: its balance is minus everything issued and not yet redeemed
        create: [
          { systemKind: 'issuance', floor: null },
          { systemKind: 'fees', floor: '0' },
          { systemKind: 'paper', floor: '0' },
        ],
      },
    },
    include: withSystemAccounts,
  }),
  byCode: async (code: string) => await prisma.currency.findUnique({ where: { code }, include: withSystemAccounts }),
  byId: async (id: string) => await prisma.currency.findUnique({ where: { id }, include: withSystemAccounts }),
})

export type CurrencyWithSystem = NonNullable<Awaited<ReturnType<ReturnType<typeof currencyRepo>['byCode']>>>
