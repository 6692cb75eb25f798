import net from 'node:net'

// A minimal HTTP/1.1 client over a raw socket: it sends exactly the bytes it is given (invalid ones included,
// which fetch and node:http refuse to send) and reads the whole response until the server closes (or, for an
// event stream, only its head).
export interface RawResponse { status: number, headers: Record<string, string>, body: string }

export async function rawRequest (port: number, bytes: Buffer, timeoutMs = 15_000): Promise<RawResponse | { error: string }> {
  return await new Promise((resolve) => {
    const chunks: Buffer[] = []
    const socket = net.connect(port, '127.0.0.1')
    const timer = setTimeout(() => { socket.destroy(); resolve({ error: 'timeout' }) }, timeoutMs)
    // write without half-closing: node's HTTP server drops requests still in progress when the client sends FIN
    socket.on('connect', () => { socket.write(bytes) })
    socket.on('data', (c) => {
      chunks.push(c)
      // a complete response ends the exchange even when the server keeps the connection open
      const r = parse(Buffer.concat(chunks), true)
      if (r != null && !('error' in r)) { clearTimeout(timer); socket.destroy(); resolve(r) }
    })
    socket.on('error', (err) => { clearTimeout(timer); resolve(chunks.length > 0 ? parse(Buffer.concat(chunks))! : { error: String(err) }) })
    socket.on('close', () => { clearTimeout(timer); resolve(chunks.length > 0 ? parse(Buffer.concat(chunks))! : { error: 'closed without a response' }) })
  })
}

function parse (buf: Buffer, onlyIfComplete = false): RawResponse | { error: string } | null {
  // skip interim 1xx responses (Expect: 100-continue)
  while (/^HTTP\/1\.[01] 1\d\d /.test(buf.subarray(0, 16).toString('latin1'))) {
    const i = buf.indexOf('\r\n\r\n')
    if (i < 0) break
    buf = buf.subarray(i + 4)
  }
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return onlyIfComplete ? null : { error: `incomplete response: ${JSON.stringify(buf.toString('latin1').slice(0, 200))}` }
  const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
  if (m == null) return onlyIfComplete ? null : { error: `bad status line ${JSON.stringify(statusLine)}` }
  const headers: Record<string, string> = {}
  for (const l of lines) { const i = l.indexOf(':'); if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim() }
  let body = buf.subarray(end + 4)
  // an event stream (GET .../events) never ends by design: its head is the whole answer this client judges
  if (/^text\/event-stream/.test(headers['content-type'] ?? '')) return { status: Number(m[1]), headers, body: '' }
  if (onlyIfComplete) {
    const length = headers['content-length']
    if (length != null) { if (body.length < Number(length)) return null } else if (!/chunked/i.test(headers['transfer-encoding'] ?? '') || body.indexOf('0\r\n\r\n') < 0) return null
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = []
    let at = 0
    for (;;) {
      const nl = body.indexOf('\r\n', at)
      if (nl < 0) break
      const size = parseInt(body.subarray(at, nl).toString('latin1'), 16)
      if (!(size > 0)) break
      parts.push(body.subarray(nl + 2, nl + 2 + size))
      at = nl + 2 + size + 2
    }
    body = Buffer.concat(parts)
  }
  return { status: Number(m[1]), headers, body: body.toString('utf8') }
}

/** The bytes of one request, with a correct Content-Length and Connection: close. */
export function requestBytes (method: string, path: string, headers: Record<string, string>, body: string | null): Buffer {
  const b = body == null ? null : Buffer.from(body, 'utf8')
  const head = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ...(b != null ? [`Content-Length: ${b.length}`] : [])].join('\r\n')
  // header values go out as UTF-8 bytes, as a careless client would send them
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'utf8'), b ?? Buffer.alloc(0)])
}
