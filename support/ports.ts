import net from 'node:net'

// Ports on 127.0.0.1 for the servers the tests, the reliability suite and the benches start (PostgreSQL, Redis,
// the service, HAProxy).

/**
 * A port that is free now (the system picks it). Nothing holds it after this returns, so another process may bind
 * it first: a caller that starts a server on it must check that its own server got it (startService does).
 */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as net.AddressInfo; s.close(() => resolve(port)) })
  })
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` (a Redis, a load balancer). */
export async function accepting (port: number): Promise<boolean> {
  return await new Promise<boolean>(resolve => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { resolve(false) })
  })
}
