-- Payment requests (issue 11): a business asks for an amount into one of its accounts; a member (or another
-- business) of the same currency pays it, at most once, through the ledger's one write path
-- (ledger_post_movements(), called by src/ledger/post.ts in the same transaction that marks the request paid).
--
-- status: pending -> paid | cancelled (by the payee) | declined (by a payer) | expired (past expires_at).
-- A pending request past its expires_at is expired whether or not the sweeper has written it yet; the service
-- decides with its clock (injectable in tests) and writes 'expired' when it sees one, in the same transaction as
-- the request.expired event.
--
-- Creating one is idempotent per caller: (created_by, idempotency_key) is unique and request_hash tells a replay
-- from a reused key. A status change notifies channel 'payment_request' with the request id (delivered at commit),
-- which long-polling GETs on every instance listen to.
CREATE TABLE payment_request (
  id               uuid PRIMARY KEY DEFAULT uuid_v7(),
  currency_id      uuid NOT NULL REFERENCES currency (id),
  to_account_id    uuid NOT NULL REFERENCES account (id),
  -- when set, only this account may pay or decline (a request addressed to someone); null: anyone holding the id
  from_account_id  uuid REFERENCES account (id),
  amount           numeric(24, 6) NOT NULL CHECK (amount > 0),
  reference        text,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'cancelled', 'declined', 'expired')),
  expires_at       timestamptz NOT NULL,
  created_by       text NOT NULL,
  idempotency_key  text NOT NULL,
  request_hash     text NOT NULL,
  -- the account that paid (or, addressed, declined) it, the payment's main transfer, who paid, declined or
  -- cancelled it (a login or API key id), and the paying call's Idempotency-Key and request hash
  payer_account_id uuid REFERENCES account (id),
  transfer_id      uuid REFERENCES transfer (id),
  closed_by        text,
  pay_key          text,
  pay_hash         text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'paid') = (transfer_id IS NOT NULL))
);
CREATE UNIQUE INDEX payment_request_idempotency_key ON payment_request (created_by, idempotency_key);
CREATE UNIQUE INDEX payment_request_transfer_key ON payment_request (transfer_id);
CREATE INDEX payment_request_to_idx ON payment_request (to_account_id, id);
CREATE INDEX payment_request_from_idx ON payment_request (from_account_id, id) WHERE from_account_id IS NOT NULL;
CREATE INDEX payment_request_payer_idx ON payment_request (payer_account_id, id) WHERE payer_account_id IS NOT NULL;
-- the expiry sweeper's scan
CREATE INDEX payment_request_pending_expiry_idx ON payment_request (expires_at) WHERE status = 'pending';

CREATE FUNCTION payment_request_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status IS DISTINCT FROM OLD.status THEN
    PERFORM pg_notify('payment_request', NEW.id::text);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER payment_request_status_notify AFTER UPDATE OF status ON payment_request
  FOR EACH ROW EXECUTE FUNCTION payment_request_notify();
