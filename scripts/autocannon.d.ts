// The part of autocannon's API the benchmark uses (the package ships no types).
declare module 'autocannon' {
  interface Histogram { average: number, mean: number, min: number, max: number, p50: number, p90: number, p97_5: number, p99: number, p99_9: number, total?: number }
  export interface Request {
    method?: string
    path?: string
    headers?: Record<string, string>
    body?: string | Buffer
    setupRequest?: (req: Request, context: Record<string, unknown>) => Request
    onResponse?: (status: number, body: string, context: Record<string, unknown>) => void
  }
  interface Options {
    url: string
    connections?: number
    duration?: number
    amount?: number
    timeout?: number
    overallRate?: number
    requests?: Request[]
    headers?: Record<string, string>
    method?: string
    body?: string
  }
  export interface Result {
    requests: Histogram
    latency: Histogram
    duration: number
    errors: number
    timeouts: number
    non2xx: number
    statusCodeStats: Record<string, { count: number }>
    start: Date
    finish: Date
  }
  interface Instance extends Promise<Result> { stop: () => void, on: (event: string, fn: (...args: any[]) => void) => void }
  function autocannon (opts: Options): Instance
  export default autocannon
}
