-- A delivery being sent says so: a claim sets sending_until (the end of its lease) and the send's outcome clears it.
-- Before, a manual retry (POST /v1/webhooks/{id}/deliveries/{deliveryId}/retry) or a lifted suspension made a
-- delivery due at once while a worker was still sending it, so the next claim sent it a second time beside the
-- first; now both leave a delivery under way alone (a retry answers 409 DELIVERY_SENDING until the send has ended).
-- A nullable column without a default: no rewrite of the table, which every payment's events insert into.
ALTER TABLE webhook_delivery ADD COLUMN sending_until timestamptz;
