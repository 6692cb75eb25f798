import { defineConfig } from 'prisma/config'

// DATABASE_URL may be unset (generate needs no database); env('DATABASE_URL') would make generate fail then.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? '' },
})
