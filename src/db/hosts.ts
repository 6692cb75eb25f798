import pg from 'pg'

// Several database hosts in one DATABASE_URL, the way libpq reads them:
//   postgresql://user:secret@db1:5432,db2:5432,db3/circulate?target_session_attrs=read-write
// node-postgres reads only one host, so this module finds the host to use itself. With target_session_attrs
// read-write (the default when there is more than one host: the service writes) a host is used only while it
// accepts writes (`SHOW transaction_read_only` is off, as libpq checks); after a failover the next connection
// finds the new primary. With `any`, the first host that answers is used. One host without target_session_attrs
// is passed to pg unchanged (no extra round trip).

export interface HostPort { host: string, port: number }
export type SessionAttrs = 'any' | 'read-write'

export interface ParsedUrl {
  hosts: HostPort[]
  /** target_session_attrs, or the default for the number of hosts */
  attrs: SessionAttrs
  /** whether the URL needs this module (more than one host, or target_session_attrs set) */
  multi: boolean
  /** the same URL for one host (target_session_attrs removed: pg does not know it) */
  urlFor: (h: HostPort) => string
}

const URL_RE = /^(postgres(?:ql)?:\/\/)(?:([^@/?#]*)@)?([^/?#]*)(.*)$/

/** Splits a (possibly multi-host) PostgreSQL URL. Throws on a malformed host list. */
export function parseDatabaseUrl (url: string): ParsedUrl {
  const m = URL_RE.exec(url)
  if (m == null) throw new Error('DATABASE_URL must start with postgres:// or postgresql://')
  const [, scheme, userinfo, hostList, rest] = m as unknown as [string, string, string | undefined, string, string]
  const hosts: HostPort[] = hostList === ''
    ? [{ host: 'localhost', port: 5432 }]
    : hostList.split(',').map(part => {
      // [v6]:port, [v6], host:port, host
      const v6 = /^\[([^\]]+)\](?::(\d*))?$/.exec(part)
      const v4 = /^([^:[\]]*)(?::(\d*))?$/.exec(part)
      const hit = v6 ?? v4
      if (hit == null) throw new Error(`DATABASE_URL: cannot read the host "${part}"`)
      const port = hit[2] == null || hit[2] === '' ? 5432 : Number(hit[2])
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`DATABASE_URL: bad port in "${part}"`)
      return { host: hit[1] === '' ? 'localhost' : hit[1]!, port }
    })
  // the query string: take target_session_attrs out (pg does not know it)
  const q = rest.indexOf('?')
  const pathPart = q < 0 ? rest : rest.slice(0, q)
  const params = new URLSearchParams(q < 0 ? '' : rest.slice(q + 1))
  const asked = params.get('target_session_attrs')
  params.delete('target_session_attrs')
  let attrs: SessionAttrs
  if (asked == null) attrs = hosts.length > 1 ? 'read-write' : 'any'
  else if (asked === 'read-write' || asked === 'primary') attrs = 'read-write'
  else if (asked === 'any') attrs = 'any'
  else throw new Error(`DATABASE_URL: target_session_attrs=${asked} is not supported (read-write, primary or any)`)
  const query = params.toString()
  const hostText = (h: HostPort) => `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`
  return {
    hosts,
    attrs,
    multi: hosts.length > 1 || asked != null,
    urlFor: h => `${scheme}${userinfo != null ? `${userinfo}@` : ''}${hostText(h)}${pathPart}${query !== '' ? `?${query}` : ''}`,
  }
}

/** An error the service maps to 503 (SQLSTATE 08001: the client could not establish a connection). */
export class NoHostError extends Error {
  code = '08001'
  constructor (message: string, readonly causes: unknown[] = []) { super(message) }
}

export interface HostEvents {
  /** the host in use changed (first pick, failover) */
  onSwitch?: (to: HostPort, from: HostPort | null) => void
}

/**
 * Finds and remembers the host to connect to. Concurrent lookups share one probe; a connection that finds its
 * host gone or read-only forgets it, so the next one looks again.
 */
export class HostResolver {
  private current: HostPort | null = null
  private probing: Promise<HostPort> | null = null
  readonly parsed: ParsedUrl

  constructor (url: string, private readonly probeTimeoutMs = 2000, private readonly events: HostEvents = {}) {
    this.parsed = parseDatabaseUrl(url)
  }

  get hosts (): HostPort[] { return this.parsed.hosts }
  get attrs (): SessionAttrs { return this.parsed.attrs }
  /** the host new connections go to, or null until one was found (or after it was lost) */
  get active (): HostPort | null { return this.current }

  async pick (): Promise<HostPort> {
    if (this.current != null) return this.current
    this.probing ??= this.probe().finally(() => { this.probing = null })
    return await this.probing
  }

  /** The host failed (refused, dropped, read-only): the next pick looks again. */
  forget (h: HostPort): void {
    if (this.current != null && this.current.host === h.host && this.current.port === h.port) this.current = null
  }

  /** Tries every host at once; the first in the list that qualifies wins (libpq's order). */
  private async probe (): Promise<HostPort> {
    const results = await Promise.all(this.hosts.map(async h => {
      const c = new pg.Client({ connectionString: this.parsed.urlFor(h), connectionTimeoutMillis: this.probeTimeoutMs })
      c.on('error', () => {})
      try {
        await c.connect()
        if (this.attrs === 'read-write' && !(await writable(c))) return { h, ok: false, err: new Error(`${h.host}:${h.port} is read-only`) }
        return { h, ok: true, err: null }
      } catch (err) {
        return { h, ok: false, err }
      } finally {
        await c.end().catch(() => {})
      }
    }))
    const hit = results.find(r => r.ok)
    if (hit == null) {
      const why = results.map(r => `${r.h.host}:${r.h.port}: ${(r.err as Error).message}`).join('; ')
      throw new NoHostError(`no ${this.attrs === 'read-write' ? 'writable ' : ''}database host (${why})`, results.map(r => r.err))
    }
    const from = this.current
    this.current = hit.h
    this.events.onSwitch?.(hit.h, from)
    return hit.h
  }
}

/** libpq's read-write test: the session accepts writes by default. */
export async function writable (c: Pick<pg.ClientBase, 'query'>): Promise<boolean> {
  const r = await c.query<{ transaction_read_only: string }>('SHOW transaction_read_only')
  return r.rows[0]?.transaction_read_only === 'off'
}

/**
 * A pg.Client class whose connections go to the resolver's current host. Passed to pg.Pool as `Client`, so
 * every new pooled connection is placed afresh; a connection that fails forgets the host.
 */
export function clientFor (resolver: HostResolver): typeof pg.Client {
  return class FailoverClient extends pg.Client {
    private placed: HostPort | null = null

    // pg-pool calls connect(callback); both forms are kept
    override connect (): Promise<pg.Client>
    override connect (callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void
    override connect (callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): Promise<pg.Client> | void {
      const run = async (): Promise<pg.Client> => {
        const h = await resolver.pick()
        this.placed = h
        const self = this as unknown as { host: string, port: number, connectionParameters: { host: string, port: number } }
        self.host = h.host; self.port = h.port
        self.connectionParameters.host = h.host; self.connectionParameters.port = h.port
        try {
          await super.connect()
          if (resolver.attrs === 'read-write' && !(await writable(this))) {
            await this.end().catch(() => {})
            throw new NoHostError(`${h.host}:${h.port} is no longer writable`)
          }
        } catch (err) {
          resolver.forget(h)
          throw err
        }
        // a connection that drops later (the host died) makes the next connection look again
        this.once('error', () => { if (this.placed != null) resolver.forget(this.placed) })
        return this
      }
      if (callback == null) return run()
      const cb = callback as (err: Error | null, c?: pg.Client) => void
      run().then(c => { cb(null, c) }, (err: Error) => { cb(err) })
    }

    override query (...args: unknown[]): any {
      const r: unknown = (pg.Client.prototype.query as (...a: unknown[]) => unknown).apply(this, args)
      // a session on a host that turned read-only (it was demoted) is useless: close it, look again
      if (r != null && typeof (r as Promise<unknown>).catch === 'function' && typeof (r as Promise<unknown>).then === 'function') {
        return (r as Promise<unknown>).catch((err: { code?: string }) => {
          if (err?.code === '25006' && this.placed != null) {
            resolver.forget(this.placed)
            this.end().catch(() => {})
          }
          throw err
        })
      }
      return r
    }
  } as unknown as typeof pg.Client
}

/**
 * pg settings for a (possibly multi-host) URL: the URL itself for one plain host, else a Client class that
 * follows the resolver. Also returns the resolver (null for one plain host) so callers can report the host.
 */
export function connectionOptions (url: string, probeTimeoutMs = 2000, events: HostEvents = {}): { config: pg.PoolConfig, resolver: HostResolver | null } {
  const parsed = parseDatabaseUrl(url)
  if (!parsed.multi) return { config: { connectionString: url }, resolver: null }
  const resolver = new HostResolver(url, probeTimeoutMs, events)
  return { config: { connectionString: parsed.urlFor(parsed.hosts[0]!), Client: clientFor(resolver) }, resolver }
}

/** One connected client on the right host (migrations, tools). */
export async function connectClient (url: string, probeTimeoutMs = 2000): Promise<pg.Client> {
  const { config } = connectionOptions(url, probeTimeoutMs)
  const Client = (config as { Client?: typeof pg.Client }).Client ?? pg.Client
  const c = new Client({ connectionString: config.connectionString })
  await c.connect()
  return c
}
