import { EventEmitter } from 'node:events'
import type { FastifyReply } from 'fastify'
import t from 'tap'
import { CallerQueue, type Entry } from '../../src/plugins/caller-queue.js'

// The line behind the caller share and the read budget (src/plugins/caller-queue.ts), driven directly: places per
// caller, and per group (a currency) while more than one group has requests there. No clock: every step is an
// enter or a release, and the test looks at what ran.

/** A reply whose client can hang up (no request: the queue watches the response alone). */
const reply = () => {
  const raw = Object.assign(new EventEmitter(), { destroyed: false })
  return { reply: { raw } as unknown as FastifyReply, hangUp: () => { raw.destroyed = true; raw.emit('close') } }
}

/** Enters, and records the entry once it is settled (at once, or when a place is handed over). */
function enter (q: CallerQueue, key: string, group: string, log: string[], name = key) {
  const r = reply()
  let entry: Entry | null = null
  const settled = q.enter(key, r.reply, group).then((e) => { entry = e; if (e.kind === 'run') log.push(name); return e })
  return { settled, hangUp: r.hangUp, release: () => { if (entry?.kind !== 'run') throw new Error(`${name} is not running`); entry.release() }, get entry () { return entry } }
}
const settle = async () => { for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve)) }

t.test('without groups: one caller\'s places, and its line passes places on in order', async (t) => {
  const q = new CallerQueue(1, 2)
  const log: string[] = []
  const a1 = enter(q, 'a', '', log, 'a1')
  const a2 = enter(q, 'a', '', log, 'a2')
  const a3 = enter(q, 'a', '', log, 'a3')
  const a4 = enter(q, 'a', '', log, 'a4')
  await settle()
  t.same(log, ['a1'])
  t.same(a4.entry, { kind: 'refused', running: 1, waiting: 2 }, 'one past the line is refused')
  const b = enter(q, 'b', '', log)
  await settle()
  t.same(log, ['a1', 'b'], 'another caller is not held up')
  a1.release(); await settle()
  t.same(log, ['a1', 'b', 'a2'])
  a2.release(); a3.settled.then(() => {}, () => {}); await settle()
  t.same(log, ['a1', 'b', 'a2', 'a3'])
  a3.release(); b.release(); await settle()
  t.equal(q.runningNow, 0); t.equal(q.waitingNow, 0)
})

t.test('one group past its places waits while another group is there, and runs freely once alone', async (t) => {
  const q = new CallerQueue(1, 10, 2)
  const log: string[] = []
  const b1 = enter(q, 'b1', 'B', log)
  const a1 = enter(q, 'a1', 'A', log)
  const a2 = enter(q, 'a2', 'A', log)
  const a3 = enter(q, 'a3', 'A', log)
  await settle()
  t.same(log, ['b1', 'a1', 'a2'], 'the third of group A waits: two of A run while B is there')
  t.equal(q.waitingNow, 1)
  const b2 = enter(q, 'b2', 'B', log)
  await settle()
  t.same(log, ['b1', 'a1', 'a2', 'b2'], 'group B is not held up by A\'s line')
  a1.release(); await settle()
  t.same(log.slice(4), ['a3'], 'a place A gives back goes to A\'s next')
  const a4 = enter(q, 'a4', 'A', log)
  await settle()
  t.equal(a4.entry, null, 'A is at its two again')
  b1.release(); b2.release(); await settle()
  t.same(log.slice(5), ['a4'], 'with B gone, A is alone and not held back')
  t.equal(q.runningNow, 3)
  a2.release(); a3.release(); a4.release(); await settle()
  t.equal(q.runningNow, 0); t.equal(q.waitingNow, 0)
})

t.test('a group\'s callers take turns at its places; a new caller of the group does not pass those waiting', async (t) => {
  const q = new CallerQueue(5, 10, 1)
  const log: string[] = []
  const b = enter(q, 'b', 'B', log)
  const first = enter(q, 'x', 'A', log, 'x0')
  const xs = [1, 2, 3].map(i => enter(q, 'x', 'A', log, `x${i}`))
  const y = enter(q, 'y', 'A', log, 'y1')
  await settle()
  t.same(log, ['b', 'x0'])
  first.release(); await settle()
  const z = enter(q, 'z', 'A', log, 'z1')
  await settle()
  t.same(log, ['b', 'x0', 'x1'], 'z arrives after x and y wait: it waits too')
  for (const next of [xs[0], y, xs[1], z, xs[2]]) { next.release(); await settle() }
  t.same(log, ['b', 'x0', 'x1', 'y1', 'x2', 'z1', 'x3'], 'x, y and z take turns, one request each')
  b.release(); await settle()
  t.equal(q.runningNow, 0); t.equal(q.waitingNow, 0)
})

t.test('a client that hangs up while it waits leaves the line; the group and caller entries are forgotten', async (t) => {
  const q = new CallerQueue(1, 10, 1)
  const log: string[] = []
  const b = enter(q, 'b', 'B', log)
  const a1 = enter(q, 'a1', 'A', log)
  const a2 = enter(q, 'a2', 'A', log)
  await settle()
  t.equal(q.waitingNow, 1)
  a2.hangUp()
  t.same(await a2.settled, { kind: 'gone' })
  t.equal(q.waitingNow, 0)
  a1.release(); b.release(); await settle()
  t.equal(q.runningNow, 0)
  // nothing is left behind: a fresh group alone runs as many as its callers may
  const c = [1, 2, 3].map(i => enter(q, `c${i}`, 'C', log))
  await settle()
  t.same(log.slice(-3), ['c1', 'c2', 'c3'])
  for (const x of c) x.release()
})

t.test('hang-ups while waiting leave nothing behind in the group, and do not let a caller pass another of its group', async (t) => {
  const q = new CallerQueue(4, 4, 1)
  const groups = (q as unknown as { groups: Map<string, { ready: Set<unknown> }> }).groups
  const log: string[] = []
  const b = enter(q, 'b', 'B', log)
  let a = enter(q, 'a', 'A', log) // A at its one place while B is there
  await settle()
  for (let i = 0; i < 1000; i++) {
    const x = enter(q, 'x', 'A', log)
    x.hangUp()
    await x.settled
  }
  t.equal(q.waitingNow, 0)
  t.equal(groups.get('A')?.ready.size, 0, 'no caller is left in the group\'s ready list')
  for (let i = 0; i < 3; i++) { const x = enter(q, 'x', 'A', log); x.hangUp(); await x.settled }
  const y = enter(q, 'y', 'A', log, 'y')
  const xs = [1, 2, 3].map(i => enter(q, 'x', 'A', log, `x${i}`))
  await settle()
  for (const next of [y, ...xs]) { a.release(); await settle(); a = next }
  t.same(log.slice(2), ['y', 'x1', 'x2', 'x3'], 'y, waiting first, goes first')
  a.release(); b.release(); await settle()
  t.equal(q.runningNow, 0); t.equal(groups.size, 0)
})
