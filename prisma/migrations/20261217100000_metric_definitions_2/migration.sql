-- Metric definitions version 2 (src/reports/provenance.ts, docs/metrics.md): the kept figures gain the circulating
-- flow and the totals since the start, and the local multiplier's round 1 is members' spending at local
-- businesses. Summaries and composites computed before lack or differ in those figures: every summary is marked
-- dirty (a report computes the ones it reads, the aggregator the rest) and the composites are dropped.
INSERT INTO circ_dirty (currency_id, grain, start)
SELECT currency_id, grain, start FROM circ_bucket_summary
ON CONFLICT DO NOTHING;
DELETE FROM circ_composite;
