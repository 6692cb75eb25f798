-- The gateway adapter (src/sms/gateway.ts) retries a text the gateway did not take after a growing pause: a queued
-- row is not tried again before next_attempt_at.
ALTER TABLE sms_outbox ADD COLUMN next_attempt_at timestamptz;
