-- A simulated clock for the demo's seeding tool (src/simulator), so a simulated year of transfers carries
-- realistic times while still going through ledger_post(), the one write path, with all of its rules.
--
-- How it stays honest:
--   * ledger_post() keeps its signature and its behaviour for every other caller: its clock is ledger_clock(),
--     which is now() unless the transaction-local setting circulate.ledger_clock is set;
--   * only ledger_post_at() sets that setting, transaction-locally (set_config(..., true)): it ends with the one
--     statement's transaction and never leaks to the next user of a pooled connection;
--   * ledger_post_at() serves only a session that names itself 'circulate-simulator' (application_name; the
--     service's own pool is 'circulate'), never dates a transfer in the future, and never dates it before the
--     currency's latest transfer: simulated history is appended in time order and cannot be slipped in behind
--     real transfers, so every account's entries stay in time order as well as in posting order.

-- RFC 9562 v7 UUID for a given time (uuid_v7() is the same at clock_timestamp()).
CREATE FUNCTION uuid_v7_at(p_at timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send((extract(epoch FROM p_at) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

-- The ledger's clock: now(), or the time ledger_post_at() set for this transaction. An unset custom setting
-- reads as NULL, and as '' once a transaction that set it locally has ended.
CREATE FUNCTION ledger_clock() RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT COALESCE(NULLIF(current_setting('circulate.ledger_clock', true), '')::timestamptz, now())
$$;

-- ledger_post() as in 20261127030000_ledger_core, with two changes only: v_now comes from ledger_clock(), and a
-- simulated posting's transfer ids carry its simulated time.
CREATE OR REPLACE FUNCTION ledger_post(
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
  v_now     timestamptz := ledger_clock();
  v_sim     boolean := v_now <> now();
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
    -- a simulated posting gets an id of its own (simulated) time, so id order and created_at order agree
    v_id := CASE WHEN v_sim THEN uuid_v7_at(v_now) ELSE uuid_v7() END;
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

-- ledger_post() at a given past time, for the seeding tool only (see the top of this file). Its refusals raise
-- SQLSTATE CL002: a misuse by the seeding tool, never a client's problem code (CL001), so they reach the tool with
-- their message instead of being mapped to a problem.
CREATE FUNCTION ledger_post_at(
  p_at timestamptz,
  p_currency uuid, p_scope text, p_key text, p_request_hash text, p_created_by text,
  p_kinds text[], p_from uuid[], p_to uuid[], p_amounts numeric[],
  p_channel text, p_reference text, p_metadata jsonb,
  p_reverses uuid[], p_reserve_delta numeric, p_sterling_reference text,
  p_owner uuid, p_apply_order integer[]
) RETURNS TABLE (replayed boolean, legs jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v_latest timestamptz;
BEGIN
  IF current_setting('application_name') <> 'circulate-simulator' THEN
    RAISE EXCEPTION 'ledger_post_at is for the seeding tool only (application_name circulate-simulator)'
      USING ERRCODE = 'CL002';
  END IF;
  IF p_at IS NULL OR p_at > now() THEN
    RAISE EXCEPTION 'ledger_post_at: % is in the future', p_at USING ERRCODE = 'CL002';
  END IF;
  SELECT max(created_at) INTO v_latest FROM transfer WHERE currency_id = p_currency;
  IF v_latest > p_at THEN
    RAISE EXCEPTION 'ledger_post_at: % is before the currency''s latest transfer (%)', p_at, v_latest
      USING ERRCODE = 'CL002';
  END IF;
  PERFORM set_config('circulate.ledger_clock', p_at::text, true);
  RETURN QUERY SELECT * FROM ledger_post(p_currency, p_scope, p_key, p_request_hash, p_created_by,
    p_kinds, p_from, p_to, p_amounts, p_channel, p_reference, p_metadata,
    p_reverses, p_reserve_delta, p_sterling_reference, p_owner, p_apply_order);
END
$$;
