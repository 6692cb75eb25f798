-- Holding periods (docs/metrics.md, "Holding time"): a trace of every account's balance through the ledger in
-- time order, from the start of history, kept as per-day partial results and replayed by the aggregator
-- (src/reports/holding.ts) from the earliest day a new transfer changes.
--
-- Write side: one statement-level trigger on transfer queues, per new transfer, the earliest instant it changes
-- (its own time, or for a reversal the reversed transfer's time, as a reversal removes that transfer from
-- history). Read side: the aggregator takes the queue, replays from the last checkpoint at or before the
-- earliest queued day, and rewrites the days from there on.

CREATE TABLE circ_holding_pending (
  transfer_id uuid PRIMARY KEY,
  currency_id uuid NOT NULL,
  at          timestamptz NOT NULL
);

CREATE FUNCTION circ_holding_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO circ_holding_pending (transfer_id, currency_id, at)
  SELECT n.id, n.currency_id, LEAST(n.created_at, r.created_at)
    FROM circ_holding_new n LEFT JOIN transfer r ON r.id = n.reverses_id
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END
$$;

CREATE TRIGGER circ_holding_enqueue AFTER INSERT ON transfer
  REFERENCING NEW TABLE AS circ_holding_new
  FOR EACH STATEMENT EXECUTE FUNCTION circ_holding_enqueue();

-- Existing history is traced by the first catch-up.
INSERT INTO circ_holding_pending (transfer_id, currency_id, at)
SELECT DISTINCT ON (currency_id) id, currency_id, created_at FROM transfer ORDER BY currency_id, created_at;

-- One row per UTC day with at least one traced transfer. figures: the day's measured payments (by payer kind:
-- weight, weight x holding time, histogram by whole hours) and its flows across the local boundary; dormancy:
-- participants' balances at the day's end, grouped by the day each account was last touched.
CREATE TABLE circ_holding_day (
  currency_id uuid NOT NULL,
  day         date NOT NULL,
  figures     jsonb NOT NULL,
  dormancy    jsonb NOT NULL,
  computed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (currency_id, day)
);

-- The trace's state (every account's balance, mean arrival time and last touch) at the start of `day`: kept at
-- each month's first day and at the start of the last traced day, so a replay starts near what changed.
CREATE TABLE circ_holding_checkpoint (
  currency_id uuid NOT NULL,
  day         date NOT NULL,
  state       jsonb NOT NULL,
  PRIMARY KEY (currency_id, day)
);
