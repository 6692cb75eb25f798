// Where the bench's requests spend their CPU time: a V8 CPU profile (node:inspector) taken over a stretch of the
// bench, and a summary of it that counts only the samples inside the windows the bench marks (the timed requests,
// not the bench's own posting between them). Used by scripts/bench-reports.ts when BENCH_PROFILE names a file; its
// summary also serves scripts/bench.ts for the service's own profile (--cpu-prof, summarised whole).
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'

export interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
export interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

/** The monotonic clock the profile's timestamps use, in microseconds (V8's and process.hrtime's are the same). */
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n)

export interface Profiler {
  /** marks the start and end of a window to count (one request) */
  window: <T>(f: () => Promise<T>) => Promise<T>
  /** stops the profile, writes it to `file` (for Chrome's DevTools or speedscope) and returns the summary lines */
  stop: (file: string, top?: number) => Promise<string[]>
}

export async function startProfile (intervalUs = 200): Promise<Profiler> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs })
  await session.post('Profiler.start')
  const windows: Array<[number, number]> = []
  return {
    async window (f) {
      const from = nowUs()
      try { return await f() } finally { windows.push([from, nowUs()]) }
    },
    async stop (file, top = 25) {
      const { profile } = await session.post('Profiler.stop') as unknown as { profile: CpuProfile }
      session.disconnect()
      await writeFile(file, JSON.stringify(profile))
      return summarise(profile, windows, top)
    },
  }
}

/** Self and inclusive time per function over the samples inside `windows` (all samples when none); with
 *  `packageOf` (a script's URL to the package it belongs to), self time per package first. */
export function summarise (p: CpuProfile, windows: Array<[number, number]>, top: number, packageOf?: (f: CallFrame) => string): string[] {
  const byId = new Map(p.nodes.map(n => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const name = (f: CallFrame) => `${f.functionName === '' ? '(anonymous)' : f.functionName} ${f.url.split('/').pop() ?? ''}:${f.lineNumber + 1}`
  const self = new Map<string, number>()
  const packages = new Map<string, number>()
  const inclusive = new Map<string, number>()
  let t = p.startTime
  let counted = 0
  const inside = (at: number) => windows.length === 0 || windows.some(([a, b]) => at >= a && at <= b)
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]
    // a sample's time is the interval up to the next one
    const dt = i + 1 < p.timeDeltas.length ? p.timeDeltas[i + 1] : 0
    if (!inside(t)) continue
    counted += dt
    const leaf = byId.get(p.samples[i])!
    self.set(name(leaf.callFrame), (self.get(name(leaf.callFrame)) ?? 0) + dt)
    if (packageOf != null) packages.set(packageOf(leaf.callFrame), (packages.get(packageOf(leaf.callFrame)) ?? 0) + dt)
    const seen = new Set<string>()
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const k = name(byId.get(id)!.callFrame)
      if (seen.has(k)) continue
      seen.add(k)
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt)
    }
  }
  const ms = (us: number) => (us / 1000).toFixed(1).padStart(8)
  const rows = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => `${ms(v)} ms  ${k}`)
  return [
    `${(counted / 1000).toFixed(1)} ms sampled${windows.length === 0 ? '' : ` in ${windows.length} windows`}`,
    ...(packageOf == null ? [] : ['self, by package:', ...rows(packages)]),
    'self:', ...rows(self),
    'inclusive (the service\'s functions; (root) and the event loop\'s frames included):', ...rows(inclusive),
  ]
}
