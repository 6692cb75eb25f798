import type { Socket } from 'node:net'
import pg from 'pg'
import t from 'tap'
import { buildTestApp } from '../helper.js'

// A client checked out of the service's pool, between two queries, whose server session is ended (a database
// restart or an immediate shutdown does this to every session): the client emits 'error' on itself, which with no
// listener would end the process. The service must survive it, and the pool must not hand the dead client out again.
t.test('a checked-out connection that loses its server does not end the process', async (t) => {
  const ctx = await buildTestApp(t)
  const client = await ctx.app.pool.connect()
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid
  // the socket's close, not the client's 'error': a listener of the test's own on the client would hide the crash
  const socket = (client as unknown as { connection: { stream: Socket } }).connection.stream
  const closed = new Promise<void>((resolve) => { socket.once('close', () => { resolve() }) })
  const admin = new pg.Client({ connectionString: ctx.db.url })
  await admin.connect()
  t.teardown(async () => { await admin.end() })
  t.equal((await admin.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [pid])).rows[0].ok, true)
  await closed
  await new Promise((resolve) => setImmediate(resolve))
  t.not(client.listenerCount('error'), 0, 'the service listens for the error itself')
  await t.rejects(client.query('SELECT 1'), 'its next query fails, for its caller to answer')
  client.release()
  const again = await ctx.app.pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
  t.not(again.rows[0].pid, pid, 'the pool hands out a live connection afterwards')
  t.equal((await ctx.call('GET', '/ready')).status, 200, 'and the service is ready')
})
