-- A delivery carries its endpoint's currency, so that a claim takes each currency's oldest due deliveries in turn
-- (src/webhooks/worker.ts): ranked over everyone's oldest together, one currency's backlog (its businesses'
-- endpoints that never answer, or a flood of their events) kept another currency's deliveries out of every claim.
--
-- Only pending deliveries need it (claims read nothing else; retrying a delivered or failed one sets it). The
-- delivery history is not rewritten: this migration holds the table's lock, and every payment's events insert
-- deliveries, so rewriting a large history stopped payments meanwhile (a helper session measured 12.7 s on 1.1M
-- rows). For the same reason the check is NOT VALID: it holds for every row written from now on, and the update
-- above is what makes the pending rows already there satisfy it.
ALTER TABLE webhook_delivery ADD COLUMN currency_id uuid;
UPDATE webhook_delivery d SET currency_id = w.currency_id FROM webhook w WHERE w.id = d.webhook_id AND d.status = 'pending';
ALTER TABLE webhook_delivery ADD CONSTRAINT webhook_delivery_pending_has_currency
  CHECK (status <> 'pending' OR currency_id IS NOT NULL) NOT VALID;

-- a currency's due deliveries, oldest first: what each claim reads, one currency after another
DROP INDEX webhook_delivery_due_idx;
CREATE INDEX webhook_delivery_currency_due_idx ON webhook_delivery (currency_id, next_attempt_at, id) WHERE status = 'pending';

CREATE OR REPLACE FUNCTION webhook_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_delivery (webhook_id, currency_id, event_id, next_attempt_at, created_at)
  SELECT w.id, w.currency_id, e.id, now(), now()
    FROM event_new e
    JOIN webhook w ON w.currency_id = e.currency_id AND w.status = 'active' AND e.type = ANY (w.events)
   WHERE w.participant_id IS NULL
      OR w.participant_id = (SELECT a.participant_id FROM account a WHERE a.id = e.account_id)
   ORDER BY e.id, w.id;
  RETURN NULL;
END
$$;
