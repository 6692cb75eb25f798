-- Circulation aggregates: what the reports read instead of the transfer table.
--
-- Write side: one statement-level trigger on transfer queues the ids of new transfers (one INSERT per INSERT
-- statement, whatever wrote it: ledger_post, a batch function, a migration). Nothing else runs on the write path.
-- Read side: circ_drain() folds queued transfers into per-account and per-account-pair buckets (day, ISO week,
-- month) and deletes them from the queue in the same transaction. The queue is commit-order safe by
-- construction: a transfer whose transaction commits late is simply not visible (and not deleted) until it has
-- committed, and the next drain picks it up; nothing depends on ids or times being committed in order.
--
-- Flow figures (payments, issuance, redemption) sit in the bucket of the transfer's own time and leave it again
-- when the transfer is reversed (a reversal subtracts the reversed leg from the reversed leg's bucket), so a
-- report always counts "transfers not reversed". Balance figures (d_bal, w_bal) follow every entry at its own
-- time, reversals included, so balances at any bucket boundary are exact.

CREATE TABLE circ_pending (
  transfer_id uuid PRIMARY KEY
);

CREATE FUNCTION circ_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO circ_pending (transfer_id) SELECT id FROM circ_new;
  RETURN NULL;
END
$$;

CREATE TRIGGER circ_enqueue AFTER INSERT ON transfer
  REFERENCING NEW TABLE AS circ_new
  FOR EACH STATEMENT EXECUTE FUNCTION circ_enqueue();

-- Transfers that already exist when this migration runs are aggregated by the first drain.
INSERT INTO circ_pending (transfer_id) SELECT id FROM transfer;

-- grain: 'd' UTC day, 'w' ISO week (Monday, UTC), 'm' calendar month (UTC). start: the bucket's first day.
CREATE FUNCTION circ_bucket_start(p_at timestamptz, p_grain text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE p_grain
    WHEN 'd' THEN (p_at AT TIME ZONE 'UTC')::date
    WHEN 'w' THEN date_trunc('week', p_at AT TIME ZONE 'UTC')::date
    ELSE date_trunc('month', p_at AT TIME ZONE 'UTC')::date END
$$;

CREATE FUNCTION circ_bucket_end(p_start date, p_grain text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (CASE p_grain WHEN 'd' THEN p_start + 1 WHEN 'w' THEN p_start + 7
          ELSE (p_start + interval '1 month')::date END)::timestamp AT TIME ZONE 'UTC'
$$;

-- One row per (bucket, account) with any movement. Money columns are sums of signed amounts.
--   d_bal     net balance change in the bucket (every entry, every kind)
--   w_bal     sum of (change x seconds from the change to the bucket's end): with d_bal and the balance at the
--             bucket's start this gives the exact time integral of the balance over the bucket
--   issued    currency issued to the account; redeemed: currency a business turned in (redemption fee included)
--   paid_m/b  economic payments made to members / businesses; n_paid: how many payments made
--   recv_m/b  economic payments received from members / businesses
--   paid_ll, recv_ll  payments where payer and payee both sit in the currency's local areas
--   paid_lp   payments to a payee in the local areas (local re-spending, for the local multiplier)
CREATE TABLE circ_account_bucket (
  currency_id uuid NOT NULL REFERENCES currency (id),
  grain       char(1) NOT NULL CHECK (grain IN ('d', 'w', 'm')),
  start       date NOT NULL,
  account_id  uuid NOT NULL REFERENCES account (id),
  d_bal       numeric NOT NULL DEFAULT 0,
  w_bal       numeric NOT NULL DEFAULT 0,
  issued      numeric NOT NULL DEFAULT 0,
  redeemed    numeric NOT NULL DEFAULT 0,
  paid_m      numeric NOT NULL DEFAULT 0,
  paid_b      numeric NOT NULL DEFAULT 0,
  n_paid      integer NOT NULL DEFAULT 0,
  recv_m      numeric NOT NULL DEFAULT 0,
  recv_b      numeric NOT NULL DEFAULT 0,
  paid_ll     numeric NOT NULL DEFAULT 0,
  recv_ll     numeric NOT NULL DEFAULT 0,
  paid_lp     numeric NOT NULL DEFAULT 0,
  PRIMARY KEY (currency_id, grain, start, account_id)
) PARTITION BY LIST (grain);
-- one partition per grain: a report over months reads month rows packed together, not spread among days
CREATE TABLE circ_account_bucket_d PARTITION OF circ_account_bucket FOR VALUES IN ('d');
CREATE TABLE circ_account_bucket_w PARTITION OF circ_account_bucket FOR VALUES IN ('w');
CREATE TABLE circ_account_bucket_m PARTITION OF circ_account_bucket FOR VALUES IN ('m');

-- Economic payments per (bucket, payer account, payee account): the payment graph of every bucket.
CREATE TABLE circ_pair_bucket (
  currency_id uuid NOT NULL REFERENCES currency (id),
  grain       char(1) NOT NULL CHECK (grain IN ('d', 'w', 'm')),
  start       date NOT NULL,
  payer       uuid NOT NULL REFERENCES account (id),
  payee       uuid NOT NULL REFERENCES account (id),
  volume      numeric NOT NULL,
  n           integer NOT NULL,
  PRIMARY KEY (currency_id, grain, start, payer, payee)
) PARTITION BY LIST (grain);
CREATE TABLE circ_pair_bucket_d PARTITION OF circ_pair_bucket FOR VALUES IN ('d');
CREATE TABLE circ_pair_bucket_w PARTITION OF circ_pair_bucket FOR VALUES IN ('w');
CREATE TABLE circ_pair_bucket_m PARTITION OF circ_pair_bucket FOR VALUES IN ('m');

-- Every figure of one bucket taken as a report period (src/reports/circulation.report.ts, PeriodFigures), so a
-- report whose periods are whole days, weeks or months reads one row per period. Written by the aggregator's
-- summary step for every dirty bucket.
CREATE TABLE circ_bucket_summary (
  currency_id uuid NOT NULL REFERENCES currency (id),
  grain       char(1) NOT NULL CHECK (grain IN ('d', 'w', 'm')),
  start       date NOT NULL,
  figures     jsonb NOT NULL,
  computed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (currency_id, grain, start)
);

-- Buckets whose summary is out of date: those a drained transfer falls in, and every later summarised bucket
-- of the currency (their opening balances moved). In steady state transfers are posted now, so that is just
-- today's day, week and month.
CREATE TABLE circ_dirty (
  currency_id uuid NOT NULL,
  grain       char(1) NOT NULL,
  start       date NOT NULL,
  PRIMARY KEY (currency_id, grain, start)
);

-- Figures of periods that are not one bucket (the whole range of a multi-period report, a period clipped by
-- from/to), kept once computed. figures is set to NULL (stale) as soon as a drained transfer lies before the
-- period's end: such a transfer moved its flows or its opening balances. version is the currency's
-- circ_version when it was computed; a computation that raced a drain is not stored (see circulation.report.ts).
CREATE TABLE circ_composite (
  currency_id uuid NOT NULL REFERENCES currency (id),
  key         text NOT NULL,
  period      jsonb NOT NULL,
  end_at      timestamptz NOT NULL,
  figures     jsonb,
  version     bigint NOT NULL,
  used_at     timestamptz NOT NULL DEFAULT now(),
  computed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (currency_id, key)
);

-- Counts the drains that touched a currency's aggregates.
CREATE TABLE circ_version (
  currency_id uuid PRIMARY KEY REFERENCES currency (id),
  version     bigint NOT NULL
);

-- One drainer at a time per database (the advisory lock key is shared with src/reports/aggregate.ts).
-- Returns how many queued transfers it folded in; 0 when the queue is empty.
CREATE FUNCTION circ_drain(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
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

  DROP TABLE circ_batch, circ_acc, circ_flow, circ_fact, circ_pairs;
  RETURN v_n;
END
$$;

-- Research exports: the salt behind one export's pseudonyms, kept here and never sent. Both files of one export
-- (transfers and accounts) share it so they join; every new export gets a fresh one, so two exports never share
-- a pseudonym.
CREATE TABLE research_export (
  id          uuid PRIMARY KEY DEFAULT uuid_v7(),
  currency_id uuid NOT NULL REFERENCES currency (id),
  created_by  uuid NOT NULL REFERENCES app_user (id),
  salt        bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);
CREATE INDEX research_export_user_idx ON research_export (created_by, created_at);
