-- Metric definitions version 3 (src/reports/provenance.ts, docs/metrics.md): holding velocity, effective share and
-- dormant share by participant kind. The kept figures gain the supply integral of members' and of businesses'
-- accounts: every summary is marked dirty (a report computes the ones it reads, the aggregator the rest) and the
-- composites are dropped. The holding trace's dormancy profiles now keep members' and businesses' balances apart:
-- every currency's trace is replayed from its first transfer (queued here; the next drain replays it).
INSERT INTO circ_dirty (currency_id, grain, start)
SELECT currency_id, grain, start FROM circ_bucket_summary
ON CONFLICT DO NOTHING;
DELETE FROM circ_composite;
INSERT INTO circ_holding_pending (transfer_id, currency_id, at)
SELECT DISTINCT ON (currency_id) id, currency_id, created_at FROM transfer ORDER BY currency_id, created_at
ON CONFLICT DO NOTHING;
