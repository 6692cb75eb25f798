-- A webhook's signing secret can be replaced (POST /v1/webhooks/{id}/secret) without losing the endpoint or its
-- delivery log. For a day the old secret keeps signing beside the new one (two signatures in webhook-signature, as
-- Standard Webhooks allows), so a receiver can switch over without missing or refusing a delivery.
ALTER TABLE webhook
  ADD COLUMN previous_secret text,
  ADD COLUMN previous_secret_until timestamptz,
  ADD CONSTRAINT webhook_previous_secret_check CHECK ((previous_secret IS NULL) = (previous_secret_until IS NULL));
