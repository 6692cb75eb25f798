-- The composite cache (whole ranges and clipped periods of circulation reports) is bounded per currency by
-- recency (circulation.report.ts, keepFigures): these indexes let that trim, the aggregator's forgetting of
-- composites nobody asked for in a day, and its pick of recently asked-for stale ones read only the rows they
-- need, however many distinct ranges a caller has asked for.
CREATE INDEX circ_composite_recent ON circ_composite (currency_id, used_at);
CREATE INDEX circ_composite_used_at ON circ_composite (used_at);
