// HTTP calls to a running service (support/service.ts) as a client makes them, for the benches and the faults suite.

export interface CallResult { status: number, body: any, headers: Headers }

/** One JSON call. */
export async function call (base: string, method: string, url: string, o: { token?: string, body?: unknown, key?: string, headers?: Record<string, string>, timeoutMs?: number } = {}): Promise<CallResult> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) }
  if (o.token != null) headers.authorization = `Bearer ${o.token}`
  if (o.key != null) headers['idempotency-key'] = o.key
  if (o.body !== undefined) headers['content-type'] = 'application/json'
  const r = await fetch(`${base}${url}`, {
    method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body), signal: AbortSignal.timeout(o.timeoutMs ?? 30_000),
  })
  const text = await r.text()
  let body: unknown = text
  try { body = text === '' ? null : JSON.parse(text) } catch {}
  return { status: r.status, body, headers: r.headers }
}

/** Runs fn over items with at most `n` at once. */
export async function pooled<T, R> (items: T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i], i) }
  }))
  return out
}
