import { Type, type TRef } from 'typebox'
import { METRICS } from '../reports/circulation.metrics.js'
import { HOLDING_DESCRIPTIONS } from '../reports/holding.metrics.js'
import { FormatQuery, Timestamp, Uuid } from './common.js'

const Instant = (d: string) => Type.String({
  maxLength: 40, description: `${d}: a date (2026-01-01: that local day) or an RFC 3339 time, rounded outwards to whole local days of the currency's time zone`,
})

export const CellSchema = Type.Object({
  value: Type.Union([Type.String(), Type.Null()], {
    description: 'a decimal string (counts too, e.g. "42"; shares as fractions, "0.4231"); null when suppressed, or when ' +
      'undefined (e.g. a share of a zero volume)',
  }),
  suppressed: Type.Optional(Type.Boolean({ description: 'true when the value is hidden by the disclosure rules; never a zero' })),
  reason: Type.Optional(Type.Enum(['threshold', 'dominance'], {
    description: 'threshold: fewer than 5 distinct accounts; dominance: in the circulation report, one account over 85% of a cell with a ' +
      'business in it; in the flows report, the p% rule (p = 10%, a coalition of two: what is left after the three largest ' +
      'accounts\' parts is under 10% of the largest). docs/disclosure.md has the flows report\'s other hidden cells',
  })),
  complementary: Type.Optional(Type.Boolean({
    description: 'hidden only because a published total would otherwise give another hidden cell away; reason is that cell\'s',
  })),
}, { $id: 'ReportCell', description: 'one published figure' })

const METRIC_DESCRIPTIONS: Record<typeof METRICS[number], string> = {
  supply: 'currency held by participants (electronic and paper) at the end of the period',
  issued: 'currency issued against sterling in the period',
  redeemed: 'currency businesses turned back into sterling in the period, redemption fee included',
  netIssuance: 'issued minus redeemed',
  volume: 'sum of economic payments (payments between participants, not reversed)',
  count: 'number of economic payments',
  averageSupply: 'time-weighted average of supply over the period',
  velocity: 'volume / averageSupply',
  velocityAnnualised: 'velocity x 365 / days in the period',
  respendRate: 'of what businesses passed on, the share paid to participants rather than redeemed: S / (S + R_b)',
  b2bShare: 'share of volume paid business to business',
  m2bShare: 'share of volume paid member to business',
  b2mShare: 'share of volume paid business to member (wages)',
  m2mShare: 'share of volume paid member to member',
  redemptionRate: 'per period: redeemed / issued within the period (can exceed 1 when little is issued that period); see cumulativeRedemptionRate',
  activeAccounts: 'participant accounts that made at least one economic payment',
  activeShare: 'activeAccounts / participant accounts open in the period',
  localityShare: 'share of volume where payer and payee both sit in the local areas',
  gini: 'Gini coefficient of participants\' balances at the end of the period',
  top10Share: 'share of participants\' balances held by the richest 10% of participants at the end of the period',
  localMultiplier: 'a proportional approximation of NEF\'s LM3, (R1 + R2 + R3) / R1: R1 members\' spending at local businesses, R2 the part ' +
    'of it those businesses re-spend locally, R3 the part of that re-spent locally again, traced proportionally through the period\'s payments',
  cycleShare: 'share of volume on payer-payee links inside strongly connected parts of the payment graph: every link that lies on ' +
    'some cycle counts in full, so it grows with the period and overstates what goes round; cite circulatingShare for that',
  circulatingShare: 'the largest circulation the period\'s payments contain (a flow within every link\'s volume that balances at every ' +
    'account, as multilateral set-off finds it) / volume: the share of trade that actually came round',
  cumulativeRedemptionRate: 'redeemed since the currency started / issued since it started, at the end of the period',
  ...HOLDING_DESCRIPTIONS,
}

const MetricsSchema = Type.Object(
  Object.fromEntries(METRICS.map(m => [m, Type.Ref('ReportCell', { description: METRIC_DESCRIPTIONS[m] })])) as Record<typeof METRICS[number], TRef<'ReportCell'>>,
  { description: 'every metric; docs/metrics.md has the exact definitions' })

const PeriodSchema = Type.Object({
  start: Timestamp('first instant of the period: a local midnight of the currency\'s time zone, with the zone\'s offset there (Z when it is zero)'),
  end: Timestamp('first instant after the period, likewise (a day is 23 or 25 hours long when the clocks change)'),
  metrics: MetricsSchema,
})

