-- A currency's time zone (issue 13): its reports' days, ISO weeks and months, its buckets and its holding days
-- are local to it. Every existing currency is UTC, so no existing bucket or figure changes.
--
-- time_zone is an IANA name that both PostgreSQL (pg_timezone_names) and the service's JavaScript runtime know;
-- the currency service checks it, and changes it only while the currency has no transfers (its aggregates would
-- have to be rebuilt otherwise).
ALTER TABLE currency ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

-- The bucket functions take the zone. The local day of an instant is its date on the zone's wall clock, except
-- where a midnight happens twice: a day starts at `date::timestamp AT TIME ZONE zone` (the second midnight), and
-- the hour before it still belongs to the day before, so that a day's bucket holds exactly the instants from its
-- start to the next day's (src/domain/zone.ts cuts the same days).
DROP FUNCTION circ_bucket_start(timestamptz, text);
DROP FUNCTION circ_bucket_end(date, text);

CREATE FUNCTION circ_local_day(p_at timestamptz, p_zone text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  -- one expression, so that the planner inlines it into the drain's statements
  SELECT (p_at AT TIME ZONE p_zone)::date
         - CASE WHEN p_at < ((p_at AT TIME ZONE p_zone)::date::timestamp AT TIME ZONE p_zone) THEN 1 ELSE 0 END
$$;

-- grain: 'd' local day, 'w' ISO week (Monday), 'm' calendar month. The bucket's first day.
CREATE FUNCTION circ_bucket_of(p_day date, p_grain text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE p_grain
    WHEN 'd' THEN p_day
    WHEN 'w' THEN date_trunc('week', p_day::timestamp)::date
    ELSE date_trunc('month', p_day::timestamp)::date END
$$;

CREATE FUNCTION circ_bucket_start(p_at timestamptz, p_grain text, p_zone text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT circ_bucket_of(circ_local_day(p_at, p_zone), p_grain)
$$;

-- The instant the bucket ends: the start of the local day after it (a day is 23 or 25 hours long when the clocks
-- change).
CREATE FUNCTION circ_bucket_end(p_start date, p_grain text, p_zone text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (CASE p_grain WHEN 'd' THEN p_start + 1 WHEN 'w' THEN p_start + 7
          ELSE (p_start + interval '1 month')::date END)::timestamp AT TIME ZONE p_zone
$$;

-- circ_drain() as in *_one_report_queue, with every bucket cut in the currency's zone.
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

  -- each batched currency's time zone: its buckets are its local days, ISO weeks and months
  CREATE TEMP TABLE circ_zone ON COMMIT DROP AS
  SELECT c.id AS currency_id, c.time_zone AS zone FROM currency c WHERE c.id IN (SELECT currency_id FROM circ_batch);

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
  SELECT x.*, z.zone, circ_local_day(x.at, z.zone) AS day
    FROM (
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
    FROM circ_flow f WHERE f.kind = 'redemption' OR (f.kind = 'fee' AND f.parent_kind = 'redemption')
    ) x JOIN circ_zone z ON z.currency_id = x.currency_id;

  INSERT INTO circ_account_bucket AS ab (currency_id, grain, start, account_id, d_bal, w_bal, issued, redeemed,
    paid_m, paid_b, n_paid, recv_m, recv_b, paid_ll, recv_ll, paid_lp)
  SELECT x.currency_id, g.grain, circ_bucket_of(x.day, g.grain), x.account_id,
         sum(x.d_bal),
         sum(x.d_bal * extract(epoch FROM circ_bucket_end(circ_bucket_of(x.day, g.grain), g.grain, x.zone) - x.at)),
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
  SELECT f.currency_id, g.grain, circ_bucket_start(f.at, g.grain, z.zone) AS start, f.payer, f.payee,
         sum(f.s * f.amount) AS volume, sum(f.s)::integer AS n
    FROM circ_flow f
    JOIN circ_zone z ON z.currency_id = f.currency_id
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
  SELECT DISTINCT x.currency_id, g.grain, circ_bucket_of(x.day, g.grain)
    FROM circ_fact x CROSS JOIN (VALUES ('d'), ('w'), ('m')) AS g (grain)
  ON CONFLICT DO NOTHING;
  INSERT INTO circ_dirty (currency_id, grain, start)
  SELECT s.currency_id, s.grain, s.start
    FROM circ_bucket_summary s
    JOIN (SELECT currency_id, min(day) AS day FROM circ_fact GROUP BY 1) f
      ON f.currency_id = s.currency_id AND s.start > f.day
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

  DROP TABLE circ_batch, circ_zone, circ_acc, circ_flow, circ_fact, circ_pairs;
  RETURN v_n;
END
$$;
