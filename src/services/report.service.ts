import type pg from 'pg'
import type { ReplicaReads } from '../db/replica.js'
import type { Static } from 'typebox'
import { csvDocument } from '../domain/csv.js'
import { cell, RULES, type Cell, type Rules } from '../domain/disclosure.js'
import { disclosureKey } from '../reports/disclosure-key.js'
import { DomainError } from '../domain/errors.js'
import { isIssuerOf, type Principal } from '../domain/principal.js'
import { isoTime, parseInstant, reportRange, splitPeriods, tileRange, type Interval } from '../domain/periods.js'
import { accountsCsv } from '../reports/accounts.export.js'
import { drain } from '../reports/aggregate.js'
import { circulationMetrics, METRICS, type Metrics } from '../reports/circulation.metrics.js'
import { circulationFigures } from '../reports/circulation.report.js'
import { flowFigures, publishFlows, type FlowsBy } from '../reports/flows.report.js'
import { openExport } from '../reports/pseudonym.js'
import { DEFINITIONS_VERSION, type LedgerPosition } from '../reports/provenance.js'
import { transfersCsv } from '../reports/transfers.export.js'
import type { AccountExportQuerySchema, CirculationQuerySchema, FlowsQuerySchema, TransferExportQuerySchema } from '../schemas/reports.js'
import { formatMoney } from '../domain/money.js'
import type { CurrencyInfo, CurrencyService } from './currency.service.js'

// the queries' types come from their TypeBox schemas, so the route and the service cannot disagree
export type CirculationQuery = Static<typeof CirculationQuerySchema>
export type FlowsQuery = Static<typeof FlowsQuerySchema>
export type TransferExportQuery = Static<typeof TransferExportQuerySchema>
export type AccountExportQuery = Static<typeof AccountExportQuerySchema>

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

/** CSV of a cell: its value, "suppressed", or empty when undefined. */
const csvCell = (c: Cell): string => c.value ?? ('suppressed' in c ? 'suppressed' : '')

export interface ReportOptions {
  /** see REPORTS_MAX_STALENESS_MS */
  maxStalenessMs?: number
  rules?: Rules
}

/**
 * pool: the primary's read pool (plugins/db.ts), so reports and exports never take a connection the ledger's writes
 * need; the aggregate catch-up, the composite cache and export salts are written there. reads: where the reading
 * itself runs (a replica that has caught up, else that pool; db/replica.ts), and the asOf each answer carries.
 */