export const CirculationQuerySchema = Type.Object({
  from: Type.Optional(Instant('start of the range (default: twelve months before `to`)')),
  to: Type.Optional(Instant('end of the range, exclusive (default: the start of next month)')),
  interval: Type.Optional(Type.Enum(['day', 'week', 'month'], { default: 'month', description: 'local days, ISO weeks (Monday) or calendar months of the currency\'s time zone; the first and last are clipped to the range' })),
  format: FormatQuery(),
}, { additionalProperties: false })

/** How fresh a report is: it may have been read on a replica (docs/operations.md "Read replica"). */
const AsOf = Timestamp('every movement committed before this instant is in the report (it may have been read on a replica); also in the X-As-Of header')
const AsOfTransfer = Type.Union([Type.Object({
  id: Uuid('the transfer'),
  createdAt: Type.String({ description: 'its time, RFC 3339 to the microsecond' }),
}), Type.Null()], { description: 'the ledger position: the latest transfer (by time, then id) the report includes; null before the first transfer' })
const ZoneOfReport = Type.String({ description: 'the currency\'s IANA time zone, whose local days, weeks and months the report uses' })
const DefinitionsVersion = Type.Integer({ minimum: 1, description: 'version of the metrics\' definitions the figures follow (docs/metrics.md lists them); cite it with asOf' })

export const CirculationReportSchema = Type.Object({
  currency: Type.String(),
  asOf: AsOf,
  asOfTransfer: AsOfTransfer,
  definitionsVersion: DefinitionsVersion,
  timeZone: ZoneOfReport,
  from: Timestamp('start of the range'),
  to: Timestamp('end of the range (exclusive)'),
  interval: Type.Enum(['day', 'week', 'month']),
  periods: Type.Array(PeriodSchema),
  total: PeriodSchema,
})

export const FlowsQuerySchema = Type.Object({
  by: Type.Optional(Type.Enum(['sector', 'district'], { default: 'sector', description: 'group payers and payees by business sector ("member" for members) or by postcode district' })),
  from: Type.Optional(Instant('start of the range (default: twelve months before `to`)')),
  to: Type.Optional(Instant('end of the range, exclusive (default: the start of next month). For a researcher the range ends at the start of the currency\'s local today at the latest: a day is published to researchers once it has ended')),
  format: FormatQuery(),
}, { additionalProperties: false })

export const FlowsReportSchema = Type.Object({
  currency: Type.String(),
  asOf: AsOf,
  asOfTransfer: AsOfTransfer,
  definitionsVersion: DefinitionsVersion,
  timeZone: ZoneOfReport,
  by: Type.Enum(['sector', 'district']),
  from: Timestamp('start of the range'),
  to: Timestamp('end of the range (exclusive); for a researcher, at the latest the start of the currency\'s local today'),
  cells: Type.Array(Type.Object({
    payer: Type.String({ description: 'payer group' }),
    payee: Type.String({ description: 'payee group' }),
    volume: Type.Ref('ReportCell', { description: 'sum of economic payments from the payer group to the payee group' }),
    count: Type.Ref('ReportCell', { description: 'number of those payments' }),
  }), { description: 'the published cells, by payer then payee; a cell the disclosure rules hide is left out, so a missing cell may be one of no payments or a hidden one (docs/disclosure.md)' }),
})

const ExportTime = (d: string) => Type.String({ maxLength: 40, description: `${d}: a date (2026-01-01: the start of that local day in the currency's time zone) or an RFC 3339 time, taken to the microsecond as timeset writes times (a seventh digit or more rounds it up)` })
const ExportId = Uuid('an export id from the X-Export-Id header of an earlier export: reuse its pseudonyms so both files join')
const Dialect = Type.Enum(['circulate', 'sarafu'], {
  default: 'circulate',
  description: 'circulate: the project\'s own columns, enough to recompute every circulation figure; sarafu: the columns and codes of the ' +
    'Sarafu Network data set (Mattsson, Criscione and Ruddick 2022), for the notebooks written for it (docs/research-exports.md)',
})

export const TransferExportQuerySchema = Type.Object({
  from: Type.Optional(ExportTime('transfers at or after this time')),
  to: Type.Optional(ExportTime('transfers before this time')),
  export: Type.Optional(ExportId),
  dialect: Type.Optional(Dialect),
}, { additionalProperties: false })

export const AccountExportQuerySchema = Type.Object({
  export: Type.Optional(ExportId),
  dialect: Type.Optional(Dialect),
}, { additionalProperties: false })
