-- One queue on the payment path. Every transfer insert fired two statement triggers, each writing one queue row
-- per transfer: circ_enqueue (circ_pending, folded into the aggregates by circ_drain()) and circ_holding_enqueue
-- (circ_holding_pending, the instants the holding-period trace replays from). The second queue goes: circ_drain()
-- now records, per currency it drains, the earliest instant the drained transfers change in circ_holding_mark
-- (one row per currency, the least instant since the trace last took it), and the trace reads that instead.
--
-- circ_drain() is restated whole from 20261127050000_circulation_aggregates; the only change is the
-- circ_holding_mark upsert before the temporary tables are dropped.

DROP TRIGGER circ_holding_enqueue ON transfer;
DROP FUNCTION circ_holding_enqueue();

CREATE TABLE circ_holding_mark (
  currency_id uuid PRIMARY KEY,
  at          timestamptz NOT NULL,
  version     bigint NOT NULL
);

-- What was queued is traced from the earliest queued instant. Transfers queued there and still in circ_pending
-- leave a mark again when drained: traced twice, which a replay allows.
INSERT INTO circ_holding_mark (currency_id, at, version)
SELECT currency_id, min(at), 1 FROM circ_holding_pending GROUP BY 1;

DROP TABLE circ_holding_pending;

CREATE OR REPLACE FUNCTION circ_drain(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_n integer;
BEGIN
  -- the common case, nothing queued, costs one index probe and no lock
  IF NOT EXISTS (SELECT 1 FROM circ_pending) THEN
    RETURN 0;
  END IF;
  PERFORM pg_advisory_xact_lock(7211902);

  CREATE TEMP TABLE circ_batch ON COMMIT DROP AS
  WITH q AS (
    DELETE FROM circ_pending
     WHERE transfer_id IN (SELECT transfer_id FROM circ_pending ORDER BY transfer_id LIMIT p_limit)
    RETURNING transfer_id
  )
  SELECT t.id, t.currency_id, t.kind, t.from_account_id, t.to_account_id, t.amount, t.parent_id,
         t.reverses_id, t.created_at
    FROM q JOIN transfer t ON t.id = q.transfer_id;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n = 0 THEN
    DROP TABLE circ_batch;
    RETURN 0;
  END IF;

  -- What the aggregates need to know of an account: member, business or system; local or not.
  CREATE TEMP TABLE circ_acc ON COMMIT DROP AS
  SELECT a.id, a.participant_id IS NOT NULL AS part, p.kind,
         COALESCE(p.district = ANY (c.local_areas)
                  OR regexp_replace(p.district, '[0-9].*$', '') = ANY (c.local_areas), false) AS local
    FROM account a
    JOIN currency c ON c.id = a.currency_id
    LEFT JOIN participant p ON p.id = a.participant_id
   WHERE a.id IN (SELECT from_account_id FROM circ_batch UNION SELECT to_account_id FROM circ_batch);

  -- The flow view of each batched transfer: a reversal stands for its reversed leg, with the sign flipped and
  -- at the reversed leg's time; a fee leg carries its main transfer's kind (a redemption's fee is redeemed).
  CREATE TEMP TABLE circ_flow ON COMMIT DROP AS
  SELECT b.currency_id,
         CASE WHEN b.kind = 'reversal' THEN -1 ELSE 1 END AS s,
         COALESCE(r.kind, b.kind) AS kind,
         COALESCE(r.from_account_id, b.from_account_id) AS payer,
         COALESCE(r.to_account_id, b.to_account_id) AS payee,
         COALESCE(r.amount, b.amount) AS amount,
         COALESCE(r.created_at, b.created_at) AS at,
         CASE WHEN b.kind = 'reversal' THEN rp.kind ELSE bp.kind END AS parent_kind
    FROM circ_batch b
    LEFT JOIN transfer r ON b.kind = 'reversal' AND r.id = b.reverses_id
    LEFT JOIN transfer rp ON rp.id = r.parent_id
    LEFT JOIN transfer bp ON b.kind <> 'reversal' AND bp.id = b.parent_id
   WHERE b.kind <> 'reversal' OR r.id IS NOT NULL;

  CREATE TEMP TABLE circ_fact ON COMMIT DROP AS
  -- balances: every leg moves two balances at its own time
  SELECT currency_id, from_account_id AS account_id, created_at AS at, -amount AS d_bal,
         0::numeric AS issued, 0::numeric AS redeemed, 0::numeric AS paid_m, 0::numeric AS paid_b, 0 AS n_paid,
         0::numeric AS recv_m, 0::numeric AS recv_b, 0::numeric AS paid_ll, 0::numeric AS recv_ll, 0::numeric AS paid_lp
    FROM circ_batch
  UNION ALL
  SELECT currency_id, to_account_id, created_at, amount, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    FROM circ_batch
  UNION ALL
  -- economic payments, payer side
  SELECT f.currency_id, f.payer, f.at, 0, 0, 0,
         CASE WHEN e.kind = 'member' THEN f.s * f.amount ELSE 0 END,
         CASE WHEN e.kind = 'business' THEN f.s * f.amount ELSE 0 END,
         f.s, 0, 0,
         CASE WHEN p.local AND e.local THEN f.s * f.amount ELSE 0 END, 0,
         CASE WHEN e.local THEN f.s * f.amount ELSE 0 END
    FROM circ_flow f JOIN circ_acc p ON p.id = f.payer JOIN circ_acc e ON e.id = f.payee
   WHERE f.kind = 'payment' AND p.part AND e.part
  UNION ALL
  -- economic payments, payee side
  SELECT f.currency_id, f.payee, f.at, 0, 0, 0, 0, 0, 0,
         CASE WHEN p.kind = 'member' THEN f.s * f.amount ELSE 0 END,
         CASE WHEN p.kind = 'business' THEN f.s * f.amount ELSE 0 END,
         0, CASE WHEN p.local AND e.local THEN f.s * f.amount ELSE 0 END, 0
    FROM circ_flow f JOIN circ_acc p ON p.id = f.payer JOIN circ_acc e ON e.id = f.payee
   WHERE f.kind = 'payment' AND p.part AND e.part
  UNION ALL
  SELECT f.currency_id, f.payee, f.at, 0, f.s * f.amount, 0, 0, 0, 0, 0, 0, 0, 0, 0
    FROM circ_flow f WHERE f.kind = 'issuance'
  UNION ALL
  SELECT f.currency_id, f.payer, f.at, 0, 0, f.s * f.amount, 0, 0, 0, 0, 0, 0, 0, 0
    FROM circ_flow f WHERE f.kind = 'redemption' OR (f.kind = 'fee' AND f.parent_kind = 'redemption');

  INSERT INTO circ_account_bucket AS ab (currency_id, grain, start, account_id, d_bal, w_bal, issued, redeemed,
    paid_m, paid_b, n_paid, recv_m, recv_b, paid_ll, recv_ll, paid_lp)
  SELECT x.currency_id, g.grain, circ_bucket_start(x.at, g.grain), x.account_id,
         sum(x.d_bal),
         sum(x.d_bal * extract(epoch FROM circ_bucket_end(circ_bucket_start(x.at, g.grain), g.grain) - x.at)),
         sum(x.issued), sum(x.redeemed), sum(x.paid_m), sum(x.paid_b), sum(x.n_paid), sum(x.recv_m), sum(x.recv_b),
         sum(x.paid_ll), sum(x.recv_ll), sum(x.paid_lp)
    FROM circ_fact x CROSS JOIN (VALUES ('d'), ('w'), ('m')) AS g (grain)
   GROUP BY 1, 2, 3, 4
  ON CONFLICT (currency_id, grain, start, account_id) DO UPDATE SET
    d_bal = ab.d_bal + excluded.d_bal, w_bal = ab.w_bal + excluded.w_bal,
    issued = ab.issued + excluded.issued, redeemed = ab.redeemed + excluded.redeemed,
    paid_m = ab.paid_m + excluded.paid_m, paid_b = ab.paid_b + excluded.paid_b, n_paid = ab.n_paid + excluded.n_paid,
    recv_m = ab.recv_m + excluded.recv_m, recv_b = ab.recv_b + excluded.recv_b,
    paid_ll = ab.paid_ll + excluded.paid_ll, recv_ll = ab.recv_ll + excluded.recv_ll,
    paid_lp = ab.paid_lp + excluded.paid_lp;

  CREATE TEMP TABLE circ_pairs ON COMMIT DROP AS
  SELECT f.currency_id, g.grain, circ_bucket_start(f.at, g.grain) AS start, f.payer, f.payee,
         sum(f.s * f.amount) AS volume, sum(f.s)::integer AS n
    FROM circ_flow f
    JOIN circ_acc p ON p.id = f.payer JOIN circ_acc e ON e.id = f.payee
    CROSS JOIN (VALUES ('d'), ('w'), ('m')) AS g (grain)
   WHERE f.kind = 'payment' AND p.part AND e.part
   GROUP BY 1, 2, 3, 4, 5;

  INSERT INTO circ_pair_bucket AS pb (currency_id, grain, start, payer, payee, volume, n)
  SELECT currency_id, grain, start, payer, payee, volume, n FROM circ_pairs
  ON CONFLICT (currency_id, grain, start, payer, payee) DO UPDATE SET
    volume = pb.volume + excluded.volume, n = pb.n + excluded.n;
  -- a pair whose payments were all reversed leaves the graph
  DELETE FROM circ_pair_bucket pb USING circ_pairs x
   WHERE pb.currency_id = x.currency_id AND pb.grain = x.grain AND pb.start = x.start
     AND pb.payer = x.payer AND pb.payee = x.payee AND pb.n = 0;

  INSERT INTO circ_dirty (currency_id, grain, start)
  SELECT DISTINCT x.currency_id, g.grain, circ_bucket_start(x.at, g.grain)
    FROM circ_fact x CROSS JOIN (VALUES ('d'), ('w'), ('m')) AS g (grain)
  ON CONFLICT DO NOTHING;
  INSERT INTO circ_dirty (currency_id, grain, start)
  SELECT s.currency_id, s.grain, s.start
    FROM circ_bucket_summary s
    JOIN (SELECT currency_id, min(at) AS t FROM circ_fact GROUP BY 1) f
      ON f.currency_id = s.currency_id AND s.start > (f.t AT TIME ZONE 'UTC')::date
  ON CONFLICT DO NOTHING;

  INSERT INTO circ_version (currency_id, version)
  SELECT DISTINCT currency_id, 1 FROM circ_batch
  ON CONFLICT (currency_id) DO UPDATE SET version = circ_version.version + 1;
  UPDATE circ_composite c SET figures = NULL
    FROM (SELECT currency_id, min(at) AS t FROM circ_fact GROUP BY 1) f
   WHERE c.currency_id = f.currency_id AND c.end_at > f.t AND c.figures IS NOT NULL;

  -- Where the holding-period trace must replay from: the earliest instant the drained transfers change, per
  -- currency (a transfer's own time, or for a reversal the reversed transfer's time, which circ_flow carries),
  -- kept as the least of every drain's since the trace last took it (src/reports/holding.ts, traceHolding(),
  -- says why a transfer can be traced twice but never missed). version changes with every drain that touches
  -- the row, so the trace removes only a mark no drain has moved since its snapshot read it.
  INSERT INTO circ_holding_mark AS m (currency_id, at, version)
  SELECT currency_id, min(at), 1
    FROM (SELECT currency_id, created_at AS at FROM circ_batch UNION ALL SELECT currency_id, at FROM circ_flow) x
   GROUP BY 1
  ON CONFLICT (currency_id) DO UPDATE SET at = LEAST(m.at, excluded.at), version = m.version + 1;

  DROP TABLE circ_batch, circ_acc, circ_flow, circ_fact, circ_pairs;
  RETURN v_n;
END
$$;