export function reportService (pool: pg.Pool, currencies: CurrencyService, opts: ReportOptions = {}, reads?: ReplicaReads) {
  const source = async () => reads != null ? await reads.choose() : { pool, replica: false, asOf: new Date() }
  const rules = opts.rules ?? RULES
  let lastCatchUpAt = 0
  // A report folds in what is queued (the drain) and no more: the summaries of the buckets it reads that the drain
  // made dirty are computed in its own snapshot and kept (circulationFigures), and the other summaries are left to
  // the background aggregator (or to the report that reads them), so a report after new payments does not rewrite
  // their day's, week's and month's summaries first.
  // Reports arriving together share drains instead of each running its own (they would queue on the aggregate
  // lock, each holding a read connection): one runs at a time, and every report that arrives while it runs waits
  // for the next one, which starts after all of them arrived, so each still sees everything committed before it.
  let running: Promise<void> | null = null
  let next: Promise<void> | null = null
  const sharedCatchUp = (): Promise<void> => {
    if (running == null) {
      running = drain(pool).then(() => {}).finally(() => { running = null })
      return running
    }
    next ??= running.catch(() => {}).then(async () => { next = null; await sharedCatchUp() })
    return next
  }
  /** Folds in what is queued, unless the background aggregator did so recently enough for this deployment. */
  const fresh = async () => {
    if ((opts.maxStalenessMs ?? 0) > 0 && Date.now() - lastCatchUpAt <= opts.maxStalenessMs!) return
    await sharedCatchUp()
  }

  /** Researchers of the currency, its issuers and the platform issuer read reports; nobody else. */
  async function readable (principal: Principal | null, code: string): Promise<CurrencyInfo> {
    if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
    const c = await currencies.resolve(code)
    if (!(isIssuerOf(principal, c.id) || (principal.role === 'researcher' && principal.currencyId === c.id))) {
      throw new DomainError('FORBIDDEN', 'reports are for researchers and issuers of this currency')
    }
    return c
  }

  /** Microdata, even pseudonymised, is for the currency's researchers only. */
  async function exportable (principal: Principal | null, code: string): Promise<{ c: CurrencyInfo, userId: string }> {
    if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
    const c = await currencies.resolve(code)
    if (!(principal.role === 'researcher' && principal.currencyId === c.id)) {
      throw new DomainError('FORBIDDEN', 'research exports are for researchers of this currency')
    }
    return { c, userId: principal.userId }
  }

  return {
    /** The background aggregator reports each completed catch-up here. */
    caughtUp () { lastCatchUpAt = Date.now() },

    async circulation (principal: Principal | null, code: string, q: CirculationQuery): Promise<{ json: CirculationReport, asOf: string } | { csv: string, asOf: string }> {
      const c = await readable(principal, code)
      const interval = q.interval ?? 'month'
      const range = reportRange(q.from, q.to, Date.now(), c.calendar)
      const periods = splitPeriods(range.from, range.to, interval, c.calendar)
      await fresh()
      const src = await source()
      const asOf = src.asOf.toISOString()
      const read: { position?: LedgerPosition | null } = {}
      const figures = await circulationFigures(src.pool, c.id, periods, pool, read)
      const metrics = circulationMetrics(figures, c.decimals, rules)
      const provenance: Provenance = { asOf, asOfTransfer: read.position ?? null, definitionsVersion: DEFINITIONS_VERSION }
      const json: CirculationReport = {
        currency: c.code, ...provenance, timeZone: c.calendar.zone, from: isoTime(range.from, c.calendar), to: isoTime(range.to, c.calendar), interval,
        periods: periods.map((p, i) => ({ start: isoTime(p.start, c.calendar), end: isoTime(p.end, c.calendar), metrics: metrics[i + 1] })),
        total: { start: isoTime(range.from, c.calendar), end: isoTime(range.to, c.calendar), metrics: metrics[0] },
      }
      if (q.format !== 'csv') return { json, asOf }
      const row = (kind: string, p: { start: string, end: string, metrics: Metrics }) =>
        [kind, p.start, p.end, ...METRICS.map(m => csvCell(p.metrics[m])), ...provenanceCells(provenance)]
      return {
        asOf,
        csv: csvDocument(['row', 'start', 'end', ...METRICS, ...PROVENANCE_COLUMNS], [...json.periods.map(p => row('period', p)), row('total', json.total)]),
      }
    },

    async flows (principal: Principal | null, code: string, q: FlowsQuery): Promise<{ json: FlowsReport, asOf: string } | { csv: string, asOf: string }> {
      const c = await readable(principal, code)
      const by = q.by ?? 'sector'
      const range = reportRange(q.from, q.to, Date.now(), c.calendar)
      await fresh()
      const src = await source()
      const asOf = src.asOf.toISOString()
      const read: { position?: LedgerPosition | null } = {}
      const figures = await flowFigures(src.pool, c.id, tileRange(range.from, range.to, c.calendar), by, undefined, read)
      const position = read.position ?? null
      const key = await disclosureKey(pool, c.id)
      const published = publishFlows(key, figures, by, c.localAreas, rules)
      const provenance: Provenance = { asOf, asOfTransfer: position, definitionsVersion: DEFINITIONS_VERSION }
      const json: FlowsReport = {
        currency: c.code, ...provenance, timeZone: c.calendar.zone, by, from: isoTime(range.from, c.calendar), to: isoTime(range.to, c.calendar),
        cells: figures.map((f, i) => ({
          payer: f.payer,
          payee: f.payee,
          volume: cell(formatMoney(published[i].value, c.decimals), published[i].verdict),
          count: cell(published[i].count, published[i].verdict),
        })),
      }
      if (q.format !== 'csv') return { json, asOf }
      return {
        asOf,
        csv: csvDocument(['payer', 'payee', 'volume', 'count', ...PROVENANCE_COLUMNS],
          json.cells.map(x => [x.payer, x.payee, csvCell(x.volume), csvCell(x.count), ...provenanceCells(provenance)])),
      }
    },

    async exportTransfers (principal: Principal | null, code: string, q: TransferExportQuery) {
      const { c, userId } = await exportable(principal, code)
      const from = parseInstant(q.from, 'from', c.calendar)
      const to = parseInstant(q.to, 'to', c.calendar)
      // the export's salt is written on the primary; the rows are read where the reads go
      const session = await openExport(pool, c.id, userId, q.export)
      const src = await source()
      return {
        exportId: session.id,
        asOf: src.asOf.toISOString(),
        csv: transfersCsv(src.pool, {
          currencyId: c.id, code: c.code, decimals: c.decimals,
          from: from == null ? undefined : new Date(from), to: to == null ? undefined : new Date(to), dialect: q.dialect ?? 'circulate',
        }, session),
      }
    },

    async exportAccounts (principal: Principal | null, code: string, q: AccountExportQuery) {
      const { c, userId } = await exportable(principal, code)
      const session = await openExport(pool, c.id, userId, q.export)
      const src = await source()
      return { exportId: session.id, asOf: src.asOf.toISOString(), csv: accountsCsv(src.pool, { currencyId: c.id, decimals: c.decimals, localAreas: c.localAreas, dialect: q.dialect ?? 'circulate' }, session) }
    },
  }
}

export type ReportService = ReturnType<typeof reportService>
