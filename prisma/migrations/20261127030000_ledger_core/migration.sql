-- Ledger core: currencies (the tenant), participants, accounts, transfers, entries, idempotency keys, logins.
-- Every ledger row carries currency_id and no function touches two currencies, so the ledger can later be
-- distributed by currency without a redesign.

-- Time-ordered UUIDs (RFC 9562 v7) for PostgreSQL 15, which has no uuidv7() of its own:
-- 48 bits of Unix milliseconds over a random v4, with the version and variant bits set.
CREATE FUNCTION uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

CREATE TABLE currency (
  id             uuid PRIMARY KEY DEFAULT uuid_v7(),
  code           text NOT NULL UNIQUE CHECK (code ~ '^[A-Z][A-Z0-9]{1,9}$'),
  name           text NOT NULL,
  backing        text NOT NULL CHECK (backing ~ '^[A-Z]{3}$'),
  decimals       integer NOT NULL CHECK (decimals BETWEEN 0 AND 6),
  fee_text       numeric(7, 6) NOT NULL DEFAULT 0 CHECK (fee_text >= 0 AND fee_text < 1),
  fee_app        numeric(7, 6) NOT NULL DEFAULT 0 CHECK (fee_app >= 0 AND fee_app < 1),
  fee_online     numeric(7, 6) NOT NULL DEFAULT 0 CHECK (fee_online >= 0 AND fee_online < 1),
  fee_api        numeric(7, 6) NOT NULL DEFAULT 0 CHECK (fee_api >= 0 AND fee_api < 1),
  fee_till       numeric(7, 6) NOT NULL DEFAULT 0 CHECK (fee_till >= 0 AND fee_till < 1),
  redemption_fee numeric(7, 6) NOT NULL DEFAULT 0 CHECK (redemption_fee >= 0 AND redemption_fee < 1),
  local_areas    text[] NOT NULL DEFAULT '{}',
  created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE participant (
  id          uuid PRIMARY KEY DEFAULT uuid_v7(),
  currency_id uuid NOT NULL REFERENCES currency (id),
  kind        text NOT NULL CHECK (kind IN ('member', 'business')),
  name        text NOT NULL,
  postcode    text NOT NULL,
  district    text NOT NULL,
  sector      text,
  independent boolean,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'business') = (sector IS NOT NULL AND independent IS NOT NULL))
);
CREATE INDEX participant_directory_idx ON participant (currency_id, kind, name, id);

