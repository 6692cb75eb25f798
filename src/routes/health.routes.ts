import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { transportProblems } from '../schemas/common.js'

const Status = Type.Object({ status: Type.String() })

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health', {
    config: { public: true },
    schema: { tags: ['ops'], summary: 'The process is up', response: { 200: Status, ...transportProblems() } },
    logLevel: 'warn',
  }, async () => ({ status: 'ok' }))

  app.get('/ready', {
    config: { public: true },
    schema: { tags: ['ops'], summary: 'The database is reachable', response: { 200: Status, ...transportProblems() } },
    logLevel: 'warn',
  }, async () => {
    await app.pool.query('SELECT 1')
    return { status: 'ready' }
  })
}
export default routes
