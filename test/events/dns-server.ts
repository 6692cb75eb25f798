import dgram from 'node:dgram'
import ipaddr from 'ipaddr.js'

// A name server for tests, over UDP on 127.0.0.1: it answers A and AAAA questions as `answer` says, and can be
// told to stay silent for a name (as a server that never answers does), so tests can point the service's webhook
// resolver at names they control. Just enough of RFC 1035 for one question per query, no compression but the
// answer's pointer back to the question.

export type Answer = string[] | 'nxdomain' | 'silent'

export interface DnsServer {
  /** ip:port, for WEBHOOK_DNS_SERVERS */
  server: string
  /** every question asked, in order */
  asked: Array<{ name: string, type: number }>
  /** resolves once `n` questions for names matching `pattern` have been asked */
  askedFor: (pattern: RegExp, n: number) => Promise<void>
}

const A = 1
const AAAA = 28

export async function dnsServer (t: { teardown: (f: () => Promise<void>) => void }, answer: (name: string) => Answer): Promise<DnsServer> {
  const socket = dgram.createSocket('udp4')
  const asked: DnsServer['asked'] = []
  const waiting: Array<{ pattern: RegExp, n: number, resolve: () => void }> = []
  socket.on('message', (msg, from) => {
    let at = 12
    const labels: string[] = []
    while (msg[at] !== 0) { labels.push(msg.subarray(at + 1, at + 1 + msg[at]).toString('latin1')); at += 1 + msg[at] }
    at += 1
    const type = msg.readUInt16BE(at)
    const question = msg.subarray(12, at + 4)
    const name = labels.join('.').toLowerCase()
    asked.push({ name, type })
    for (const w of waiting.slice()) {
      if (asked.filter(q => w.pattern.test(q.name)).length >= w.n) { waiting.splice(waiting.indexOf(w), 1); w.resolve() }
    }
    const a = answer(name)
    if (a === 'silent') return
    const records = a === 'nxdomain' ? [] : a.filter(ip => (type === A ? ipaddr.IPv4.isValid(ip) : type === AAAA && ipaddr.IPv6.isValid(ip) && !ipaddr.IPv4.isValid(ip)))
    const header = Buffer.alloc(12)
    msg.copy(header, 0, 0, 2)
    // QR, the query's RD, RA; rcode 3 (NXDOMAIN) or 0
    header.writeUInt16BE(0x8180 | (msg.readUInt16BE(2) & 0x0100) | (a === 'nxdomain' ? 3 : 0), 2)
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(records.length, 6)
    const answers = records.map((ip) => {
      const bytes = Buffer.from(ipaddr.parse(ip).toByteArray())
      const rr = Buffer.alloc(12)
      rr.writeUInt16BE(0xc00c, 0)
      rr.writeUInt16BE(type, 2)
      rr.writeUInt16BE(1, 4)
      rr.writeUInt32BE(0, 6)
      rr.writeUInt16BE(bytes.length, 10)
      return Buffer.concat([rr, bytes])
    })
    socket.send(Buffer.concat([header, question, ...answers]), from.port, from.address)
  })
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise<void>(resolve => socket.close(() => { resolve() })) })
  return {
    server: `127.0.0.1:${socket.address().port}`,
    asked,
    askedFor: async (pattern, n) => {
      if (asked.filter(q => pattern.test(q.name)).length >= n) return
      await new Promise<void>(resolve => waiting.push({ pattern, n, resolve }))
    },
  }
}
