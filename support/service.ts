// The service as a child process of the production build, for the benchmark (scripts/bench*.ts) and the
// reliability suite (test-faults/). Everything started here is owned by the caller and stopped by it, so killing it
// harms nothing else on the machine.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './ports.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/**
 * How `npm start` runs the service (package.json's start script): its environment settings and its node options,
 * so the benchmark and the faults suite measure the same process. The heap limits, without which V8 lets the heap
 * balloon under 1,000-item batches (measured: RSS 213 MB without them, 156-168 MB with them), and MALLOC_ARENA_MAX
 * (docs/performance.md, "Memory").
 */
function startScript (): { env: Record<string, string>, args: string[] } {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  const m = /^((?:[A-Z_]+=\S+\s+)*)node\s+(.*?)\s*dist\/server\.js/.exec(pkg.scripts.start)
  if (m == null) return { env: {}, args: [] }
  const env = Object.fromEntries(m[1].split(/\s+/).filter(Boolean).map(kv => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
  return { env, args: m[2].split(/\s+/).filter(Boolean) }
}

/** The node options of `npm start`. */
export const startNodeArgs = (): string[] => startScript().args
/** The environment settings `npm start` puts before node (a service started here gets them too). */
export const startEnv = (): Record<string, string> => startScript().env

/** npm run build: the service runs from dist/ as in production. */
export function buildService (): void {
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stdout}\n${r.stderr}`)
}

/** dist/ must exist; `npm run test:faults` builds first, a direct `npx tap test-faults/x.faults.ts` may not have. */
export function ensureBuilt (): void {
  if (!fs.existsSync(path.join(ROOT, 'dist/server.js'))) buildService()
}

/** The platform issuer every service started here is given (seedEconomy logs in with it). */
export const ISSUER = { username: 'bench-issuer', password: 'bench-issuer-password' }

export interface Service {
  url: string
  port: number
  proc: ChildProcess
  pid: number
  /** resident set size in MB, from /proc */
  rssMb: () => number | null
  /** graceful stop (SIGTERM) and wait for exit */
  stop: () => Promise<void>
  /** kill -9 and wait for exit */
  kill: () => Promise<void>
  exited: Promise<number | null>
}

interface ServiceOptions {
  databaseUrl: string, env?: Record<string, string>, logFile: string, nodeArgs?: string[], port?: number, dataDir: string,
  /** how long to wait for /ready (default 60 s; a loaded machine starting several instances may need more) */
  readyTimeoutMs?: number,
}

/**
 * node dist/server.js as a child process, on `port` or a free one, logging to `logFile`. Resolves once the child
 * itself is listening and its /ready answers. A free port is only free when it was picked: when another process
 * binds it first, the child exits with EADDRINUSE and is started again on another port (not when the caller asked
 * for that port). SCRYPT_COST is lowered (logins only; the payment path never hashes a password) so setting up 1,000
 * logins is quick.
 */
export async function startService (o: ServiceOptions): Promise<Service> {
  for (let attempt = 1; ; attempt++) {
    const started = await spawnService(o, o.port ?? await freePort())
    if ('service' in started) return started.service
    if (!started.addressInUse || o.port != null || attempt === 5) throw started.error
  }
}

async function spawnService (o: ServiceOptions, port: number): Promise<{ service: Service } | { error: Error, addressInUse: boolean }> {
  // the log may hold earlier runs (a restart after kill -9 appends to it): only what this child writes counts
  const from = fs.existsSync(o.logFile) ? fs.statSync(o.logFile).size : 0
  const out = fs.openSync(o.logFile, 'a')
  const proc = spawn(process.execPath, [...startNodeArgs(), ...(o.nodeArgs ?? []), path.join(ROOT, 'dist/server.js')], {
    cwd: ROOT,
    env: {
      ...startEnv(), PATH: process.env.PATH ?? '', NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port),
      DATABASE_URL: o.databaseUrl, DATA_DIR: o.dataDir, ISSUER_USERNAME: ISSUER.username, ISSUER_PASSWORD: ISSUER.password,
      SCRYPT_COST: '1024', TOKEN_TTL_SECONDS: '86400', ...(o.env ?? {}),
    },
    stdio: ['ignore', out, out],
  })
  fs.closeSync(out)
  const exited = new Promise<number | null>(resolve => proc.once('exit', code => resolve(code)))
  const ownLog = () => {
    const fd = fs.openSync(o.logFile, 'r')
    try {
      const buf = Buffer.alloc(Math.max(0, fs.fstatSync(fd).size - from))
      fs.readSync(fd, buf, 0, buf.length, from)
      return buf.toString('utf8')
    } finally { fs.closeSync(fd) }
  }
  const url = `http://127.0.0.1:${port}`
  // Fastify logs the line at info; with LOG_LEVEL above that, the socket itself says whose it is
  const listening = () => ownLog().includes(`Server listening at ${url}"`) || listensOn(proc.pid!, port)
  const gone = () => proc.exitCode != null || proc.signalCode != null
  const readyTimeoutMs = o.readyTimeoutMs ?? 60_000
  const deadline = Date.now() + readyTimeoutMs
  for (;;) {
    if (gone()) {
      await exited
      const addressInUse = ownLog().includes('EADDRINUSE')
      const why = addressInUse ? `port ${port} was taken by another process (EADDRINUSE)` : `exited with ${proc.exitCode ?? proc.signalCode}`
      return { error: new Error(`service ${why} before it was ready; see ${o.logFile}`), addressInUse }
    }
    // Another suite's service may be answering on this port (it took the port first): /ready alone proves nothing;
    // the answer counts once this child is alive and is the one listening on the port.
    let ready = false
    try { ready = (await fetch(`${url}/ready`)).status === 200 } catch {}
    if (ready && listening() && !gone()) break
    if (Date.now() > deadline) {
      const state = listening() ? 'listening, but /ready did not answer 200' : 'not yet listening on its port'
      proc.kill('SIGKILL')
      await exited
      return { error: new Error(`service not ready after ${readyTimeoutMs / 1000} s (${state}); see ${o.logFile}`), addressInUse: false }
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const pid = proc.pid!
  return {
    service: {
      url, port, proc, pid, exited,
      rssMb: () => {
        try {
          const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
          return m == null ? null : Number(m[1]) / 1024
        } catch { return null }
      },
      stop: async () => { if (!gone()) { proc.kill('SIGTERM'); await exited } },
      kill: async () => { if (!gone()) { proc.kill('SIGKILL'); await exited } },
    },
  }
}

/**
 * Whether process `pid` holds the socket listening on `port` (Linux: /proc/net/tcp names the listening socket's
 * inode, /proc/<pid>/fd links to it). For a service whose LOG_LEVEL hides Fastify's "Server listening" line.
 */
function listensOn (pid: number, port: number): boolean {
  try {
    const inodes = new Set<string>()
    const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      if (!fs.existsSync(table)) continue
      for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
        // sl local_address rem_address st ... inode; st 0A is LISTEN
        const c = line.trim().split(/\s+/)
        if (c.length > 9 && c[1].endsWith(local) && c[3] === '0A') inodes.add(`socket:[${c[9]}]`)
      }
    }
    return inodes.size > 0 && fs.readdirSync(`/proc/${pid}/fd`).some(fd => {
      try { return inodes.has(fs.readlinkSync(`/proc/${pid}/fd/${fd}`)) } catch { return false }
    })
  } catch { return false }
}
