-- A number's texts of the last day: the service answers at most IDLE_REPLIES_PER_DAY of those that pay and read
-- nothing (src/domain/sms.ts), counted from this table when such a text comes in.
CREATE INDEX sms_inbound_from_idx ON sms_inbound (from_phone, received_at);
