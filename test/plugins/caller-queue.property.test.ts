import { EventEmitter } from 'node:events'
import type { FastifyReply } from 'fastify'
import t from 'tap'
import { CallerQueue, type Entry } from '../../src/plugins/caller-queue.js'

// Random sequences of enters, releases (some twice) and hang-ups (some just as places are handed over) over one to
// four groups, driven against CallerQueue directly (written first by a reviewing helper session). After most steps
// it checks: no caller over its places, no group over its places at an admission while another group is there,
// nobody waiting while its caller and group have room, the counts equal to the requests that hold places, each
// group's ready list no longer than its callers (it leaked a key per hang-up before), and at the end everything
// settled and forgotten. Deterministic for a seed; SEEDS=n runs more.

const settle = async () => { for (let i = 0; i < 6; i++) await new Promise(resolve => setImmediate(resolve)) }
function rng (seed: number) { return () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x80000000 } }

interface Req { id: number, key: string, group: string, raw: EventEmitter & { destroyed: boolean }, entry: Entry | null, released: boolean }

async function run (seed: number, steps: number, limit: number, waiting: number, groupLimit: number, nCallers: number, nGroups: number) {
  const r = rng(seed)
  const q = new CallerQueue(limit, waiting, groupLimit)
  const Q = q as any
  const problems: string[] = []
  const groupOf = (k: string) => `G${Number(k.slice(1)) % nGroups}`
  // check at every admission through handTo
  const origHand = Q.handTo.bind(q)
  Q.handTo = (c: any, g: any) => {
    origHand(c, g)
    if (c.running > limit) problems.push(`handTo: caller over limit ${c.running}`)
    if (Q.groups.size > 1 && g.running > groupLimit) problems.push(`handTo: group over limit ${g.running} with ${Q.groups.size} groups`)
  }
  const reqs: Req[] = []
  let id = 0
  const check = (where: string) => {
    for (const [k, c] of Q.callers as Map<string, any>) {
      if (c.running < 0 || c.running > limit) problems.push(`${where}: caller ${k} running ${c.running}`)
      const g = Q.groups.get(c.group)
      if (g == null) problems.push(`${where}: caller ${k} without group`)
      else if (c.line.length > 0 && c.running < limit && (g.running < groupLimit || Q.groups.size <= 1)) problems.push(`${where}: caller ${k} waits with room (running ${c.running}, group ${g.running}, groups ${Q.groups.size})`)
      const mine = reqs.filter(x => x.key === k && x.entry?.kind === 'run' && !x.released).length
      if (mine !== c.running) problems.push(`${where}: caller ${k} running ${c.running} but holders ${mine}`)
    }
    for (const [name, g] of Q.groups as Map<string, any>) {
      const cs = [...Q.callers.values()].filter((c: any) => c.group === name)
      const run = cs.reduce((s: number, c: any) => s + c.running, 0)
      const wait = cs.reduce((s: number, c: any) => s + c.line.length, 0)
      if (run !== g.running || wait !== g.waiting) problems.push(`${where}: group ${name} counts ${g.running}/${g.waiting} vs ${run}/${wait}`)
      if (g.ready.size > cs.length) problems.push(`${where}: group ${name} ready list ${g.ready.size as number} > callers ${cs.length}`)
      if (cs.length === 0) problems.push(`${where}: group ${name} with no callers`)
    }
  }
  for (let s = 0; s < steps; s++) {
    const op = r()
    const live = reqs.filter(x => x.entry?.kind === 'run' && !x.released)
    const waitingReqs = reqs.filter(x => x.entry == null && !x.raw.destroyed)
    if (op < 0.45) {
      const key = `c${Math.floor(r() * nCallers)}`
      const group = groupOf(key)
      const raw = Object.assign(new EventEmitter(), { destroyed: false })
      const req: Req = { id: id++, key, group, raw, entry: null, released: false }
      reqs.push(req)
      const before = Q.callers.get(key)?.running ?? 0
      const gBefore = Q.groups.size
      void q.enter(key, { raw } as unknown as FastifyReply, group).then(e => { req.entry = e })
      const c = Q.callers.get(key); const g = c && Q.groups.get(c.group)
      if (c != null && c.running > before) {
        if (c.running > limit) problems.push('direct: caller over limit')
        if (Q.groups.size > 1 && g.running > groupLimit) problems.push(`direct admit: group ${group} at ${g.running} with ${Q.groups.size} groups (before ${gBefore})`)
      }
    } else if (op < 0.8 && live.length > 0) {
      const x = live[Math.floor(r() * live.length)]
      x.released = true
      ;(x.entry as any).release()
      if (r() < 0.3) (x.entry as any).release() // double release
      // awkward moment: a waiting one hangs up right as places are handed over
      if (r() < 0.3 && waitingReqs.length > 0) { const w = waitingReqs[Math.floor(r() * waitingReqs.length)]; w.raw.destroyed = true; w.raw.emit('close') }
    } else if (waitingReqs.length > 0) {
      const w = waitingReqs[Math.floor(r() * waitingReqs.length)]
      w.raw.destroyed = true; w.raw.emit('close')
    }
    if (r() < 0.7) { await settle(); check(`seed ${seed} step ${s}`) }
    if (problems.length > 0) break
  }
  await settle()
  // drain
  for (let round = 0; round < 10000; round++) {
    const live = reqs.filter(x => x.entry?.kind === 'run' && !x.released)
    if (live.length === 0) break
    for (const x of live) { x.released = true; (x.entry as any).release() }
    await settle()
    check(`seed ${seed} drain`)
  }
  const stuck = reqs.filter(x => x.entry == null)
  if (stuck.length > 0) problems.push(`seed ${seed}: ${stuck.length} requests never settled`)
  if (q.runningNow !== 0 || q.waitingNow !== 0 || Q.callers.size !== 0 || Q.groups.size !== 0) problems.push(`seed ${seed}: left ${q.runningNow}/${q.waitingNow} callers ${Q.callers.size} groups ${Q.groups.size}`)
  return problems
}

t.test('random sequences keep every invariant', async (t) => {
  const all: string[] = []
  for (let seed = 1; seed <= Number(process.env.SEEDS ?? 300) && all.length < 5; seed++) {
    const limit = 1 + (seed % 3); const waiting = seed % 4; const groupLimit = 1 + (seed % 4)
    const p = await run(seed, 300, limit, waiting, groupLimit, 3 + (seed % 6), 1 + (seed % 4))
    all.push(...p.slice(0, 3))
  }
  t.same(all, [])
})
