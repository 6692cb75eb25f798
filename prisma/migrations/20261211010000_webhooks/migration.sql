-- Webhooks (docs/shop.md). An endpoint is a business's (events of its own accounts: participant_id set) or an
-- issuer's (events of every account of the currency: participant_id NULL). Its deliveries are an outbox written
-- by a statement trigger on event, so every event commits with its deliveries or not at all; workers on any
-- instance claim due rows with FOR UPDATE SKIP LOCKED and lease them while they send (src/webhooks/worker.ts).

CREATE TABLE webhook (
  id                   uuid PRIMARY KEY DEFAULT uuid_v7(),
  currency_id          uuid NOT NULL REFERENCES currency (id),
  participant_id       uuid REFERENCES participant (id),
  url                  text NOT NULL CHECK (length(url) <= 2000),
  events               text[] NOT NULL CHECK (cardinality(events) >= 1),
  description          text,
  secret               text NOT NULL,
  status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'deleted')),
  consecutive_failures integer NOT NULL DEFAULT 0,
  failing_since        timestamptz,
  disabled_reason      text,
  created_by           text NOT NULL,
  created_at           timestamptz NOT NULL DEFAULT now(),
  disabled_at          timestamptz,
  deleted_at           timestamptz
);
CREATE INDEX webhook_currency_idx ON webhook (currency_id, id);

CREATE TABLE webhook_delivery (
  id              uuid PRIMARY KEY DEFAULT uuid_v7(),
  webhook_id      uuid NOT NULL REFERENCES webhook (id),
  event_id        bigint NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_attempt_at timestamptz,
  last_status_code integer,
  last_latency_ms integer,
  last_error      text,
  delivered_at    timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT webhook_delivery_once UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_delivery_due_idx ON webhook_delivery (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_delivery_webhook_idx ON webhook_delivery (webhook_id, id);

-- the outbox: one delivery per (active endpoint subscribed to the type, event of an account it covers)
CREATE FUNCTION webhook_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_delivery (webhook_id, event_id, next_attempt_at, created_at)
  SELECT w.id, e.id, now(), now()
    FROM event_new e
    JOIN webhook w ON w.currency_id = e.currency_id AND w.status = 'active' AND e.type = ANY (w.events)
   WHERE w.participant_id IS NULL
      OR w.participant_id = (SELECT a.participant_id FROM account a WHERE a.id = e.account_id)
   ORDER BY e.id, w.id;
  RETURN NULL;
END
$$;

CREATE TRIGGER webhook_enqueue AFTER INSERT ON event
  REFERENCING NEW TABLE AS event_new
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_enqueue();
