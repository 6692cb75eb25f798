// The advisory lock key of the circulation aggregates: circ_drain() (migration *_circulation_aggregates) and the
// summary step take it exclusively; storing a computed composite takes it shared (circulation.report.ts).
export const AGGREGATE_LOCK = 7_211_902
