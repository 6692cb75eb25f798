-- Standing orders (docs/scheme-operations.md): a payment on a schedule, executed by the scheduler inside the
-- service (src/scheduler/standing-orders.ts). Each due date gets one occurrence row, unique per (order, due date),
-- and its payment is posted through the ledger's one write path with its own idempotency key, so an occurrence is
-- paid at most once whatever number of instances run the scheduler, and however often it is retried.

CREATE TABLE standing_order (
  id              uuid PRIMARY KEY DEFAULT uuid_v7(),
  currency_id     uuid NOT NULL REFERENCES currency (id),
  from_account_id uuid NOT NULL REFERENCES account (id),
  to_account_id   uuid NOT NULL REFERENCES account (id),
  -- the participant who pays (the from account's owner): the ledger checks it again at every payment
  payer_id        uuid NOT NULL REFERENCES participant (id),
  amount          numeric(24, 6) NOT NULL CHECK (amount > 0),
  reference       text NOT NULL,
  every           text NOT NULL CHECK (every IN ('week', 'month')),
  -- week: ISO weekday (1 Monday .. 7 Sunday); month: day of the month (29..31 fall on a shorter month's last day)
  day             integer NOT NULL,
  starts_on       date NOT NULL,
  ends_on         date,
  -- the next due date that has no occurrence row yet; NULL when the order has no more
  next_due        date,
  status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled', 'finished')),
  created_by      text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  cancelled_at    timestamptz,
  CHECK (from_account_id <> to_account_id),
  CHECK ((every = 'week' AND day BETWEEN 1 AND 7) OR (every = 'month' AND day BETWEEN 1 AND 31)),
  CHECK (ends_on IS NULL OR ends_on >= starts_on)
);
CREATE INDEX standing_order_account_idx ON standing_order (from_account_id, id);
CREATE INDEX standing_order_due_idx ON standing_order (next_due) WHERE status = 'active';

-- One row per due date. pending: not tried yet; retrying: failed once, tried again on next_attempt_on; paid (with
-- its transfer); failed (twice: final); cancelled (the order was cancelled before it was paid).
CREATE TABLE standing_order_occurrence (
  id                uuid PRIMARY KEY DEFAULT uuid_v7(),
  standing_order_id uuid NOT NULL REFERENCES standing_order (id),
  currency_id       uuid NOT NULL REFERENCES currency (id),
  due_on            date NOT NULL,
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'retrying', 'paid', 'failed', 'cancelled')),
  attempts          integer NOT NULL DEFAULT 0,
  next_attempt_on   date NOT NULL,
  transfer_id       uuid,
  failure_code      text,
  failure_detail    text,
  last_attempt_at   timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT standing_order_occurrence_once UNIQUE (standing_order_id, due_on),
  CHECK ((status = 'paid') = (transfer_id IS NOT NULL))
);
CREATE INDEX standing_order_occurrence_todo_idx ON standing_order_occurrence (next_attempt_on, standing_order_id)
  WHERE status IN ('pending', 'retrying');