CREATE TABLE account (
  id             uuid PRIMARY KEY DEFAULT uuid_v7(),
  currency_id    uuid NOT NULL REFERENCES currency (id),
  participant_id uuid REFERENCES participant (id),
  -- system accounts have no participant: issuance (the negative mirror of all currency outstanding),
  -- fees (fee income), paper (the float of paper notes in people's hands)
  system_kind    text CHECK (system_kind IN ('issuance', 'fees', 'paper')),
  balance        numeric(24, 6) NOT NULL DEFAULT 0,
  floor          numeric(24, 6),
  ceiling        numeric(24, 6),
  status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CHECK ((participant_id IS NULL) <> (system_kind IS NULL)),
  CONSTRAINT account_floor_check CHECK (floor IS NULL OR balance >= floor),
  CONSTRAINT account_ceiling_check CHECK (ceiling IS NULL OR balance <= ceiling),
  CONSTRAINT account_limits_check CHECK (floor IS NULL OR ceiling IS NULL OR floor <= ceiling)
);
CREATE INDEX account_participant_idx ON account (participant_id);
CREATE UNIQUE INDEX account_system_idx ON account (currency_id, system_kind) WHERE system_kind IS NOT NULL;

-- Transfers are immutable: corrections are new transfers of kind 'reversal' that point at what they reverse.
CREATE TABLE transfer (
  id              uuid PRIMARY KEY DEFAULT uuid_v7(),
  currency_id     uuid NOT NULL REFERENCES currency (id),
  kind            text NOT NULL CHECK (kind IN ('payment', 'fee', 'issuance', 'redemption', 'reversal')),
  channel         text CHECK (channel IN ('text', 'app', 'online', 'api', 'till')),
  from_account_id uuid NOT NULL REFERENCES account (id),
  to_account_id   uuid NOT NULL REFERENCES account (id),
  amount          numeric(24, 6) NOT NULL CHECK (amount > 0),
  reference       text,
  metadata        jsonb NOT NULL DEFAULT '{}',
  -- a fee (or a reversal's second leg) belongs to the first transfer of the same money movement
  parent_id       uuid REFERENCES transfer (id),
  -- at most one reversal per transfer, enforced by the index rather than by a read-then-write race
  reverses_id     uuid CONSTRAINT transfer_reverses_once UNIQUE REFERENCES transfer (id),
  created_by      text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  CHECK (from_account_id <> to_account_id)
);
CREATE INDEX transfer_currency_time_idx ON transfer (currency_id, created_at, id);
CREATE INDEX transfer_from_idx ON transfer (from_account_id, created_at);
CREATE INDEX transfer_to_idx ON transfer (to_account_id, created_at);
CREATE INDEX transfer_parent_idx ON transfer (parent_id) WHERE parent_id IS NOT NULL;

-- Two entries per transfer, each with the balance after it, so any balance at any time can be read back.
-- Within one account the identity order is the posting order: entries are written under the account's row lock.
CREATE TABLE entry (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  currency_id   uuid NOT NULL REFERENCES currency (id),
  transfer_id   uuid NOT NULL REFERENCES transfer (id),
  account_id    uuid NOT NULL REFERENCES account (id),
  amount        numeric(24, 6) NOT NULL CHECK (amount <> 0),
  balance_after numeric(24, 6) NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entry_account_idx ON entry (account_id, id);
CREATE INDEX entry_transfer_idx ON entry (transfer_id);

-- The sterling side: every issuance, redemption and their reversals move the recorded reserve.
CREATE TABLE reserve_movement (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  currency_id       uuid NOT NULL REFERENCES currency (id),
  transfer_id       uuid NOT NULL REFERENCES transfer (id),
  amount            numeric(24, 6) NOT NULL,
  sterling_reference text,
  created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reserve_movement_currency_idx ON reserve_movement (currency_id, id);

-- One money movement per (principal, key). The response is rebuilt from the immutable transfer it points at,
-- so a replay is byte-identical without storing the response body.
CREATE TABLE idempotency_key (
  scope        text NOT NULL,
  key          text NOT NULL,
  currency_id  uuid NOT NULL REFERENCES currency (id),
  request_hash text NOT NULL,
  transfer_id  uuid NOT NULL REFERENCES transfer (id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);

-- Logins. role: platform_issuer (no currency), issuer, researcher, member, business (one currency each).
CREATE TABLE app_user (
  id             uuid PRIMARY KEY DEFAULT uuid_v7(),
  username       text NOT NULL UNIQUE,
  password_hash  text NOT NULL,
  role           text NOT NULL CHECK (role IN ('platform_issuer', 'issuer', 'researcher', 'member', 'business')),
  name           text NOT NULL,
  currency_id    uuid REFERENCES currency (id),
  participant_id uuid UNIQUE REFERENCES participant (id),
  created_at     timestamptz NOT NULL DEFAULT now(),
  CHECK ((role = 'platform_issuer') = (currency_id IS NULL)),
  CHECK ((role IN ('member', 'business')) = (participant_id IS NOT NULL))
);

-- A money movement as JSON: its main transfer first, then the legs that point at it (a fee). Amounts and times
-- are text so that no client parses them through a float; the same shape serves the first response, its replays
-- and GET /v1/transfers/{id}, so a replay is byte-identical.
CREATE FUNCTION transfer_legs(p_main uuid) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_agg(jsonb_build_object(
      'id', t.id, 'kind', t.kind, 'channel', t.channel,
      'fromAccount', t.from_account_id, 'toAccount', t.to_account_id, 'amount', t.amount::text,
      'reference', t.reference, 'metadata', t.metadata, 'parentId', t.parent_id, 'reversesId', t.reverses_id,
      'createdAt', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
    ORDER BY (t.id <> p_main), t.id)
  FROM transfer t
  WHERE t.id = p_main OR t.parent_id = p_main
$$;

-- The one write path that moves money. One call = one money movement of one or more legs (a payment and its
-- fee; a redemption and its fee; a reversal of both), in one transaction, one round trip.
--   1. claim the idempotency key: a concurrent holder of the same key gets IDEMPOTENCY_IN_FLIGHT at once; an
--      earlier completed claim returns it for replay (or IDEMPOTENCY_KEY_REUSED when the body differs);
--   2. lock every touched account in id order (FOR NO KEY UPDATE, one at a time: no deadlocks, no waits behind
--      a batch) and check currency and status;
--   3. insert every leg's transfer (main first, so the others can point at it), then move the balances leg by
--      leg in p_apply_order (a reversal gives back the fee before it takes back the payment) and write two
--      entries per leg; floor and ceiling are checked by the account table's constraints on every update;
--   4. record the key, and the sterling reserve movement when there is one.
-- Domain failures raise SQLSTATE 'CL001' with the stable problem code as the message; constraint failures
-- (floor, ceiling, reverse-once) surface as themselves. The caller maps both to problem codes.
CREATE FUNCTION ledger_post(
  p_currency uuid, p_scope text, p_key text, p_request_hash text, p_created_by text,
  p_kinds text[], p_from uuid[], p_to uuid[], p_amounts numeric[],
  p_channel text, p_reference text, p_metadata jsonb,
  p_reverses uuid[], p_reserve_delta numeric, p_sterling_reference text,
  p_owner uuid, p_apply_order integer[]
) RETURNS TABLE (replayed boolean, legs jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v_prior   idempotency_key%ROWTYPE;
  v_acc     account%ROWTYPE;
  v_id      uuid;
  v_ids     uuid[] := '{}';
  v_from    numeric;
  v_to      numeric;
  v_now     timestamptz := now();
  i         integer;
BEGIN
  IF p_key IS NOT NULL THEN
    IF NOT pg_try_advisory_xact_lock(hashtextextended(p_scope || chr(31) || p_key, 7)) THEN
      RAISE EXCEPTION USING ERRCODE = 'CL001', MESSAGE = 'IDEMPOTENCY_IN_FLIGHT';
    END IF;
    SELECT * INTO v_prior FROM idempotency_key k WHERE k.scope = p_scope AND k.key = p_key;
    IF FOUND THEN
      IF v_prior.request_hash <> p_request_hash THEN
        RAISE EXCEPTION USING ERRCODE = 'CL001', MESSAGE = 'IDEMPOTENCY_KEY_REUSED';
      END IF;
      RETURN QUERY SELECT true, transfer_legs(v_prior.transfer_id);
      RETURN;
    END IF;
  END IF;

  FOR v_id IN SELECT DISTINCT a FROM unnest(p_from || p_to) AS a ORDER BY 1 LOOP
    SELECT * INTO v_acc FROM account WHERE id = v_id FOR NO KEY UPDATE;
    -- p_owner: the payer's participant when a member or business pays; someone else's account is "not found"
    IF NOT FOUND OR (p_owner IS NOT NULL AND v_id = p_from[1] AND v_acc.participant_id IS DISTINCT FROM p_owner) THEN
      RAISE EXCEPTION USING ERRCODE = 'CL001', MESSAGE = 'ACCOUNT_NOT_FOUND', DETAIL = v_id::text;
    END IF;
    IF v_acc.currency_id <> p_currency THEN
      RAISE EXCEPTION USING ERRCODE = 'CL001', MESSAGE = 'CURRENCY_MISMATCH', DETAIL = v_id::text;
    END IF;
    IF v_acc.status <> 'active' THEN
      RAISE EXCEPTION USING ERRCODE = 'CL001',
        MESSAGE = CASE v_acc.status WHEN 'frozen' THEN 'ACCOUNT_FROZEN' ELSE 'ACCOUNT_CLOSED' END, DETAIL = v_id::text;
    END IF;
  END LOOP;

  FOR i IN 1 .. array_length(p_kinds, 1) LOOP
    v_id := uuid_v7();
    INSERT INTO transfer (id, currency_id, kind, channel, from_account_id, to_account_id, amount, reference,
                          metadata, parent_id, reverses_id, created_by, created_at)
    VALUES (v_id, p_currency, p_kinds[i], p_channel, p_from[i], p_to[i], p_amounts[i], p_reference,
            COALESCE(p_metadata, '{}'), v_ids[1], p_reverses[i], p_created_by, v_now);
    v_ids := v_ids || v_id;
  END LOOP;

  FOREACH i IN ARRAY COALESCE(p_apply_order, ARRAY(SELECT generate_subscripts(p_kinds, 1))) LOOP
    -- floor and ceiling are CHECK constraints on account (account_floor_check, account_ceiling_check): the
    -- update itself refuses to pass them, and the caller maps the constraint to INSUFFICIENT_FUNDS/CEILING_EXCEEDED
    UPDATE account SET balance = balance - p_amounts[i], updated_at = v_now
     WHERE id = p_from[i] RETURNING balance INTO v_from;
    UPDATE account SET balance = balance + p_amounts[i], updated_at = v_now
     WHERE id = p_to[i] RETURNING balance INTO v_to;
    INSERT INTO entry (currency_id, transfer_id, account_id, amount, balance_after, created_at)
    VALUES (p_currency, v_ids[i], p_from[i], -p_amounts[i], v_from, v_now),
           (p_currency, v_ids[i], p_to[i], p_amounts[i], v_to, v_now);
  END LOOP;

  IF p_reserve_delta IS NOT NULL AND p_reserve_delta <> 0 THEN
    INSERT INTO reserve_movement (currency_id, transfer_id, amount, sterling_reference, created_at)
    VALUES (p_currency, v_ids[1], p_reserve_delta, p_sterling_reference, v_now);
  END IF;
  IF p_key IS NOT NULL THEN
    INSERT INTO idempotency_key (scope, key, currency_id, request_hash, transfer_id, created_at)
    VALUES (p_scope, p_key, p_currency, p_request_hash, v_ids[1], v_now);
  END IF;
  RETURN QUERY SELECT false, transfer_legs(v_ids[1]);
END
$$;
