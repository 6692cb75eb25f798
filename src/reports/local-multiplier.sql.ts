// The local multiplier's third round, R3, over a set of stored buckets (one bucket, or the buckets that tile a
// report period). Proportional tracing inside the period (docs/metrics.md, "local multiplier"):
//   in(a)  economic payments a received in the period; lp(a): payments a made to payees in the local areas
//   R2(b)  = min(in(b), lp(b)) for a business b: the part of its income it re-spent locally
//   money from b reaches a local payee c in proportion to b's local payments: vol(b->c) * R2(b) / lp(b)
//   c re-spends locally the share min(1, lp(c) / in(c)) of what reached it; R3 sums that over all b -> c.
// Linear in the pair volumes, so pair rows of several buckets need no grouping first.
export const LM_R3_SQL = `
WITH bk AS (SELECT * FROM unnest($2::text[], $3::date[]) AS b (grain, start)),
acc AS (
  SELECT r.account_id, sum(r.recv_m + r.recv_b) AS inc, sum(r.paid_lp) AS lp
    FROM bk JOIN circ_account_bucket r ON r.currency_id = $1 AND r.grain = bk.grain AND r.start = bk.start
   GROUP BY 1
),
loc AS (
  SELECT a.id, p.kind,
         (p.district = ANY (c.local_areas) OR regexp_replace(p.district, '[0-9].*$', '') = ANY (c.local_areas)) AS local
    FROM account a JOIN participant p ON p.id = a.participant_id JOIN currency c ON c.id = a.currency_id
   WHERE a.currency_id = $1
)
SELECT COALESCE(sum(p.volume * (LEAST(b.inc, b.lp) / b.lp) * LEAST(1, c.lp / c.inc)), 0)::text AS r3
  FROM bk
  JOIN circ_pair_bucket p ON p.currency_id = $1 AND p.grain = bk.grain AND p.start = bk.start
  JOIN acc b ON b.account_id = p.payer AND b.inc > 0 AND b.lp > 0
  JOIN loc bl ON bl.id = p.payer AND bl.kind = 'business'
  JOIN acc c ON c.account_id = p.payee AND c.inc > 0 AND c.lp > 0
  JOIN loc cl ON cl.id = p.payee AND cl.local`
