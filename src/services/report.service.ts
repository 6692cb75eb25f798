import type pg from 'pg'
import type { ReplicaReads } from '../db/replica.js'
import type { Static } from 'typebox'
import { RULES, type Rules } from '../domain/disclosure.js'
import { disclosureKey } from '../reports/disclosure-key.js'
import { DomainError } from '../domain/errors.js'
import { isIssuerOf, type Principal } from '../domain/principal.js'
import { checkOrder, DAY_MS, isoTime, microsIso, parseInstantMicros, reportRange, splitPeriods, tileRange } from '../domain/periods.js'
import { calendarOf, ZoneChanged, type Calendar } from '../domain/zone.js'
import { accountsCsv } from '../reports/accounts.export.js'
import { drain } from '../reports/aggregate.js'
import { circulationFigures } from '../reports/circulation.report.js'
import { computePool, type ComputePool } from '../reports/compute-pool.js'
import { solveOn } from '../reports/kept-circulation.js'
import { plainRules, type CirculationReport, type FlowsReport, type Provenance } from '../reports/compute-tasks.js'
import { flowInputs } from '../reports/flows.report.js'
import { exportSalt, mayStartExport, openExport } from '../reports/pseudonym.js'
import { DEFINITIONS_VERSION, type LedgerPosition } from '../reports/provenance.js'
import { transfersCsv } from '../reports/transfers.export.js'
import type { AccountExportQuerySchema, CirculationQuerySchema, FlowsQuerySchema, TransferExportQuerySchema } from '../schemas/reports.js'
import type { CurrencyInfo, CurrencyService } from './currency.service.js'

// the queries' types come from their TypeBox schemas, so the route and the service cannot disagree
export type CirculationQuery = Static<typeof CirculationQuerySchema>
export type FlowsQuery = Static<typeof FlowsQuerySchema>
export type TransferExportQuery = Static<typeof TransferExportQuerySchema>
export type AccountExportQuery = Static<typeof AccountExportQuerySchema>

export type { CirculationReport, FlowsReport, Provenance }

/** How many times a report is cut again when its snapshot finds the currency's zone changed (it can change only
 *  until the first transfer, so once is enough but for a PATCH racing the very first one). */
const ZONE_TRIES = 3
/** How long after a local day has ended a researcher's flows take it in (see flows()): well past the longest a
 *  posting transaction runs (its statements are held to DB_STATEMENT_TIMEOUT_MS, 10 s by default) and any skew
 *  between this instance's clock and the database's. */
export const RESEARCH_DAY_GRACE_MS = 5 * 60_000

const zoneChanging = () => new DomainError('SERVICE_UNAVAILABLE', 'the currency\'s time zone changed while the report was read; retry')

/** read() with the report cut in the currency's zone, as read with the currency; if the report's snapshot finds
 *  another (ZoneChanged: another instance changed it just before the first transfers), cut again in that one. */
async function inZone<T> (cal: Calendar, read: (cal: Calendar) => Promise<T>): Promise<{ cal: Calendar, value: T }> {
  for (let tries = 1; ; tries++) {
    try {
      return { cal, value: await read(cal) }
    } catch (err) {
      if (!(err instanceof ZoneChanged)) throw err
      if (tries >= ZONE_TRIES) throw zoneChanging()
      cal = calendarOf(err.zone)
    }
  }
}

export interface ReportOptions {
  /** see REPORTS_MAX_STALENESS_MS */
  maxStalenessMs?: number
  rules?: Rules
  /** where the reports' pure computation runs (compute-pool.ts); default: in the process */
  compute?: ComputePool
  /** new research exports one researcher may start in 24 hours (RESEARCH_EXPORTS_PER_DAY; pseudonym.ts openExport) */
  exportsPerDay?: number
  /** tests and the bench only: the time a report takes as now (the currency's today, a range's default end);
   *  default the wall clock */
  clock?: () => Date
}

/**
 * pool: the primary's read pool (plugins/db.ts), so reports and exports never take a connection the ledger's writes
 * need; the aggregate catch-up, the composite cache and export salts are written there. reads: where the reading
 * itself runs (a replica that has caught up, else that pool; db/replica.ts), and the asOf each answer carries.
 */
