-- Which bucket rows each drain wrote. A report reads the buckets still under way (today, and any bucket a drain
-- has touched since its summary) on every request, and after new payments today alone is thousands of rows, of
-- which the drain changed a few hundred. Every row circ_drain() writes now carries the drain's number for its
-- currency (seq: circ_version.version after that drain), so a report that holds today's rows as of an earlier
-- version is sent only the rows with a higher seq (src/reports/tail-rows.ts). Drains are serialized by the
-- aggregates' advisory lock (one key for every currency), which each holds until it commits, so any snapshot sees
-- a currency's drains up to some version and none after it: the rows of a bucket with seq at most that version are
-- exactly those no later drain has touched. A pair whose payments were all reversed is still deleted; a reader
-- finds that out by the bucket's row count (tail-rows.ts).
--
-- Rows written before this migration carry 0, which every version is at least. circ_drain() is restated whole
-- from 20261220000000_drain_without_temporary_tables; what it writes is unchanged but for seq, which the bucket
-- upserts take from the circ_version upsert's RETURNING (the same statement).

ALTER TABLE circ_account_bucket ADD COLUMN seq bigint NOT NULL DEFAULT 0;
ALTER TABLE circ_pair_bucket ADD COLUMN seq bigint NOT NULL DEFAULT 0;

-- Every write of a bucket row must carry a newer drain number than the row had. A call of circ_drain() that began
-- before this migration committed (waiting on the lock) runs the earlier body to its end, and would write rows
-- whose seq says nothing changed; it fails here instead, and the aggregator runs it again with this body. The same
-- holds for any writer added later. The conditions are checked without calling the function, so a drain's rows
-- cost a comparison each.
CREATE FUNCTION circ_bucket_row_unsequenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% row written without a newer drain number (seq %): only circ_drain() writes bucket rows',
    TG_TABLE_NAME, NEW.seq;
END
$$;
CREATE TRIGGER circ_account_bucket_seq_insert BEFORE INSERT ON circ_account_bucket
  FOR EACH ROW WHEN (NEW.seq <= 0) EXECUTE FUNCTION circ_bucket_row_unsequenced();
CREATE TRIGGER circ_account_bucket_seq_update BEFORE UPDATE ON circ_account_bucket
  FOR EACH ROW WHEN (NEW.seq <= OLD.seq) EXECUTE FUNCTION circ_bucket_row_unsequenced();
CREATE TRIGGER circ_pair_bucket_seq_insert BEFORE INSERT ON circ_pair_bucket
  FOR EACH ROW WHEN (NEW.seq <= 0) EXECUTE FUNCTION circ_bucket_row_unsequenced();
CREATE TRIGGER circ_pair_bucket_seq_update BEFORE UPDATE ON circ_pair_bucket
  FOR EACH ROW WHEN (NEW.seq <= OLD.seq) EXECUTE FUNCTION circ_bucket_row_unsequenced();

CREATE OR REPLACE FUNCTION circ_drain(p_limit integer) RETURNS integer LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  v_n integer;
  v_ids uuid[];
  v_zero_c uuid[];
  v_zero_g text[];
  v_zero_s date[];
  v_zero_p uuid[];
  v_zero_e uuid[];
