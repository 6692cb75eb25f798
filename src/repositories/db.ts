import type { Prisma } from '../generated/prisma/client.js'

/**
 * What a repository runs on: the client, or an open interactive transaction (PrismaClient is assignable to it),
 * so an action and its audit row can be written in one transaction.
 */
export type Db = Prisma.TransactionClient
