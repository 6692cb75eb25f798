import t from 'tap'
import { KEPT_PER_SUMMARY, RefusalWindow } from '../../src/domain/refusal-window.js'

// The window's own bounds, which the HTTP tests (test/access/audit-bound.test.ts) cannot reach cheaply: a window has
// at most `perWindow` summaries (one per action and actor) and one more for what they had no room for, and each
// keeps at most KEPT_PER_SUMMARY targets and addresses.
const at = (s: number) => new Date(Date.UTC(2026, 11, 3, 10, 0, s))
const refused = (action: string, actor: string, target: string | null = null, clientAddress: string | null = '192.0.2.1') =>
  ({ item: `${action}/${actor}`, action, actor, errorCode: 'FORBIDDEN', target, clientAddress })

t.test('one summary per action and actor, then one per action for the actors past the bound; none until the window has ended', async (t) => {
  const w = new RefusalWindow<string>(2)
  t.same(w.admit('c', at(0), refused('a', 'x')), { write: true, ended: [] })
  t.same(w.admit('c', at(1), refused('a', 'x')), { write: true, ended: [] })
  for (const [action, actor] of [['a', 'x'], ['b', 'x'], ['a', 'y'], ['b', 'x'], ['c', 'x'], ['d', 'z'], ['c', 'w'], ['a', 'z']]) {
    t.equal(w.admit('c', at(2), refused(action, actor)).write, false)
  }
  // another caller's window is its own
  t.equal(w.admit('other', at(3), refused('a', 'x')).write, true)
  t.same(w.due(at(59)), [], 'no window has ended')
  const out = w.due(at(60))
  t.same(out.map(u => [u.first, u.action, u.count, u.actors.counts]), [
    ['a/x', 'a', 1, { x: 1 }],
    ['b/x', 'b', 2, { x: 2 }],
    ['a/y', 'a', 2, { y: 1, z: 1 }],
    ['c/x', 'c', 2, { x: 1, w: 1 }],
    ['d/z', 'd', 1, { z: 1 }],
  ], 'two summaries of one actor each (the bound), then one per action: every summary is of one action')
  t.equal(w.size, 1, 'the ended window is forgotten; the other caller\'s is open')
  t.same(w.due(at(63)).map(u => u.count), [], 'the other caller wrote everything one by one')
})

t.test('targets and addresses: at most KEPT_PER_SUMMARY distinct, the rest counted', async (t) => {
  const w = new RefusalWindow<string>(1)
  w.admit('c', at(0), refused('a', 'x'))
  const n = KEPT_PER_SUMMARY + 5
  for (let i = 0; i < n; i++) w.admit('c', at(1), refused('a', 'x', `t${i}`, `198.51.100.${i}`))
  w.admit('c', at(1), refused('a', 'x', 't0', '198.51.100.0'))
  w.admit('c', at(1), refused('a', 'x', null, null))
  // the window ends when the caller's next refusal comes: handed back before the new window starts
  const { write, ended } = w.admit('c', at(61), refused('a', 'x'))
  t.equal(write, true, 'the new window writes its first')
  t.equal(ended.length, 1)
  const u = ended[0]
  t.equal(u.count, n + 2)
  t.equal(Object.keys(u.targets.counts).length, KEPT_PER_SUMMARY)
  t.equal(u.targets.counts.t0, 2, 'a target seen again is counted again')
  t.equal(u.targets.others, 5)
  t.equal(Object.keys(u.clientAddresses.counts).length, KEPT_PER_SUMMARY)
  t.equal(u.clientAddresses.others, 5)
  t.same([u.from, u.to], [at(1), at(1)])
})

t.test('perWindow 0: every refusal is written', async (t) => {
  const w = new RefusalWindow<string>(0)
  for (let i = 0; i < 100; i++) t.equal(w.admit('c', at(0), refused('a', 'x')).write, true)
  t.equal(w.size, 0)
})
