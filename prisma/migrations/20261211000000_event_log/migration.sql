-- The event log: what happened to an account, in the order it happened to that account, durable, for the live
-- stream (GET /v1/accounts/{id}/events, Last-Event-ID resumes from here) and the webhooks' outbox.
--
-- Written in the same transaction as what causes it, by the database itself:
--   * payments: a statement-level trigger on transfer (one INSERT ... SELECT per statement, over the statement's
--     transition table), so every writer of transfers is covered (the service, batches, the coalescer, the
--     simulator) and a refused or rolled-back payment never has an event;
--   * everything else (payment requests, standing orders, ...): src/events/record.ts, recordEvent(), inside the
--     caller's transaction.
--
-- The id is the event id clients see. Ids of ONE account's events rise in the order those events commit: every
-- writer of an account's event holds that account's row lock (FOR NO KEY UPDATE) until it commits (the posting
-- function locks every account it moves before it inserts the transfers; recordEvent() locks the account), and
-- the id is drawn under the lock. So a reader that has seen an account's event n has seen every earlier one of
-- that account, and resuming "after n" never skips an event that commits late. (Across accounts ids are NOT in
-- commit order; no reader relies on that.)
--
-- Every INSERT into event sends NOTIFY circulate_events (payload: the currency id) when it commits, so every
-- instance of the service learns of new events (src/events/hub.ts listens on one dedicated connection).

CREATE TABLE event (
  id          bigserial PRIMARY KEY,
  currency_id uuid NOT NULL,
  account_id  uuid NOT NULL,
  type        text NOT NULL CHECK (type ~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)+$' AND length(type) <= 64),
  data        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_account_idx ON event (account_id, id);
CREATE INDEX event_currency_idx ON event (currency_id, id);

-- append-only, like the ledger's rows
CREATE TRIGGER event_append_only BEFORE UPDATE OR DELETE ON event
  FOR EACH ROW EXECUTE FUNCTION ledger_rows_immutable();
CREATE TRIGGER event_no_truncate BEFORE TRUNCATE ON event
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_rows_immutable();

-- payment.sent (the payer's account) and payment.received (the payee's) for each payment of the statement: a
-- main transfer of kind 'payment'; its fee is the sum of its 'fee' legs (posted in the same statement). Amounts
-- are text at the currency's decimals, as the API writes them.
CREATE FUNCTION event_from_transfers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event (currency_id, account_id, type, data, created_at)
  SELECT p.currency_id, s.account, s.type,
         jsonb_build_object(
           'transferId', p.id, 'currency', c.code, 'fromAccount', p.from_account_id, 'toAccount', p.to_account_id,
           'amount', round(p.amount, c.decimals)::text, 'fee', round(coalesce(f.fee, 0), c.decimals)::text,
           'channel', p.channel, 'reference', p.reference, 'createdAt', api_time(p.created_at)),
         p.created_at
    FROM event_new_transfers p
    JOIN currency c ON c.id = p.currency_id
    LEFT JOIN (SELECT parent_id, sum(amount) AS fee FROM event_new_transfers
                WHERE kind = 'fee' AND parent_id IS NOT NULL GROUP BY parent_id) f ON f.parent_id = p.id
   CROSS JOIN LATERAL (VALUES (1, p.from_account_id, 'payment.sent'), (2, p.to_account_id, 'payment.received'))
         AS s(o, account, type)
   WHERE p.kind = 'payment' AND p.parent_id IS NULL
   ORDER BY p.id, s.o;
  RETURN NULL;
END
$$;

CREATE TRIGGER event_from_transfers AFTER INSERT ON transfer
  REFERENCING NEW TABLE AS event_new_transfers
  FOR EACH STATEMENT EXECUTE FUNCTION event_from_transfers();

-- One NOTIFY per currency per statement (PostgreSQL folds identical notifications of a transaction into one and
-- delivers them only on commit; a rolled-back transaction or savepoint sends nothing).
CREATE FUNCTION event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_cur uuid;
BEGIN
  FOR v_cur IN SELECT DISTINCT currency_id FROM event_new LOOP
    PERFORM pg_notify('circulate_events', v_cur::text);
  END LOOP;
  RETURN NULL;
END
$$;

CREATE TRIGGER event_notify AFTER INSERT ON event
  REFERENCING NEW TABLE AS event_new
  FOR EACH STATEMENT EXECUTE FUNCTION event_notify();