BEGIN
  -- the common case, nothing queued, costs one index probe and no lock
  IF NOT EXISTS (SELECT 1 FROM circ_pending) THEN
    RETURN 0;
  END IF;
  PERFORM pg_advisory_xact_lock(7211902);

  -- the batch's ids first, in a statement of their own: the statement below is planned once for every batch size
  -- (see the top), and with the ids as an array it looks each transfer up by its key, where a plan made for
  -- the queue's estimated size could read the whole transfer table for a few hundred
  WITH q AS (
    DELETE FROM circ_pending
     WHERE transfer_id IN (SELECT transfer_id FROM circ_pending ORDER BY transfer_id LIMIT p_limit)
    RETURNING transfer_id
  )
  SELECT array_agg(transfer_id) INTO v_ids FROM q;
  IF v_ids IS NULL THEN
    RETURN 0;
  END IF;

  WITH batch AS MATERIALIZED (
    SELECT t.id, t.currency_id, t.kind, t.from_account_id, t.to_account_id, t.amount, t.parent_id,
           t.reverses_id, t.created_at
      FROM transfer t WHERE t.id = ANY (v_ids)
  ),
  -- each batched currency's time zone: its buckets are its local days, ISO weeks and months
  zone AS MATERIALIZED (
    SELECT c.id AS currency_id, c.time_zone AS zone FROM currency c WHERE c.id IN (SELECT currency_id FROM batch)
  ),
  -- What the aggregates need to know of an account: member, business or system; local or not.
  acc AS MATERIALIZED (
    SELECT a.id, a.participant_id IS NOT NULL AS part, p.kind,
           COALESCE(p.district = ANY (c.local_areas)
                    OR regexp_replace(p.district, '[0-9].*$', '') = ANY (c.local_areas), false) AS local
      FROM account a
      JOIN currency c ON c.id = a.currency_id
      LEFT JOIN participant p ON p.id = a.participant_id
     WHERE a.id IN (SELECT from_account_id FROM batch UNION SELECT to_account_id FROM batch)
  ),
  -- The flow view of each batched transfer: a reversal stands for its reversed leg, with the sign flipped and
  -- at the reversed leg's time; a fee leg carries its main transfer's kind (a redemption's fee is redeemed).
  flow AS MATERIALIZED (
    SELECT b.currency_id,
           CASE WHEN b.kind = 'reversal' THEN -1 ELSE 1 END AS s,
           COALESCE(r.kind, b.kind) AS kind,
           COALESCE(r.from_account_id, b.from_account_id) AS payer,
           COALESCE(r.to_account_id, b.to_account_id) AS payee,
           COALESCE(r.amount, b.amount) AS amount,
           COALESCE(r.created_at, b.created_at) AS at,
           CASE WHEN b.kind = 'reversal' THEN rp.kind ELSE bp.kind END AS parent_kind
      FROM batch b
      LEFT JOIN transfer r ON b.kind = 'reversal' AND r.id = b.reverses_id
      LEFT JOIN transfer rp ON rp.id = r.parent_id
      LEFT JOIN transfer bp ON b.kind <> 'reversal' AND bp.id = b.parent_id
     WHERE b.kind <> 'reversal' OR r.id IS NOT NULL
  ),
  -- economic payments: between two participants' accounts
  pay AS MATERIALIZED (
    SELECT f.currency_id, f.s, f.payer, f.payee, f.amount, f.at,
           p.kind AS payer_kind, e.kind AS payee_kind, p.local AND e.local AS both_local, e.local AS payee_local
      FROM flow f JOIN acc p ON p.id = f.payer JOIN acc e ON e.id = f.payee
     WHERE f.kind = 'payment' AND p.part AND e.part
  ),
  fact AS MATERIALIZED (
    SELECT x.*, z.zone, circ_local_day(x.at, z.zone) AS day
      FROM (
    -- balances: every leg moves two balances at its own time
    SELECT currency_id, from_account_id AS account_id, created_at AS at, -amount AS d_bal,
           0::numeric AS issued, 0::numeric AS redeemed, 0::numeric AS paid_m, 0::numeric AS paid_b, 0 AS n_paid,
           0::numeric AS recv_m, 0::numeric AS recv_b, 0::numeric AS paid_ll, 0::numeric AS recv_ll, 0::numeric AS paid_lp
      FROM batch
    UNION ALL
    SELECT currency_id, to_account_id, created_at, amount, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
      FROM batch
    UNION ALL
    -- economic payments, payer side
    SELECT currency_id, payer, at, 0, 0, 0,
           CASE WHEN payee_kind = 'member' THEN s * amount ELSE 0 END,
           CASE WHEN payee_kind = 'business' THEN s * amount ELSE 0 END,
           s, 0, 0,
           CASE WHEN both_local THEN s * amount ELSE 0 END, 0,
           CASE WHEN payee_local THEN s * amount ELSE 0 END
      FROM pay
    UNION ALL
    -- economic payments, payee side
    SELECT currency_id, payee, at, 0, 0, 0, 0, 0, 0,
           CASE WHEN payer_kind = 'member' THEN s * amount ELSE 0 END,
           CASE WHEN payer_kind = 'business' THEN s * amount ELSE 0 END,
           0, CASE WHEN both_local THEN s * amount ELSE 0 END, 0
      FROM pay
    UNION ALL
    SELECT f.currency_id, f.payee, f.at, 0, f.s * f.amount, 0, 0, 0, 0, 0, 0, 0, 0, 0
      FROM flow f WHERE f.kind = 'issuance'
    UNION ALL
    SELECT f.currency_id, f.payer, f.at, 0, 0, f.s * f.amount, 0, 0, 0, 0, 0, 0, 0, 0
      FROM flow f WHERE f.kind = 'redemption' OR (f.kind = 'fee' AND f.parent_kind = 'redemption')
      ) x JOIN zone z ON z.currency_id = x.currency_id
  ),
  earliest AS MATERIALIZED (
    SELECT currency_id, min(day) AS day, min(at) AS at FROM fact GROUP BY 1
  ),
  -- the drain's number for each batched currency, which every bucket row it writes carries (seq)
  version_rows AS (
    INSERT INTO circ_version (currency_id, version)
    SELECT DISTINCT currency_id, 1 FROM batch
    ON CONFLICT (currency_id) DO UPDATE SET version = circ_version.version + 1
    RETURNING currency_id, version
  ),
  account_rows AS (
    INSERT INTO circ_account_bucket AS ab (currency_id, grain, start, account_id, d_bal, w_bal, issued, redeemed,
      paid_m, paid_b, n_paid, recv_m, recv_b, paid_ll, recv_ll, paid_lp, seq)
    SELECT x.currency_id, g.grain, circ_bucket_of(x.day, g.grain), x.account_id,
           sum(x.d_bal),
           sum(x.d_bal * extract(epoch FROM circ_bucket_end(circ_bucket_of(x.day, g.grain), g.grain, x.zone) - x.at)),
           sum(x.issued), sum(x.redeemed), sum(x.paid_m), sum(x.paid_b), sum(x.n_paid), sum(x.recv_m), sum(x.recv_b),
           sum(x.paid_ll), sum(x.recv_ll), sum(x.paid_lp), v.version
      FROM fact x JOIN version_rows v ON v.currency_id = x.currency_id CROSS JOIN (VALUES ('d'), ('w'), ('m')) AS g (grain)
     GROUP BY 1, 2, 3, 4, v.version
    ON CONFLICT (currency_id, grain, start, account_id) DO UPDATE SET
      seq = excluded.seq,
      d_bal = ab.d_bal + excluded.d_bal, w_bal = ab.w_bal + excluded.w_bal,
      issued = ab.issued + excluded.issued, redeemed = ab.redeemed + excluded.redeemed,
      paid_m = ab.paid_m + excluded.paid_m, paid_b = ab.paid_b + excluded.paid_b, n_paid = ab.n_paid + excluded.n_paid,
      recv_m = ab.recv_m + excluded.recv_m, recv_b = ab.recv_b + excluded.recv_b,
      paid_ll = ab.paid_ll + excluded.paid_ll, recv_ll = ab.recv_ll + excluded.recv_ll,
      paid_lp = ab.paid_lp + excluded.paid_lp
  ),
  pair_rows AS (
    INSERT INTO circ_pair_bucket AS pb (currency_id, grain, start, payer, payee, volume, n, seq)
    SELECT f.currency_id, g.grain, circ_bucket_start(f.at, g.grain, z.zone), f.payer, f.payee,
           sum(f.s * f.amount), sum(f.s)::integer, v.version
      FROM pay f
      JOIN zone z ON z.currency_id = f.currency_id
      JOIN version_rows v ON v.currency_id = f.currency_id
      CROSS JOIN (VALUES ('d'), ('w'), ('m')) AS g (grain)
     GROUP BY 1, 2, 3, 4, 5, v.version
    ON CONFLICT (currency_id, grain, start, payer, payee) DO UPDATE SET
      volume = pb.volume + excluded.volume, n = pb.n + excluded.n, seq = excluded.seq
    RETURNING pb.currency_id, pb.grain, pb.start, pb.payer, pb.payee, pb.n
  ),
  dirty_rows AS (
    INSERT INTO circ_dirty (currency_id, grain, start)
    SELECT x.currency_id, g.grain, circ_bucket_of(x.day, g.grain)
      FROM fact x CROSS JOIN (VALUES ('d'), ('w'), ('m')) AS g (grain)
    UNION
    SELECT s.currency_id, s.grain, s.start
      FROM circ_bucket_summary s
      JOIN earliest f ON f.currency_id = s.currency_id AND s.start > f.day
    ON CONFLICT DO NOTHING
  ),
  stale_composites AS (
    UPDATE circ_composite c SET figures = NULL
      FROM earliest f
     WHERE c.currency_id = f.currency_id AND c.end_at > f.at AND c.figures IS NOT NULL
  ),
  -- Where the holding-period trace must replay from: the earliest instant the drained transfers change, per
  -- currency (a transfer's own time, or for a reversal the reversed transfer's time, which flow carries),
  -- kept as the least of every drain's since the trace last took it (src/reports/holding.ts, traceHolding(),
  -- says why a transfer can be traced twice but never missed). version changes with every drain that touches
  -- the row, so the trace removes only a mark no drain has moved since its snapshot read it.
  mark_rows AS (
    INSERT INTO circ_holding_mark AS m (currency_id, at, version)
    SELECT currency_id, min(at), 1
      FROM (SELECT currency_id, created_at AS at FROM batch UNION ALL SELECT currency_id, at FROM flow) x
     GROUP BY 1
    ON CONFLICT (currency_id) DO UPDATE SET at = LEAST(m.at, excluded.at), version = m.version + 1
  )
  SELECT (SELECT count(*) FROM batch), array_agg(currency_id), array_agg(grain::text), array_agg(start),
         array_agg(payer), array_agg(payee)
    INTO v_n, v_zero_c, v_zero_g, v_zero_s, v_zero_p, v_zero_e
    FROM pair_rows WHERE n = 0;

  -- a pair whose payments were all reversed leaves the graph
  IF v_zero_c IS NOT NULL THEN
    DELETE FROM circ_pair_bucket pb
     USING unnest(v_zero_c, v_zero_g, v_zero_s, v_zero_p, v_zero_e) AS x (currency_id, grain, start, payer, payee)
     WHERE pb.currency_id = x.currency_id AND pb.grain = x.grain AND pb.start = x.start
       AND pb.payer = x.payer AND pb.payee = x.payee AND pb.n = 0;
  END IF;
  RETURN v_n;
END
$$;
