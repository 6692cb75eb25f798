import type { Db } from './db.js'

export interface NewParticipant {
  currencyId: string
  kind: 'member' | 'business'
  name: string
  postcode: string
  district: string
  sector?: string
  independent?: boolean
  textCode?: string
  login: { username: string, passwordHash: string }
}

export interface DirectoryFilter { currencyId: string, q?: string, sector?: string, district?: string }

export const participantRepo = (prisma: Db) => ({
  /** A participant, its account and its login, created together. */
  create: async (p: NewParticipant) => await prisma.participant.create({
    data: {
      currencyId: p.currencyId, kind: p.kind, name: p.name, postcode: p.postcode, district: p.district,
      sector: p.sector ?? null, independent: p.independent ?? null, textCode: p.textCode ?? null,
      accounts: { create: [{ currencyId: p.currencyId, floor: '0' }] },
      user: {
        create: {
          username: p.login.username, passwordHash: p.login.passwordHash, role: p.kind, name: p.name,
          currencyId: p.currencyId,
        },
      },
    },
    include: { accounts: { select: { id: true } } },
  }),

  byId: async (id: string) => await prisma.participant.findUnique({
    where: { id },
    include: { accounts: { orderBy: { createdAt: 'asc' } }, currency: { select: { code: true } }, user: { select: { id: true, username: true, suspendedAt: true, tokensRevokedBefore: true } } },
  }),

  /** The public business directory, keyset-paginated on (name, id). */
  directory: async (f: DirectoryFilter, after: { name: string, id: string } | null, limit: number) =>
    await prisma.participant.findMany({
      where: {
        currencyId: f.currencyId,
        kind: 'business',
        // Prisma's contains is ILIKE '%q%' with q as given: its wildcards are escaped, so q is text, not a pattern
        ...(f.q != null ? { name: { contains: f.q.replace(/[\\%_]/g, '\\$&'), mode: 'insensitive' as const } } : {}),
        ...(f.sector != null ? { sector: f.sector } : {}),
        ...(f.district != null ? { district: f.district } : {}),
        ...(after != null
          ? { OR: [{ name: { gt: after.name } }, { name: after.name, id: { gt: after.id } }] }
          : {}),
      },
      orderBy: [{ name: 'asc' }, { id: 'asc' }],
      take: limit + 1,
      select: { id: true, name: true, sector: true, district: true, independent: true, textCode: true },
    }),
})