export function reportService (pool: pg.Pool, currencies: CurrencyService, opts: ReportOptions = {}, reads?: ReplicaReads) {
  const source = async () => reads != null ? await reads.choose() : { pool, replica: false, asOf: new Date() }
  const rules = plainRules(opts.rules ?? RULES)
  const compute = opts.compute ?? computePool({ workers: 0, heapMb: 0 })
  // the kept circulation solvers live on the report workers too, each period's always on the same one
  const solve = solveOn(compute)
  const now = (): number => opts.clock?.().getTime() ?? Date.now()
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

  /** An export's from and to, refused before an export is recorded (as a report refuses them): the GET's and the
   *  HEAD's one check. */
  function exportRange (q: { from?: string, to?: string }, c: CurrencyInfo) {
    // to the microsecond, as the ledger keeps times and the export writes them (periods.ts, parseInstantMicros)
    const from = parseInstantMicros(q.from, 'from', c.calendar)
    const to = parseInstantMicros(q.to, 'to', c.calendar)
    if (from != null && to != null) checkOrder(from, to)
    return { from, to }
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
    /** where the pure computation runs (tests end its worker) */
    compute,

    /** The background aggregator reports each completed catch-up here. */
    caughtUp () { lastCatchUpAt = Date.now() },

    async circulation (principal: Principal | null, code: string, q: CirculationQuery): Promise<{ json: string, asOf: string } | { csv: string, asOf: string }> {
      const c = await readable(principal, code)
      const at = now()
      const interval = q.interval ?? 'month'
      // the range checked before any work is done; cut again only if the snapshot finds another zone (inZone)
      let range = reportRange(q.from, q.to, at, c.calendar)
      let periods = splitPeriods(range.from, range.to, interval, c.calendar)
      await fresh()
      const src = await source()
      const asOf = src.asOf.toISOString()
      const read: { position?: LedgerPosition | null } = {}
      const { cal, value: figures } = await inZone(c.calendar, async (cal) => {
        if (cal !== c.calendar) { range = reportRange(q.from, q.to, at, cal); periods = splitPeriods(range.from, range.to, interval, cal) }
        return await circulationFigures(src.pool, c.id, periods, pool, read, at, cal.zone, solve)
      })
      const head = {
        currency: c.code, asOf, asOfTransfer: read.position ?? null, definitionsVersion: DEFINITIONS_VERSION, timeZone: cal.zone,
        from: isoTime(range.from, cal), to: isoTime(range.to, cal), interval,
      }
      // the metrics, the JSON and the CSV off the event loop (compute-pool.ts)
      const doc = await compute.run('circulation', {
        head, periods: periods.map(p => ({ start: isoTime(p.start, cal), end: isoTime(p.end, cal) })), total: { start: head.from, end: head.to },
        figures, decimals: c.decimals, rules, csv: q.format === 'csv',
      })
      return { ...doc, asOf }
    },

    async flows (principal: Principal | null, code: string, q: FlowsQuery): Promise<{ json: string, asOf: string } | { csv: string, asOf: string }> {
      const c = await readable(principal, code)
      const at = now()
      const by = q.by ?? 'sector'
      // A researcher gets a day once it has ended: a day still under way changes with each payment, and two reads
      // of it around one payment, with the transfers export's times, would say which cell that payment went into.
      // Ended RESEARCH_DAY_GRACE_MS ago: a transfer is dated by its transaction's start, so one still committing
      // just after midnight lands in the day before (and this clock may run ahead of the database's); and, where
      // reports may read aggregates that old (REPORTS_MAX_STALENESS_MS), before such a transfer was folded in.
      const settled = (r: { from: number, to: number }, cal: Calendar) => {
        if (principal?.role !== 'researcher') return r
        const grace = RESEARCH_DAY_GRACE_MS + (opts.maxStalenessMs ?? 0)
        const today = cal.instant(Math.floor(cal.civil(at - grace) / DAY_MS) * DAY_MS)
        return { from: r.from, to: Math.max(r.from, Math.min(r.to, today)) }
      }
      let range = settled(reportRange(q.from, q.to, at, c.calendar), c.calendar)
      await fresh()
      const src = await source()
      const asOf = src.asOf.toISOString()
      const read: { position?: LedgerPosition | null } = {}
      const { cal, value: inputs } = await inZone(c.calendar, async (cal) => {
        if (cal !== c.calendar) range = settled(reportRange(q.from, q.to, at, cal), cal)
        return await flowInputs(src.pool, c.id, tileRange(range.from, range.to, cal), by, at, read, cal.zone)
      })
      const key = await disclosureKey(pool, c.id)
      const head = {
        currency: c.code, asOf, asOfTransfer: read.position ?? null, definitionsVersion: DEFINITIONS_VERSION, timeZone: cal.zone, by,
        from: isoTime(range.from, cal), to: isoTime(range.to, cal),
      }
      const doc = await compute.run('flows', { head, inputs, key, localAreas: [...c.localAreas], decimals: c.decimals, rules, csv: q.format === 'csv' })
      return { ...doc, asOf }
    },

    /**
     * A HEAD of an export: the same checks as its GET (who, the range, an ?export= still open, else the researcher's
     * RESEARCH_EXPORTS_PER_DAY) and nothing made or recorded. Without ?export= there is no export to name: a new one
     * is made only by a GET that sends a file.
     */
    async checkExport (principal: Principal | null, code: string, q: { export?: string, from?: string, to?: string }) {
      const { c, userId } = await exportable(principal, code)
      exportRange(q, c)
      if (q.export != null) await exportSalt(pool, c.id, userId, q.export)
      else await mayStartExport(pool, userId, opts.exportsPerDay)
      return { exportId: q.export ?? null }
    },

    /** allowed: whether the caller may still read the file, asked between its pages (transfers.export.ts) */
    async exportTransfers (principal: Principal | null, code: string, q: TransferExportQuery, allowed?: () => Promise<boolean>) {
      const { c, userId } = await exportable(principal, code)
      const { from, to } = exportRange(q, c)
      // the export's salt is written on the primary; the rows are read where the reads go
      const session = await openExport(pool, c.id, userId, q.export, opts.exportsPerDay)
      const src = await source()
      return {
        exportId: session.id,
        asOf: src.asOf.toISOString(),
        csv: transfersCsv(src.pool, {
          currencyId: c.id, code: c.code, decimals: c.decimals,
          from: from == null ? undefined : microsIso(from), to: to == null ? undefined : microsIso(to), dialect: q.dialect ?? 'circulate', allowed,
        }, session),
      }
    },

    async exportAccounts (principal: Principal | null, code: string, q: AccountExportQuery) {
      const { c, userId } = await exportable(principal, code)
      const session = await openExport(pool, c.id, userId, q.export, opts.exportsPerDay)
      // on the primary (accounts.export.ts): what was committed before now is in the file
      return { exportId: session.id, asOf: new Date().toISOString(), csv: accountsCsv(pool, { currencyId: c.id, decimals: c.decimals, localAreas: c.localAreas, dialect: q.dialect ?? 'circulate' }, session) }
    },
  }
}

export type ReportService = ReturnType<typeof reportService>
