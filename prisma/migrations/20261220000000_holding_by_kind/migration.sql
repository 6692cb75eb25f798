-- Metric definitions version 3 (src/reports/provenance.ts, docs/metrics.md): holding velocity, effective share and
-- dormant share by participant kind. The kept figures gain the supply integral of members' and of businesses'
-- accounts: every summary is marked dirty (a report computes the ones it reads, the aggregator the rest) and the
-- composites are dropped. The holding trace's dormancy profiles now keep members' and businesses' balances apart:
-- every currency's trace is replayed from its first transfer (its mark moved there; the next trace replays it).
INSERT INTO circ_dirty (currency_id, grain, start)
SELECT currency_id, grain, start FROM circ_bucket_summary
ON CONFLICT DO NOTHING;
DELETE FROM circ_composite;
INSERT INTO circ_holding_mark AS m (currency_id, at, version)
SELECT currency_id, min(created_at), 1 FROM transfer GROUP BY 1
ON CONFLICT (currency_id) DO UPDATE SET at = LEAST(m.at, excluded.at), version = m.version + 1;
