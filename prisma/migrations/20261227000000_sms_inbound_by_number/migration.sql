-- A number's answered idle texts of the last day: the service answers at most IDLE_REPLIES_PER_DAY texts a day
-- per number that pay and read nothing (src/domain/sms.ts), counted from this index when such a text comes in.
-- Partial, so the count reads at most that many entries however many texts a number floods (the unanswered and the
-- payments are not in it); the outcome list is IDLE_OUTCOMES, and the query names it literally so that the planner
-- can use the index (test/sms/inbound.test.ts checks the plan).
CREATE INDEX sms_inbound_idle_replies_idx ON sms_inbound (from_phone, received_at)
  WHERE reply <> '' AND outcome IN ('help', 'unknown_command', 'unknown_sender', 'suspended');
