import pg from 'pg'

// Long-polling on payment requests, across instances: a trigger on payment_request NOTIFYs channel
// 'payment_request' with the request id whenever its status changes (delivered when the transaction commits, so
// a waiter never sees a payment that is later rolled back). Each instance holds ONE listening connection, opened
// on the first wait, and wakes the waiters of that id. The waiter re-reads the request from the database: a
// notification only says "look again", so a lost one costs at most the wait, never a wrong answer.
//
// If the listening connection fails, every waiter is woken (each re-reads, and answers what it finds) and the
// next wait opens a new connection.

export interface RequestWatch {
  /**
   * Resolves when the request's status may have changed, after `ms`, or when `signal` aborts, whichever is first.
   * `ready` is called once the listener is in place, before waiting: re-read there, so a change committed between
   * the caller's first read and the LISTEN is not missed. If it returns true the wait ends at once.
   */
  wait: (id: string, ms: number, ready: () => Promise<boolean>, signal?: AbortSignal) => Promise<void>
  close: () => Promise<void>
  /** waiters now (for tests and metrics) */
  size: () => number
}

export const CHANNEL = 'payment_request'

export function requestWatch (connection: pg.ClientConfig, opts: { maxWaiters: number, log?: { warn: (o: object, m: string) => void } }): RequestWatch {
  const waiters = new Map<string, Set<() => void>>()
  let count = 0
  let client: pg.Client | null = null
  let connecting: Promise<pg.Client> | null = null
  let closed = false

  const wakeAll = () => { for (const set of waiters.values()) for (const w of [...set]) w() }

  const listen = async (): Promise<pg.Client> => {
    if (client != null) return client
    if (connecting != null) return await connecting
    connecting = (async () => {
      const c = new pg.Client({ ...connection, application_name: 'circulate-listen' })
      const lost = (err?: Error) => {
        if (client === c) client = null
        if (err != null && !closed) opts.log?.warn({ err }, 'payment request listener lost; waiters re-read')
        wakeAll()
      }
      c.on('error', lost)
      c.on('end', () => lost())
      c.on('notification', (n) => {
        if (n.channel !== CHANNEL || n.payload == null) return
        for (const w of [...(waiters.get(n.payload) ?? [])]) w()
      })
      try {
        await c.connect()
        await c.query(`LISTEN ${CHANNEL}`)
      } catch (err) {
        c.end().catch(() => {})
        throw err
      }
      if (closed) { await c.end().catch(() => {}); throw new Error('closed') }
      client = c
      return c
    })()
    try { return await connecting } finally { connecting = null }
  }

  return {
    async wait (id, ms, ready, signal) {
      if (closed || ms <= 0 || count >= opts.maxWaiters) return
      let wake!: () => void
      const woken = new Promise<void>((resolve) => { wake = resolve })
      const timer: { t?: NodeJS.Timeout } = {}
      const done = () => {
        const set = waiters.get(id)
        if (set?.delete(done)) { count--; if (set.size === 0) waiters.delete(id) }
        clearTimeout(timer.t)
        signal?.removeEventListener('abort', done)
        wake()
      }
      let set = waiters.get(id)
      if (set == null) { set = new Set(); waiters.set(id, set) }
      set.add(done)
      count++
      signal?.addEventListener('abort', done)
      timer.t = setTimeout(done, ms)
      try {
        await listen()
        if (await ready()) done()
      } catch {
        // no listener (the database is away): the caller re-reads now rather than sleeping blind
        done()
      }
      await woken
    },
    async close () {
      closed = true
      wakeAll()
      const c = client ?? (connecting != null ? await connecting.catch(() => null) : null)
      client = null
      await c?.end().catch(() => {})
    },
    size: () => count,
  }
}
