-- Verification codes texted per day. A participant could ask for a code for any number every minute and guess
-- each code CODE_MAX_FAILURES times: thousands of guesses a day at a six-digit code, and a text a minute to a
-- number that is not theirs. The service now counts the verification texts of the last day to the number and by
-- the participant (src/services/sms.service.ts, registerPhone) from the outbox; these two partial indexes keep
-- that count to the few rows it is about (not in schema.prisma: Prisma cannot express a partial index).
CREATE INDEX sms_outbox_verification_phone_idx ON sms_outbox (to_phone, created_at) WHERE purpose = 'verification';
CREATE INDEX sms_outbox_verification_participant_idx ON sms_outbox (participant_id, created_at) WHERE purpose = 'verification';
