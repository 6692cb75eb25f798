-- Many payments in one call: the batch endpoint (up to 1,000 payments) and the service's coalescing of
-- concurrent single payments both post through ledger_post_payments(). It keeps ledger_post()'s rules (the same
-- idempotency claim, the same sorted one-at-a-time row locks, the same checks, a payment leg and a fee leg per
-- movement, two entries per leg with balance_after) but does the work once per call instead of once per
-- payment: every account row is locked once, updated once, and the rows are inserted set-based (unnest).
--
-- Per-item failure isolation without savepoints: every check is decided before anything is written.
--   1. idempotency, per item: a key repeated inside the call or held by another transaction is IN_FLIGHT; a key
--      already recorded replays (same request hash) or is KEY_REUSED (another body);
--   2. the accounts of the remaining items are locked in id order (FOR NO KEY UPDATE, one at a time: the same
--      total order as ledger_post(), so the two never deadlock) and read into arrays;
--   3. the items are applied in order to those in-memory balances: existence, ownership, currency, status,
--      then each balance move is checked against floor and ceiling exactly as the account table's CHECK
--      constraints would on each UPDATE; a failing item is skipped and later items see balances without it;
--   4. one INSERT for the transfers, one for the entries (in posting order, so the identity order per account
--      is still the posting order), one UPDATE for the balances, one INSERT for the keys. The CHECK constraints
--      still guard the final balances.
-- With p_atomic, any failing item means nothing is written; the per-item codes say which failed.
-- Measured against a savepoint per item (BEGIN ... EXCEPTION around a ledger_post-like body): see README
-- "Performance and reliability".
--
-- Result: one row. codes[i] is NULL for a posted item, 'REPLAYED' for a replay (its legs in replays->i, as
-- transfer_legs() gives them), or the problem code of a failed item; ids/fee_ids are the new transfers' ids
-- (fee_ids[i] NULL when the item has no fee); created_at is the posting time as the API formats it.
CREATE FUNCTION ledger_post_payments(
  p_currency uuid, p_fee_account uuid, p_atomic boolean,
  p_scopes text[], p_keys text[], p_hashes text[], p_created_by text[], p_owners uuid[],
  p_from uuid[], p_to uuid[], p_amounts numeric[], p_fees numeric[],
  p_channels text[], p_references text[], p_metadata jsonb[]
) RETURNS TABLE (codes text[], ids uuid[], fee_ids uuid[], created_at text, replays jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  n        integer := coalesce(array_length(p_from, 1), 0);
  v_now    timestamptz := now();
  v_codes  text[] := array_fill(NULL::text, ARRAY[n]);
  v_replay jsonb := NULL;
  r        record;
  i        integer;
  k        integer;
  -- accounts, sorted by id; a_* are indexed like v_accts
  v_accts  uuid[];
  a_found  boolean[];
  a_bal    numeric[];
  a_start  numeric[];
  a_floor  numeric[];
  a_ceil   numeric[];
  a_status text[];
  a_cur    uuid[];
  a_owner  uuid[];
  v_acc    record;
  f_idx    integer[];
  t_idx    integer[];
  v_fee_ix integer;
  f        integer;
  t        integer;
  v_amt    numeric;
  v_fee    numeric;
  v_code   text;
  -- per item: balances after each move
  b_from   numeric[] := array_fill(NULL::numeric, ARRAY[n]);
  b_to     numeric[] := array_fill(NULL::numeric, ARRAY[n]);
  b_to2    numeric[] := array_fill(NULL::numeric, ARRAY[n]);
  b_fees   numeric[] := array_fill(NULL::numeric, ARRAY[n]);
  v_ids    uuid[] := array_fill(NULL::uuid, ARRAY[n]);
  v_fids   uuid[] := array_fill(NULL::uuid, ARRAY[n]);
  v_posted integer := 0;
  v_failed boolean := false;
BEGIN
  IF n = 0 THEN
    RETURN QUERY SELECT v_codes, v_ids, v_fids, NULL::text, NULL::jsonb;
    RETURN;
  END IF;

  -- 1. idempotency. A key twice in one call: the later item is in flight behind the first (advisory locks are
  -- re-entrant within a session, so the lock alone would not see it).
  FOR r IN SELECT d.i FROM (
      SELECT u.i, row_number() OVER (PARTITION BY u.s, u.k ORDER BY u.i) AS rn
      FROM unnest(p_scopes, p_keys) WITH ORDINALITY AS u(s, k, i) WHERE u.k IS NOT NULL) d
    WHERE d.rn > 1 LOOP
    v_codes[r.i] := 'IDEMPOTENCY_IN_FLIGHT';
  END LOOP;
  FOR i IN 1 .. n LOOP
    IF p_keys[i] IS NOT NULL AND v_codes[i] IS NULL
       AND NOT pg_try_advisory_xact_lock(hashtextextended(p_scopes[i] || chr(31) || p_keys[i], 7)) THEN
      v_codes[i] := 'IDEMPOTENCY_IN_FLIGHT';
    END IF;
  END LOOP;
  FOR r IN SELECT u.i, (ik.request_hash = u.h) AS same, ik.transfer_id
      FROM unnest(p_scopes, p_keys, p_hashes) WITH ORDINALITY AS u(s, k, h, i)
      JOIN idempotency_key ik ON ik.scope = u.s AND ik.key = u.k LOOP
    IF v_codes[r.i] IS NULL THEN
      IF r.same THEN
        v_codes[r.i] := 'REPLAYED';
        v_replay := coalesce(v_replay, '{}'::jsonb) || jsonb_build_object(r.i::text, transfer_legs(r.transfer_id));
      ELSE
        v_codes[r.i] := 'IDEMPOTENCY_KEY_REUSED';
      END IF;
    END IF;
  END LOOP;

  -- 2. lock the accounts of the items still to post, in id order, one at a time
  v_accts := ARRAY(
    SELECT DISTINCT a FROM (
      SELECT unnest(ARRAY[p_from[g], p_to[g], CASE WHEN p_fees[g] > 0 THEN p_fee_account END]) AS a
      FROM generate_series(1, n) AS g WHERE v_codes[g] IS NULL) x
    WHERE a IS NOT NULL ORDER BY 1);
  k := coalesce(array_length(v_accts, 1), 0);
  a_found := array_fill(false, ARRAY[greatest(k, 1)]);
  a_bal := array_fill(NULL::numeric, ARRAY[greatest(k, 1)]);
  a_floor := a_bal; a_ceil := a_bal;
  a_status := array_fill(NULL::text, ARRAY[greatest(k, 1)]);
  a_cur := array_fill(NULL::uuid, ARRAY[greatest(k, 1)]);
  a_owner := a_cur;
  FOR i IN 1 .. k LOOP
    SELECT balance, floor, ceiling, status, currency_id, participant_id INTO v_acc
      FROM account WHERE id = v_accts[i] FOR NO KEY UPDATE;
    IF FOUND THEN
      a_found[i] := true; a_bal[i] := v_acc.balance; a_floor[i] := v_acc.floor; a_ceil[i] := v_acc.ceiling;
      a_status[i] := v_acc.status; a_cur[i] := v_acc.currency_id; a_owner[i] := v_acc.participant_id;
    END IF;
  END LOOP;
  a_start := a_bal;
  SELECT array_agg(af.pos ORDER BY u.i), array_agg(at.pos ORDER BY u.i) INTO f_idx, t_idx
    FROM unnest(p_from, p_to) WITH ORDINALITY AS u(f, t, i)
    LEFT JOIN unnest(v_accts) WITH ORDINALITY AS af(id, pos) ON af.id = u.f
    LEFT JOIN unnest(v_accts) WITH ORDINALITY AS at(id, pos) ON at.id = u.t;
  v_fee_ix := array_position(v_accts, p_fee_account);

  -- 3. apply in order to the in-memory balances; the checks mirror ledger_post() and the CHECK constraints
  FOR i IN 1 .. n LOOP
    CONTINUE WHEN v_codes[i] IS NOT NULL;
    f := f_idx[i]; t := t_idx[i]; v_amt := p_amounts[i]; v_fee := p_fees[i]; v_code := NULL;
    IF f IS NULL OR NOT a_found[f] OR (p_owners[i] IS NOT NULL AND a_owner[f] IS DISTINCT FROM p_owners[i])
       OR t IS NULL OR NOT a_found[t] OR (v_fee > 0 AND (v_fee_ix IS NULL OR NOT a_found[v_fee_ix])) THEN
      v_code := 'ACCOUNT_NOT_FOUND';
    ELSIF a_cur[f] <> p_currency OR a_cur[t] <> p_currency OR (v_fee > 0 AND a_cur[v_fee_ix] <> p_currency) THEN
      v_code := 'CURRENCY_MISMATCH';
    ELSIF a_status[f] <> 'active' OR a_status[t] <> 'active' OR (v_fee > 0 AND a_status[v_fee_ix] <> 'active') THEN
      v_code := CASE WHEN 'frozen' IN (a_status[f], a_status[t], CASE WHEN v_fee > 0 THEN a_status[v_fee_ix] END)
                     THEN 'ACCOUNT_FROZEN' ELSE 'ACCOUNT_CLOSED' END;
    ELSIF a_bal[f] - v_amt < a_floor[f] OR a_bal[f] - v_amt > a_ceil[f] THEN
      v_code := CASE WHEN a_bal[f] - v_amt < a_floor[f] THEN 'INSUFFICIENT_FUNDS' ELSE 'CEILING_EXCEEDED' END;
    ELSIF a_bal[t] + v_amt > a_ceil[t] OR a_bal[t] + v_amt < a_floor[t] THEN
      v_code := CASE WHEN a_bal[t] + v_amt > a_ceil[t] THEN 'CEILING_EXCEEDED' ELSE 'INSUFFICIENT_FUNDS' END;
    ELSIF v_fee > 0 AND (a_bal[t] + v_amt - v_fee < a_floor[t] OR a_bal[t] + v_amt - v_fee > a_ceil[t]) THEN
      v_code := CASE WHEN a_bal[t] + v_amt - v_fee < a_floor[t] THEN 'INSUFFICIENT_FUNDS' ELSE 'CEILING_EXCEEDED' END;
    ELSIF v_fee > 0 AND (a_bal[v_fee_ix] + v_fee > a_ceil[v_fee_ix] OR a_bal[v_fee_ix] + v_fee < a_floor[v_fee_ix]) THEN
      v_code := CASE WHEN a_bal[v_fee_ix] + v_fee > a_ceil[v_fee_ix] THEN 'CEILING_EXCEEDED' ELSE 'INSUFFICIENT_FUNDS' END;
    END IF;
    IF v_code IS NOT NULL THEN
      v_codes[i] := v_code;
      v_failed := true;
      CONTINUE;
    END IF;
    a_bal[f] := a_bal[f] - v_amt; b_from[i] := a_bal[f];
    a_bal[t] := a_bal[t] + v_amt; b_to[i] := a_bal[t];
    IF v_fee > 0 THEN
      a_bal[t] := a_bal[t] - v_fee; b_to2[i] := a_bal[t];
      a_bal[v_fee_ix] := a_bal[v_fee_ix] + v_fee; b_fees[i] := a_bal[v_fee_ix];
    END IF;
    v_posted := v_posted + 1;
  END LOOP;

  IF v_posted = 0 OR (p_atomic AND v_failed) THEN
    RETURN QUERY SELECT v_codes, v_ids, v_fids, NULL::text, v_replay;
    RETURN;
  END IF;

  -- 4. write: ids first (time-ordered), then transfers, entries in posting order, balances, keys
  FOR i IN 1 .. n LOOP
    IF v_codes[i] IS NULL THEN
      v_ids[i] := uuid_v7();
      IF p_fees[i] > 0 THEN v_fids[i] := uuid_v7(); END IF;
    END IF;
  END LOOP;

  INSERT INTO transfer (id, currency_id, kind, channel, from_account_id, to_account_id, amount, reference,
                        metadata, parent_id, created_by, created_at)
  SELECT x.id, p_currency, x.kind, u.ch, x.fr, x.tt, x.amt, u.ref, coalesce(u.md, '{}'), x.parent, u.cb, v_now
  FROM unnest(v_ids, v_fids, p_from, p_to, p_amounts, p_fees, p_channels, p_references, p_metadata, p_created_by)
       WITH ORDINALITY AS u(id, fid, fr, tt, amt, fee, ch, ref, md, cb, i)
  CROSS JOIN LATERAL (VALUES ('payment', u.id, u.fr, u.tt, u.amt, NULL::uuid, 0),
                             ('fee', u.fid, u.tt, p_fee_account, u.fee, u.id, 1)) AS x(kind, id, fr, tt, amt, parent, leg)
  WHERE x.id IS NOT NULL
  ORDER BY u.i, x.leg;

  INSERT INTO entry (currency_id, transfer_id, account_id, amount, balance_after, created_at)
  SELECT p_currency, e.tid, e.acc, e.amt, e.after, v_now
  FROM unnest(v_ids, v_fids, p_from, p_to, p_amounts, p_fees, b_from, b_to, b_to2, b_fees)
       WITH ORDINALITY AS u(id, fid, fr, tt, amt, fee, bf, bt, bt2, bfe, i)
  CROSS JOIN LATERAL (VALUES (0, u.id, u.fr, -u.amt, u.bf), (1, u.id, u.tt, u.amt, u.bt),
                             (2, u.fid, u.tt, -u.fee, u.bt2), (3, u.fid, p_fee_account, u.fee, u.bfe)) AS e(ord, tid, acc, amt, after)
  WHERE e.tid IS NOT NULL
  ORDER BY u.i, e.ord;

  UPDATE account a SET balance = x.bal, updated_at = v_now
  FROM unnest(v_accts, a_bal, a_start) AS x(id, bal, start)
  WHERE a.id = x.id AND x.bal <> x.start;

  INSERT INTO idempotency_key (scope, key, currency_id, request_hash, transfer_id, created_at)
  SELECT u.s, u.k, p_currency, u.h, u.id, v_now
  FROM unnest(p_scopes, p_keys, p_hashes, v_ids) AS u(s, k, h, id)
  WHERE u.id IS NOT NULL AND u.k IS NOT NULL;

  RETURN QUERY SELECT v_codes, v_ids, v_fids,
    to_char(v_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), v_replay;
END
$$;
