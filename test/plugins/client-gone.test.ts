import t from 'tap'
import { stalled, type StallWatch } from '../../src/plugins/client-gone.js'

// The rules endWhenStalled() applies at each look at a streamed response (a report, an export, a CSV statement),
// played on a clock of the test's own: `ms` 30 s, looks every 7.5 s as the service makes them.

const MS = 30_000
const fresh = (): StallWatch => ({ blockedSince: null, window: null })

/** Looks every MS / 4 for `seconds`, the buffer full at each, the socket taking `perSecond` bytes a second, and a
 *  drain between looks when `drains`; the second (from the first look) at which the response is ended, or null. */
function play (w: StallWatch, o: { seconds: number, perSecond: number, drains: boolean, floor: number }): number | null {
  let bytes = 5_000_000 // what the system's buffers took at the start: never held against the client
  for (let at = 0; at <= o.seconds * 1000; at += MS / 4) {
    if (stalled(w, { now: at, full: true, bytes }, MS, o.floor)) return at / 1000
    bytes += o.perSecond * (MS / 4) / 1000
    if (o.drains) w.blockedSince = null // the drain listener's doing
  }
  return null
}

t.test('a client that takes nothing is ended after ms, whatever the floor', async (t) => {
  t.equal(play(fresh(), { seconds: 120, perSecond: 0, drains: false, floor: 0 }), 30)
  t.equal(play(fresh(), { seconds: 120, perSecond: 0, drains: false, floor: 65536 }), 30)
})

t.test('a client that drips (its buffer drains now and then, 4 KB a second) is ended by the floor only', async (t) => {
  t.equal(play(fresh(), { seconds: 3600, perSecond: 4096, drains: true, floor: 0 }), null, 'without a floor it holds on for the hour played')
  t.equal(play(fresh(), { seconds: 3600, perSecond: 4096, drains: true, floor: 65536 }), 30, 'with one: ended at the first full count')
})

t.test('a client that keeps up with the floor is never ended; one just under it is', async (t) => {
  t.equal(play(fresh(), { seconds: 3600, perSecond: 65536, drains: true, floor: 65536 }), null)
  t.equal(play(fresh(), { seconds: 3600, perSecond: 1_000_000, drains: true, floor: 65536 }), null)
  t.equal(play(fresh(), { seconds: 3600, perSecond: 65000, drains: true, floor: 65536 }), 30)
})

t.test('a look that finds the buffer not full (the service waiting for the database) starts the count again', async (t) => {
  const w = fresh()
  t.notOk(stalled(w, { now: 0, full: true, bytes: 0 }, MS, 65536))
  t.notOk(stalled(w, { now: 25_000, full: true, bytes: 1000 }, MS, 65536))
  t.notOk(stalled(w, { now: 27_000, full: false, bytes: 1000 }, MS, 65536), 'the service has nothing to send')
  t.same(w, { blockedSince: null, window: null })
  t.notOk(stalled(w, { now: 40_000, full: true, bytes: 1000 }, MS, 65536), 'a new count from here')
  t.notOk(stalled(w, { now: 65_000, full: true, bytes: 2000 }, MS, 65536), 'not a whole ms of full looks yet')
  t.ok(stalled(w, { now: 70_000, full: true, bytes: 3000 }, MS, 65536), '2,000 bytes in 30 s: ended')
})
