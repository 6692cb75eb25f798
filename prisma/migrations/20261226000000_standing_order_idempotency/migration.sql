-- Creating a standing order takes an Idempotency-Key, as a payment request's creation does: a client that retries
-- a create whose answer it lost gets the first order back, not a second order paying the same money again. Keys are
-- per login (created_by). Orders made before this migration, and the simulator's, have none; NULLs are distinct in
-- a unique index, so they never conflict.
ALTER TABLE standing_order
  ADD COLUMN idempotency_key text,
  ADD COLUMN request_hash text,
  ADD CONSTRAINT standing_order_idempotency_check CHECK ((idempotency_key IS NULL) = (request_hash IS NULL));
CREATE UNIQUE INDEX standing_order_idempotency_key ON standing_order (created_by, idempotency_key);
