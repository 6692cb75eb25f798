import t from 'tap'
import { runReadsBench } from '../scripts/bench-reads.js'
import { ensureBuilt } from '../support/service.js'

// Expensive reads cannot starve the ledger: payments at a steady rate while ten researchers each keep asking for
// the widest reports the API allows over a simulated year. The service process and its database are real (as in
// production: node dist/server.js, the default pools). Asserted: no payment refused, and the reports themselves
// answered with a report or a clean refusal, never a 500. The latency ratio is printed here and judged by
// `npm run bench` (timing is for the bench, not for a test on a shared machine).
t.test('ten wide reports at once while payments run: no payment is refused', async (t) => {
  ensureBuilt()
  const f = await runReadsBench({ seconds: 8, rate: 100, members: 120, build: false, log: (line) => { t.comment(line) } })
  const loaded = f.rounds.filter(r => r.withReports)
  t.equal(f.refusedWithReports, 0, 'every payment offered while the reports ran was posted (201)')
  for (const r of loaded) {
    t.ok(r.payments > 0, `${r.payments} payments posted in the round`)
    t.ok(r.reports.answered > 0, `${r.reports.answered} wide reports answered in the round`)
    t.same(Object.keys(r.reports.statuses).filter(s => !['200', '429', '503'].includes(s)), [], `reports answered ${JSON.stringify(r.reports.statuses)}: a report or a clean refusal`)
  }
  t.comment(`payment p99: alone ${f.p99AloneMs} ms, with ${f.readers} wide reports ${f.p99WithReportsMs} ms (${f.p99Ratio.toFixed(2)}x; the bench's target is <= 2)`)
})
