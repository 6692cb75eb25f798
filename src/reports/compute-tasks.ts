import { csvDocument } from '../domain/csv.js'
import { cell, RULES, type Cell, type Rules } from '../domain/disclosure.js'
import { formatMoney, Money } from '../domain/money.js'
import type { Interval } from '../domain/periods.js'
import { circulationMetrics, METRICS, type Metrics } from './circulation.metrics.js'
import type { PeriodFigures } from './circulation.report.js'
import { keptCirculation } from './kept-circulation.js'
import { entries } from './report-cache.js'
import { flowRange, publishFlows, type FlowInputs, type FlowsBy } from './flows.report.js'
import type { LedgerPosition } from './provenance.js'

// The pure part of a report, from the figures read on the main thread to the document sent: the metrics and their
// disclosure control, the flows' perturbation, the JSON and the CSV. compute-pool.ts runs these on a worker
// thread, so everything in and out is plain data (structured clone): decimal strings and bigints, never a
// decimal.js value or a Buffer's methods. The JSON comes back as text, serialized on the worker: a report by day
// over a year is some 15,000 objects, which cloning back and serializing again would spend on the event loop. The
// same functions run in the process with REPORT_WORKERS=0.

/** What a report was computed from (src/reports/provenance.ts), in the JSON and in every CSV row. */
export interface Provenance { asOf: string, asOfTransfer: LedgerPosition | null, definitionsVersion: number }
const PROVENANCE_COLUMNS = ['asOf', 'asOfTransfer', 'asOfTransferAt', 'definitionsVersion']
const provenanceCells = (p: Provenance) => [p.asOf, p.asOfTransfer?.id ?? '', p.asOfTransfer?.createdAt ?? '', String(p.definitionsVersion)]

export interface CirculationReport extends Provenance {
  currency: string, timeZone: string, from: string, to: string, interval: Interval
  periods: Array<{ start: string, end: string, metrics: Metrics }>
  total: { start: string, end: string, metrics: Metrics }
}
export interface FlowsReport extends Provenance {
  currency: string, timeZone: string, by: FlowsBy, from: string, to: string
  cells: Array<{ payer: string, payee: string, volume: Cell, count: Cell }>
}

/** The disclosure rules as plain data (Rules holds a decimal.js value, which does not cross to a worker). */
export interface PlainRules { threshold: number, dominance: string, p: number, perturb: boolean }
export const plainRules = (r: Rules = RULES): PlainRules => ({ threshold: r.threshold, dominance: r.dominance.toString(), p: r.p, perturb: r.perturb })
const rulesOf = (r: PlainRules): Rules => ({ threshold: r.threshold, dominance: new Money(r.dominance), p: r.p, perturb: r.perturb })

/** CSV of a cell: its value, "suppressed", or empty when undefined. */
const csvCell = (c: Cell): string => c.value ?? ('suppressed' in c ? 'suppressed' : '')

export interface CirculationInput {
  head: Omit<CirculationReport, 'periods' | 'total'>
  /** the periods' bounds, ISO (the report's periods and, last, the whole range) */
  periods: Array<{ start: string, end: string }>
  total: { start: string, end: string }
  /** index 0 the whole range, then the periods (circulationFigures) */
  figures: PeriodFigures[]
  decimals: number
  rules: PlainRules
  csv: boolean
}

export function circulationDocument (x: CirculationInput): { json: string } | { csv: string } {
  const metrics = circulationMetrics(x.figures, x.decimals, rulesOf(x.rules))
  const json: CirculationReport = {
    ...x.head,
    periods: x.periods.map((p, i) => ({ start: p.start, end: p.end, metrics: metrics[i + 1] })),
    total: { start: x.total.start, end: x.total.end, metrics: metrics[0] },
  }
  if (!x.csv) return { json: JSON.stringify(json) }
  const provenance: Provenance = { asOf: x.head.asOf, asOfTransfer: x.head.asOfTransfer, definitionsVersion: x.head.definitionsVersion }
  const row = (kind: string, p: { start: string, end: string, metrics: Metrics }) =>
    [kind, p.start, p.end, ...METRICS.map(m => csvCell(p.metrics[m])), ...provenanceCells(provenance)]
  return { csv: csvDocument(['row', 'start', 'end', ...METRICS, ...PROVENANCE_COLUMNS], [...json.periods.map(p => row('period', p)), row('total', json.total)]) }
}

export interface FlowsInput {
  head: Omit<FlowsReport, 'cells'>
  /** what flowInputs() read; the range's figures are summed and ranked here */
  inputs: FlowInputs
  /** the currency's disclosure key (disclosure-key.ts) */
  key: Uint8Array
  localAreas: string[]
  decimals: number
  rules: PlainRules
  csv: boolean
}

export function flowsDocument (x: FlowsInput): { json: string } | { csv: string } {
  const figures = flowRange(x.inputs)
  const published = publishFlows(Buffer.from(x.key.buffer, x.key.byteOffset, x.key.byteLength), figures, x.head.by, x.localAreas, rulesOf(x.rules), x.decimals)
  // A hidden cell is left out, not listed as hidden: its name alone says that the two groups traded in the range,
  // and on a day of few payments the transfers export then says who (docs/disclosure.md, "Which cells are listed").
  const json: FlowsReport = {
    ...x.head,
    cells: figures.flatMap((f, i) => published[i].verdict != null ? [] : [{
      payer: f.payer,
      payee: f.payee,
      volume: cell(formatMoney(published[i].value, x.decimals), null),
      count: cell(published[i].count, null),
    }]),
  }
  if (!x.csv) return { json: JSON.stringify(json) }
  return {
    csv: csvDocument(['payer', 'payee', 'volume', 'count', ...PROVENANCE_COLUMNS],
      json.cells.map(c => [c.payer, c.payee, csvCell(c.volume), csvCell(c.count), ...provenanceCells(x.head)])),
  }
}

export interface CirculateInput {
  /** the period's key (graph-cache.ts, graphFiguresOf): its solver is kept under it in this worker's report cache */
  key: string
  from: Int32Array
  to: Int32Array
  vol: ArrayLike<bigint>
}

/** The largest circulation of a period's cycle links, from the solver this worker keeps for the period. Sent to
 *  one worker per key (compute-pool.ts, runOn), so that the next report's update finds the solver again. `held`:
 *  how many entries this thread's report cache holds after it (what a test can see of where solvers are kept). */
export function circulate (x: CirculateInput): { total: bigint, held: number } {
  return { total: keptCirculation(x.key, x) as bigint, held: entries() }
}

/** Every task a worker runs, by name. */
const TASKS = { circulation: circulationDocument, flows: flowsDocument, circulate }
export type Tasks = typeof TASKS
export type TaskName = keyof Tasks

export function runTask<K extends TaskName> (task: K, input: Parameters<Tasks[K]>[0]): ReturnType<Tasks[K]> {
  const f = TASKS[task] as (x: unknown) => ReturnType<Tasks[K]>
  if (f == null) throw new Error(`no report task ${String(task)}`)
  return f(input)
}
