-- Texts refused before any PIN is checked against the number's (a PIN word that is no PIN, a number with no PIN
-- set, a number locked after wrong PINs) are idle texts too: they pay and read nothing. Answered every time, they
-- let whoever can send texts as a number (a spoofed sender, a phone's auto-responder) make the scheme text that
-- number without end: a PIN word that is no PIN is not counted towards the lock, and a locked number's texts never
-- lock anything further. The partial index names IDLE_OUTCOMES (src/domain/sms.ts) literally, as before.
DROP INDEX sms_inbound_idle_replies_idx;
CREATE INDEX sms_inbound_idle_replies_idx ON sms_inbound (from_phone, received_at)
  WHERE reply <> '' AND outcome IN ('help', 'unknown_command', 'unknown_sender', 'suspended', 'no_pin', 'locked', 'bad_pin');
