-- Rotating a webhook's signing secret (POST /v1/webhooks/{id}/secret) takes an Idempotency-Key. Before, a client
-- that lost the answer and retried rotated twice: the secret it held before dropped out of the day of overlap at
-- once (a rotation keeps only the one secret before it), and the secret of the first rotation, never seen, took
-- its place. Now a retry with the same key answers the first rotation again, with the same new secret.
--
-- Every rotation's key, per login and endpoint; the endpoint keeps which one made its current secret, the only one
-- whose answer can be given again (an earlier rotation's secret is no longer the endpoint's).
CREATE TABLE webhook_rotation (
  currency_id uuid NOT NULL,
  webhook_id uuid NOT NULL,
  created_by text NOT NULL,
  idempotency_key text NOT NULL,
  request_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (currency_id, webhook_id, created_by, idempotency_key)
);
ALTER TABLE webhook
  ADD COLUMN rotated_by text,
  ADD COLUMN rotation_key text;
