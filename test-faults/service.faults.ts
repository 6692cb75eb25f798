import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { freePort } from '../support/ports.js'
import { startPostgres } from '../support/postgres.js'
import { ensureBuilt, startService, type Service } from '../support/service.js'

// startService (support/service.ts) counts a service as ready only when its own process listens on the port: a
// server of someone else's answering /ready 200 there (another suite's service that took the free port first) is
// not taken for it. On a port the caller asked for, that is an error naming EADDRINUSE; on a free port it picked,
// startService starts the service again on another.
t.test('a /ready answered by another process on the port is not taken for the service', async (t) => {
  ensureBuilt()
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-service-'))
  const server = await startPostgres()
  const port = await freePort()
  let asked = 0
  let svc: Service | null = null
  const other = http.createServer((req, res) => { asked++; res.writeHead(req.url === '/ready' ? 200 : 404).end('{"status":"ok"}') })
  await new Promise<void>(resolve => other.listen(port, '127.0.0.1', resolve))
  t.teardown(async () => {
    await svc?.stop()
    await new Promise(resolve => other.close(resolve))
    await server.stop()
    fs.rmSync(work, { recursive: true, force: true })
  })
  const databaseUrl = await server.createDatabase('circulate_service')
  await t.rejects(startService({ databaseUrl, port, logFile: path.join(work, 'service.log'), dataDir: path.join(work, 'data') }),
    { message: new RegExp(`^service port ${port} was taken by another process \\(EADDRINUSE\\)`) })
  t.ok(asked > 0, `the other server answered /ready ${asked} times meanwhile, and was not taken for the service`)

  svc = await startService({ databaseUrl, logFile: path.join(work, 'service2.log'), dataDir: path.join(work, 'data') })
  t.not(svc.port, port, 'on a port of its own choosing, the service is elsewhere')
  t.equal((await fetch(`${svc.url}/ready`)).status, 200)
})
