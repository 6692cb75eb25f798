import http from 'node:http'

// A small Server-Sent Events client for tests: real HTTP, parses messages as they arrive.
export interface SseMessage { id: string | null, event: string, data: any }

export interface SseStream {
  status: number
  headers: http.IncomingHttpHeaders
  messages: SseMessage[]
  comments: string[]
  /** resolves once at least n messages have arrived (rejects after timeoutMs) */
  waitFor: (n: number, timeoutMs?: number) => Promise<SseMessage[]>
  waitForComment: (re: RegExp, timeoutMs?: number) => Promise<void>
  ended: Promise<void>
  close: () => void
  body: string
}

export async function openSse (base: string, path: string, opts: { token?: string | null, lastEventId?: string } = {}): Promise<SseStream> {
  const headers: Record<string, string> = { accept: 'text/event-stream' }
  if (opts.token != null) headers.authorization = `Bearer ${opts.token}`
  if (opts.lastEventId != null) headers['last-event-id'] = opts.lastEventId
  return await new Promise((resolve, reject) => {
    const req = http.get(new URL(path, base), { headers }, (res) => {
      let buf = ''
      const waiters = new Set<() => void>()
      let endResolve!: () => void
      const ended = new Promise<void>(resolve => { endResolve = resolve })
      const s: SseStream = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        messages: [],
        comments: [],
        body: '',
        ended,
        close: () => { req.destroy() },
        waitFor: async (n, timeoutMs = 5000) => await until(() => s.messages.length >= n, timeoutMs, `${n} messages (have ${s.messages.length})`).then(() => s.messages.slice()),
        waitForComment: async (re, timeoutMs = 5000) => { await until(() => s.comments.some(c => re.test(c)), timeoutMs, `a comment ${re}`) },
      }
      const until = async (ok: () => boolean, timeoutMs: number, what: string) => {
        if (ok()) return
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`timed out waiting for ${what}`)) }, timeoutMs)
          const check = () => { if (ok()) { clearTimeout(timer); waiters.delete(check); resolve() } }
          waiters.add(check)
        })
      }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        s.body += chunk
        buf += chunk
        let i: number
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i)
          buf = buf.slice(i + 2)
          let id: string | null = null
          let event = 'message'
          const data: string[] = []
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) { s.comments.push(line.slice(1).trim()); continue }
            const k = line.indexOf(':')
            const field = k < 0 ? line : line.slice(0, k)
            const value = k < 0 ? '' : line.slice(k + 1).replace(/^ /, '')
            if (field === 'id') id = value
            else if (field === 'event') event = value
            else if (field === 'data') data.push(value)
          }
          if (data.length > 0) s.messages.push({ id, event, data: JSON.parse(data.join('\n')) })
        }
        for (const w of [...waiters]) w()
      })
      res.on('end', endResolve)
      res.on('close', endResolve)
      res.on('error', () => {})
      resolve(s)
    })
    req.on('error', reject)
  })
}
