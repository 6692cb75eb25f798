-- Pay by text (docs/text-payments.md): a business's short text code, members' verified phones and text PINs, the
-- inbound messages already answered (a gateway that retries gets the same answer and pays once), and the outbox
-- every outgoing text is written to in the transaction that decided to send it.

-- A business's code in "pay <code> <amount> <pin>": upper-case, short, unique within its currency.
ALTER TABLE participant ADD COLUMN text_code text;
ALTER TABLE participant ADD CONSTRAINT participant_text_code_check
  CHECK (text_code IS NULL OR (kind = 'business' AND text_code ~ '^[A-Z][A-Z0-9]{2,11}$'));
CREATE UNIQUE INDEX participant_text_code_key ON participant (currency_id, text_code);

-- One row per participant that has started registering a phone or set a text PIN.
CREATE TABLE text_phone (
  participant_id  uuid PRIMARY KEY REFERENCES participant (id),
  currency_id     uuid NOT NULL REFERENCES currency (id),
  -- the verified number (E.164); a number is verified for one participant at a time
  phone           text,
  -- a number waiting for its code, the code's hash, when it expires and was sent, wrong codes tried so far
  pending_phone   text,
  code_hash       text,
  code_expires_at timestamptz,
  code_sent_at    timestamptz,
  code_failures   integer NOT NULL DEFAULT 0,
  -- scrypt hash of the text PIN; wrong PINs in a row; set when they reached the limit (text payments locked)
  pin_hash        text,
  pin_failures    integer NOT NULL DEFAULT 0,
  locked_at       timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT text_phone_e164 CHECK (phone IS NULL OR phone ~ '^\+[1-9][0-9]{6,14}$'),
  CONSTRAINT text_phone_pending_e164 CHECK (pending_phone IS NULL OR pending_phone ~ '^\+[1-9][0-9]{6,14}$'),
  CONSTRAINT text_phone_failures CHECK (pin_failures >= 0 AND code_failures >= 0)
);
CREATE UNIQUE INDEX text_phone_phone_key ON text_phone (phone);
CREATE INDEX text_phone_currency_idx ON text_phone (currency_id);

-- Every signed inbound message, by the gateway's MessageSid: what it asked (never its PIN) and what was answered.
CREATE TABLE sms_inbound (
  message_sid    text PRIMARY KEY,
  from_phone     text NOT NULL,
  currency_id    uuid,
  participant_id uuid,
  command        text NOT NULL CHECK (command IN ('pay', 'bal', 'help', 'unknown')),
  outcome        text NOT NULL,
  transfer_id    uuid,
  reply          text NOT NULL,
  received_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sms_inbound_currency_idx ON sms_inbound (currency_id, received_at);

-- Outgoing texts (the outbound port's outbox implementation). A gateway adapter, when configured, sends the queued
-- ones and marks them; without one they stay queued and readable by the currency's issuers.
CREATE TABLE sms_outbox (
  id             uuid PRIMARY KEY DEFAULT uuid_v7(),
  currency_id    uuid REFERENCES currency (id),
  participant_id uuid,
  to_phone       text NOT NULL,
  purpose        text NOT NULL CHECK (purpose IN ('verification', 'reply', 'receipt')),
  body           text NOT NULL,
  in_reply_to    text,
  status         text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
  attempts       integer NOT NULL DEFAULT 0,
  gateway_id     text,
  last_error     text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  sent_at        timestamptz
);
CREATE INDEX sms_outbox_currency_idx ON sms_outbox (currency_id, id);
-- what the gateway adapter picks up (not in schema.prisma: Prisma cannot express a partial index)
CREATE INDEX sms_outbox_queued_idx ON sms_outbox (id) WHERE status = 'queued';
