-- One money path. Every movement of money (payments with their channel fee, issuances, redemptions with their
-- fee, reversals of any of these, and whatever kinds come later) is posted by ONE function,
-- ledger_post_movements(), one or many movements per call, with a result per movement. It replaces
-- ledger_post() (one movement), ledger_post_payments() (many payments) and ledger_post_at() (the simulator's
-- copy of ledger_post() with a clock): they repeated the idempotency claim and the account checks, and checked
-- floors and ceilings in two different ways.
--
-- The function knows nothing of kinds. Its caller (src/ledger/post.ts) gives it each movement as legs built by
-- src/domain/movements.ts: which account pays which, how much, in which order the legs move balances, and the
-- sterling reserve delta. What it checks is what no caller can be trusted with:
--   1. idempotency, per movement: a key repeated in the call or held by another transaction is in flight; a key
--      already recorded replays (same request hash) or is reused (another hash);
--   2. every leg is well formed (amount > 0 with at most 6 decimals and below NUMERIC(24,6)'s range; payer and
--      payee differ), so one movement's bad data fails that movement, not the call;
--   3. the accounts of the movements still to post are locked in id order (FOR NO KEY UPDATE, one at a time: a
--      total order every caller shares, so no deadlocks, and no waiting behind a whole batch) and read;
--   4. movement by movement, in order: the accounts exist, the payer is the owner's when an owner is given, every
--      account is of this currency and active, a reversed transfer exists in this currency and is reversed once;
--      then the legs move the in-memory balances in their apply order and every move is checked against the
--      account's floor and ceiling, as the account table's CHECK constraints would check each UPDATE. A failing
--      movement is undone in memory and skipped; later movements see the balances without it;
--   5. one INSERT for all transfers, one for all entries (in posting order, each with its balance after), one
--      UPDATE for the balances, one INSERT each for keys, reserve movements and audit rows. The CHECK constraints
--      still guard the final balances.
-- With p_atomic, one failing movement means nothing is written. The result has one row per leg of each posted or
-- replayed movement (as transfer_rows() reads them) and one row per failed movement (its problem code).

DROP FUNCTION ledger_post_at(timestamptz, uuid, text, text, text, text, text[], uuid[], uuid[], numeric[], text, text,
  jsonb, uuid[], numeric, text, uuid, integer[]);
DROP FUNCTION ledger_post(uuid, text, text, text, text, text[], uuid[], uuid[], numeric[], text, text, jsonb, uuid[],
  numeric, text, uuid, integer[]);
DROP FUNCTION ledger_post_payments(uuid, uuid, boolean, text[], text[], text[], text[], uuid[], uuid[], uuid[],
  numeric[], numeric[], text[], text[], jsonb[]);
DROP FUNCTION ledger_clock();
DROP FUNCTION transfer_legs(uuid);

-- RFC 9562 UUIDv7 with a counter (method 1, "fixed bit-length dedicated counter"): 48 bits of Unix milliseconds
-- of p_at, the version, 12 bits of p_seq, then random bits with the variant. Ids made in one call with a rising
-- p_seq sort in the order they were made, also within one millisecond (a counter past 4095 carries into the
-- milliseconds), so a movement's legs read back in the order they were posted.
CREATE FUNCTION uuid_v7_seq(p_at timestamptz, p_seq integer) RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    substring(int8send(floor(extract(epoch FROM p_at) * 1000)::bigint + (p_seq >> 12)) FROM 3)
    || int2send((28672 | (p_seq & 4095))::smallint)
    || substring(uuid_send(gen_random_uuid()) FROM 9),
    'hex')::uuid
$$;

-- A time as the API writes it: RFC 3339, UTC, milliseconds.
CREATE FUNCTION api_time(p_at timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- The legs of movements, as every reader of a movement gets them (the posting function's result, replays,
-- GET /v1/transfers/{id}): for each main transfer in p_mains (ord: its position), the main transfer first, then
-- the legs that point at it in the order they were posted. Amounts and times are text, so no client parses them
-- through a float.
CREATE FUNCTION transfer_rows(p_mains uuid[])
RETURNS TABLE (ord integer, leg integer, id uuid, kind text, channel text, from_account uuid, to_account uuid,
               amount text, reference text, metadata jsonb, parent_id uuid, reverses_id uuid, created_at text)
LANGUAGE sql STABLE AS $$
  SELECT m.ord::integer, (row_number() OVER (PARTITION BY m.ord ORDER BY t.parent_id IS NOT NULL, t.id))::integer,
         t.id, t.kind, t.channel, t.from_account_id, t.to_account_id, t.amount::text, t.reference, t.metadata,
         t.parent_id, t.reverses_id, api_time(t.created_at)
    FROM unnest(p_mains) WITH ORDINALITY AS m(id, ord)
    CROSS JOIN LATERAL (
      SELECT * FROM transfer WHERE transfer.id = m.id
      UNION ALL
      SELECT * FROM transfer WHERE transfer.parent_id = m.id) t
   ORDER BY m.ord, 2
$$;

-- The ledger's one clock. In the service it is now(): every movement of a call carries the transaction's time.
-- Posting at past times (the demo's simulated year, test ledgers, benchmarks) is one mechanism and lives here and
-- in ledger_clock_set(), never in the posting function: a session that names itself 'circulate-simulator'
-- (application_name; the service's pool is 'circulate', so nothing reachable over HTTP) calls
-- ledger_clock_set(currency, times) in the same transaction, before posting; the next posting call of that
-- transaction, for that currency, takes one time per movement and consumes the setting.
CREATE FUNCTION ledger_clock(p_currency uuid, p_n integer) RETURNS timestamptz[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v      text := current_setting('circulate.ledger_clock', true);
  v_at   timestamptz[];
BEGIN
  IF v IS NULL OR v = '' THEN
    RETURN array_fill(now(), ARRAY[p_n]);
  END IF;
  PERFORM set_config('circulate.ledger_clock', '', true);
  IF current_setting('application_name') <> 'circulate-simulator' THEN
    RAISE EXCEPTION 'the ledger clock is for the seeding and test tooling only (application_name circulate-simulator)'
      USING ERRCODE = 'CL002';
  END IF;
  IF split_part(v, '|', 1) <> p_currency::text THEN
    RAISE EXCEPTION 'the ledger clock was set for another currency' USING ERRCODE = 'CL002';
  END IF;
  v_at := split_part(v, '|', 2)::timestamptz[];
  IF coalesce(array_length(v_at, 1), 0) <> p_n THEN
    RAISE EXCEPTION 'the ledger clock holds % times for % movements', coalesce(array_length(v_at, 1), 0), p_n
      USING ERRCODE = 'CL002';
  END IF;
  RETURN v_at;
END
$$;

-- Sets the times of the next posting call in this transaction, one per movement, for the tooling only:
--   * a session named 'circulate-simulator', and only inside a transaction (the setting is transaction-local,
--     so it never leaks to the next user of a pooled connection);
--   * times in order (a call's entries stay in time order as well as posting order) and none in the future;
--   * not before the currency's latest transfer, so simulated history is appended and never slipped in behind
--     real transfers; p_backdate lifts this one rule, for test ledgers that post into the past on purpose (the
--     reports must cope with a transfer arriving late).
-- Its refusals raise SQLSTATE CL002: a misuse by the tooling, never a client's problem (CL001).
CREATE FUNCTION ledger_clock_set(p_currency uuid, p_times timestamptz[], p_backdate boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_latest timestamptz;
BEGIN
  IF current_setting('application_name') <> 'circulate-simulator' THEN
    RAISE EXCEPTION 'the ledger clock is for the seeding and test tooling only (application_name circulate-simulator)'
      USING ERRCODE = 'CL002';
  END IF;
  IF array_position(p_times, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'the ledger clock: a time is missing' USING ERRCODE = 'CL002';
  END IF;
  IF EXISTS (SELECT 1 FROM unnest(p_times) WITH ORDINALITY AS u(at, i) WHERE u.at < p_times[u.i - 1]) THEN
    RAISE EXCEPTION 'the ledger clock: times must not go back within a call' USING ERRCODE = 'CL002';
  END IF;
  IF p_times[array_upper(p_times, 1)] > now() THEN
    RAISE EXCEPTION 'the ledger clock: % is in the future', p_times[array_upper(p_times, 1)] USING ERRCODE = 'CL002';
  END IF;
  IF NOT p_backdate THEN
    SELECT max(created_at) INTO v_latest FROM transfer WHERE currency_id = p_currency;
    IF v_latest > p_times[1] THEN
      RAISE EXCEPTION 'the ledger clock: % is before the currency''s latest transfer (%)', p_times[1], v_latest
        USING ERRCODE = 'CL002';
    END IF;
  END IF;
  PERFORM set_config('circulate.ledger_clock', p_currency::text || '|' || p_times::text, true);
END
$$;

CREATE FUNCTION ledger_post_movements(
  p_currency    uuid,
  p_atomic      boolean,
  -- per movement (1..n)
  p_scopes      text[],     -- who claims the idempotency key (keys are unique per scope)
  p_keys        text[],     -- the idempotency key, or NULL
  p_hashes      text[],     -- hash of the request, to tell a replay from a reuse
  p_created_by  text[],
  p_owners      uuid[],     -- when set, the main leg's payer account must be this participant's
  p_channels    text[],
  p_references  text[],
  p_metadata    jsonb[],
  p_reserve     numeric[],  -- sterling into (+) or out of (-) the reserve; NULL or 0: none
  p_sterling    text[],     -- the sterling reference of a reserve movement
  p_audit       jsonb[],    -- an audit row (issuers' movements), written only when the movement posts
  -- per leg (1..m), grouped by movement, a movement's main transfer first
  p_leg_item    integer[],  -- the movement the leg belongs to
  p_leg_kind    text[],
  p_leg_from    uuid[],
  p_leg_to      uuid[],
  p_leg_amount  numeric[],
  p_leg_reverses uuid[],
  p_leg_order   integer[]   -- when the leg moves balances within its movement (1 first)
) RETURNS TABLE (item integer, code text, leg integer, id uuid, kind text, channel text, from_account uuid,
                 to_account uuid, amount text, reference text, metadata jsonb, parent_id uuid, reverses_id uuid,
                 created_at text)
LANGUAGE plpgsql AS $$
DECLARE
  n        integer := coalesce(array_length(p_scopes, 1), 0);
  m        integer := coalesce(array_length(p_leg_item, 1), 0);
  v_times  timestamptz[];
  v_codes  text[] := array_fill(NULL::text, ARRAY[n]);
  v_main   uuid[] := array_fill(NULL::uuid, ARRAY[n]);
  v_first  integer[] := array_fill(NULL::integer, ARRAY[n]);
  v_last   integer[] := array_fill(NULL::integer, ARRAY[n]);
  v_apply  integer[];      -- leg indexes, movement by movement, each movement's legs in apply order
  v_ids    uuid[];
  v_seen   uuid[] := '{}'; -- transfers reversed by earlier movements of this call
  r        record;
  i        integer;
  j        integer;
  q        integer;
  f        integer;
  t        integer;
  v_amt    numeric;
  v_code   text;
  v_posted integer := 0;
  v_failed boolean := false;
  -- the locked accounts, sorted by id; a_* are indexed like v_accts, f_idx/t_idx map a leg to its accounts
  v_accts  uuid[];
  a_found  boolean[];
  a_bal    numeric[];
  a_start  numeric[];
  a_floor  numeric[];
  a_ceil   numeric[];
  a_status text[];
  a_cur    uuid[];
  a_owner  uuid[];
  f_idx    integer[];
  t_idx    integer[];
  b_from   numeric[] := array_fill(NULL::numeric, ARRAY[m]);
  b_to     numeric[] := array_fill(NULL::numeric, ARRAY[m]);
  v_rev    record;
BEGIN
  IF n = 0 THEN
    RETURN;
  END IF;
  v_times := ledger_clock(p_currency, n);

  -- the shape of the call: every movement has its legs, contiguous, in movement order
  FOR j IN 1 .. m LOOP
    i := p_leg_item[j];
    IF i IS NULL OR i < 1 OR i > n OR (j > 1 AND i < p_leg_item[j - 1]) OR p_leg_order[j] IS NULL THEN
      RAISE EXCEPTION 'ledger_post_movements: leg % is out of place', j USING ERRCODE = 'CL002';
    END IF;
    IF v_first[i] IS NULL THEN v_first[i] := j; END IF;
    v_last[i] := j;
  END LOOP;
  IF array_position(v_first, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'ledger_post_movements: movement % has no legs', array_position(v_first, NULL) USING ERRCODE = 'CL002';
  END IF;
  v_apply := ARRAY(SELECT u.j FROM unnest(p_leg_item, p_leg_order) WITH ORDINALITY AS u(it, o, j) ORDER BY u.it, u.o, u.j);

  -- 1. idempotency. A key twice in one call: the later movement is in flight behind the first (advisory locks
  -- are re-entrant within a session, so the lock alone would not see it).
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
        v_main[r.i] := r.transfer_id;
      ELSE
        v_codes[r.i] := 'IDEMPOTENCY_KEY_REUSED';
      END IF;
    END IF;
  END LOOP;

  -- 2. well-formed legs
  FOR j IN 1 .. m LOOP
    i := p_leg_item[j];
    CONTINUE WHEN v_codes[i] IS NOT NULL;
    v_amt := p_leg_amount[j];
    IF v_amt IS NULL OR v_amt <= 0 OR v_amt >= 1e18 OR v_amt <> round(v_amt, 6) THEN
      v_codes[i] := 'INVALID_AMOUNT'; v_failed := true;
    ELSIF p_leg_from[j] IS NULL OR p_leg_to[j] IS NULL THEN
      v_codes[i] := 'ACCOUNT_NOT_FOUND'; v_failed := true;
    ELSIF p_leg_from[j] = p_leg_to[j] THEN
      v_codes[i] := 'SAME_ACCOUNT'; v_failed := true;
    END IF;
  END LOOP;

  -- 3. lock the accounts of the movements still to post, in id order, one at a time
  v_accts := ARRAY(
    SELECT DISTINCT a FROM (
      SELECT unnest(ARRAY[u.fr, u.tt]) AS a
        FROM unnest(p_leg_item, p_leg_from, p_leg_to) AS u(it, fr, tt) WHERE v_codes[u.it] IS NULL) x
     ORDER BY 1);
  a_found := array_fill(false, ARRAY[coalesce(array_length(v_accts, 1), 0)]);
  a_bal := array_fill(NULL::numeric, ARRAY[coalesce(array_length(v_accts, 1), 0)]);
  a_floor := a_bal; a_ceil := a_bal;
  a_status := array_fill(NULL::text, ARRAY[coalesce(array_length(v_accts, 1), 0)]);
  a_cur := array_fill(NULL::uuid, ARRAY[coalesce(array_length(v_accts, 1), 0)]);
  a_owner := a_cur;
  FOR q IN 1 .. coalesce(array_length(v_accts, 1), 0) LOOP
    SELECT a.balance, a.floor, a.ceiling, a.status, a.currency_id, a.participant_id INTO r
      FROM account a WHERE a.id = v_accts[q] FOR NO KEY UPDATE;
    IF FOUND THEN
      a_found[q] := true; a_bal[q] := r.balance; a_floor[q] := r.floor; a_ceil[q] := r.ceiling;
      a_status[q] := r.status; a_cur[q] := r.currency_id; a_owner[q] := r.participant_id;
    END IF;
  END LOOP;
  a_start := a_bal;
  SELECT array_agg(af.pos::integer ORDER BY u.j), array_agg(at.pos::integer ORDER BY u.j) INTO f_idx, t_idx
    FROM unnest(p_leg_from, p_leg_to) WITH ORDINALITY AS u(fr, tt, j)
    LEFT JOIN unnest(v_accts) WITH ORDINALITY AS af(id, pos) ON af.id = u.fr
    LEFT JOIN unnest(v_accts) WITH ORDINALITY AS at(id, pos) ON at.id = u.tt;

  -- 4. movement by movement, against the in-memory balances
  FOR i IN 1 .. n LOOP
    CONTINUE WHEN v_codes[i] IS NOT NULL;
    v_code := NULL;
    FOR j IN v_first[i] .. v_last[i] LOOP
      IF NOT a_found[f_idx[j]] OR NOT a_found[t_idx[j]] THEN v_code := 'ACCOUNT_NOT_FOUND'; EXIT; END IF;
    END LOOP;
    -- someone else's account is "not found", so a payer learns nothing of accounts it does not own
    IF v_code IS NULL AND p_owners[i] IS NOT NULL AND a_owner[f_idx[v_first[i]]] IS DISTINCT FROM p_owners[i] THEN
      v_code := 'ACCOUNT_NOT_FOUND';
    END IF;
    IF v_code IS NULL THEN
      FOR j IN v_first[i] .. v_last[i] LOOP
        IF a_cur[f_idx[j]] <> p_currency OR a_cur[t_idx[j]] <> p_currency THEN v_code := 'CURRENCY_MISMATCH'; EXIT; END IF;
      END LOOP;
    END IF;
    IF v_code IS NULL THEN
      FOR j IN v_first[i] .. v_last[i] LOOP
        IF a_status[f_idx[j]] = 'frozen' OR a_status[t_idx[j]] = 'frozen' THEN v_code := 'ACCOUNT_FROZEN'; EXIT; END IF;
        IF a_status[f_idx[j]] <> 'active' OR a_status[t_idx[j]] <> 'active' THEN v_code := 'ACCOUNT_CLOSED'; END IF;
      END LOOP;
    END IF;
    IF v_code IS NULL THEN
      -- reversed at most once: checked under the locks of the accounts the reversed transfer moved, so two
      -- reversals of one transfer wait for each other and the second sees the first (transfer_reverses_once
      -- still guards it)
      FOR j IN v_first[i] .. v_last[i] LOOP
        CONTINUE WHEN p_leg_reverses[j] IS NULL;
        SELECT x.currency_id, EXISTS (SELECT 1 FROM transfer y WHERE y.reverses_id = x.id) AS reversed INTO v_rev
          FROM transfer x WHERE x.id = p_leg_reverses[j];
        IF NOT FOUND OR v_rev.currency_id <> p_currency THEN v_code := 'TRANSFER_NOT_FOUND'; EXIT; END IF;
        IF v_rev.reversed OR p_leg_reverses[j] = ANY (v_seen) THEN v_code := 'ALREADY_REVERSED'; EXIT; END IF;
      END LOOP;
    END IF;
    IF v_code IS NULL THEN
      -- the legs move the balances in their apply order; each move is held to floor and ceiling (and to what
      -- NUMERIC(24,6) can store), exactly as the account table's CHECK constraints hold each UPDATE
      FOR q IN v_first[i] .. v_last[i] LOOP
        j := v_apply[q]; f := f_idx[j]; t := t_idx[j]; v_amt := p_leg_amount[j];
        a_bal[f] := a_bal[f] - v_amt;
        a_bal[t] := a_bal[t] + v_amt;
        b_from[j] := a_bal[f];
        b_to[j] := a_bal[t];
        IF a_bal[f] < a_floor[f] OR a_bal[f] <= -1e18 THEN v_code := 'INSUFFICIENT_FUNDS';
        ELSIF a_bal[f] > a_ceil[f] THEN v_code := 'CEILING_EXCEEDED';
        ELSIF a_bal[t] > a_ceil[t] OR a_bal[t] >= 1e18 THEN v_code := 'CEILING_EXCEEDED';
        ELSIF a_bal[t] < a_floor[t] THEN v_code := 'INSUFFICIENT_FUNDS';
        END IF;
        IF v_code IS NOT NULL THEN
          -- undo this movement's moves so far
          FOR k IN REVERSE q .. v_first[i] LOOP
            a_bal[f_idx[v_apply[k]]] := a_bal[f_idx[v_apply[k]]] + p_leg_amount[v_apply[k]];
            a_bal[t_idx[v_apply[k]]] := a_bal[t_idx[v_apply[k]]] - p_leg_amount[v_apply[k]];
          END LOOP;
          EXIT;
        END IF;
      END LOOP;
    END IF;
    IF v_code IS NOT NULL THEN
      v_codes[i] := v_code;
      v_failed := true;
    ELSE
      v_posted := v_posted + 1;
      FOR j IN v_first[i] .. v_last[i] LOOP
        IF p_leg_reverses[j] IS NOT NULL THEN v_seen := v_seen || p_leg_reverses[j]; END IF;
      END LOOP;
    END IF;
  END LOOP;

  IF v_posted > 0 AND NOT (p_atomic AND v_failed) THEN
    -- 5. write: ids in posting order (each movement at its own time), transfers, entries, balances, the rest
    v_ids := ARRAY(SELECT CASE WHEN v_codes[u.it] IS NULL THEN uuid_v7_seq(v_times[u.it], u.j::integer) END
                     FROM unnest(p_leg_item) WITH ORDINALITY AS u(it, j) ORDER BY u.j);
    FOR i IN 1 .. n LOOP
      IF v_codes[i] IS NULL THEN v_main[i] := v_ids[v_first[i]]; END IF;
    END LOOP;

    INSERT INTO transfer (id, currency_id, kind, channel, from_account_id, to_account_id, amount, reference,
                          metadata, parent_id, reverses_id, created_by, created_at)
    SELECT v_ids[u.j], p_currency, u.kind, p_channels[u.it], u.fr, u.tt, u.amt, p_references[u.it],
           coalesce(p_metadata[u.it], '{}'), CASE WHEN u.j = v_first[u.it] THEN NULL ELSE v_main[u.it] END,
           u.rev, p_created_by[u.it], v_times[u.it]
      FROM unnest(p_leg_item, p_leg_kind, p_leg_from, p_leg_to, p_leg_amount, p_leg_reverses)
           WITH ORDINALITY AS u(it, kind, fr, tt, amt, rev, j)
     WHERE v_codes[u.it] IS NULL
     ORDER BY u.j;

    -- entries in posting order: within an account the identity order is the order its balance moved
    INSERT INTO entry (currency_id, transfer_id, account_id, amount, balance_after, created_at)
    SELECT p_currency, v_ids[a.j], e.acc, e.amt, e.after, v_times[p_leg_item[a.j]]
      FROM unnest(v_apply) WITH ORDINALITY AS a(j, pos)
     CROSS JOIN LATERAL (VALUES (0, p_leg_from[a.j], -p_leg_amount[a.j], b_from[a.j]),
                                (1, p_leg_to[a.j], p_leg_amount[a.j], b_to[a.j])) AS e(side, acc, amt, after)
     WHERE v_codes[p_leg_item[a.j]] IS NULL
     ORDER BY a.pos, e.side;

    UPDATE account a SET balance = x.bal, updated_at = v_times[n]
      FROM unnest(v_accts, a_bal, a_start) AS x(id, bal, start)
     WHERE a.id = x.id AND x.bal <> x.start;

    INSERT INTO idempotency_key (scope, key, currency_id, request_hash, transfer_id, created_at)
    SELECT u.s, u.k, p_currency, u.h, v_main[u.i], v_times[u.i]
      FROM unnest(p_scopes, p_keys, p_hashes) WITH ORDINALITY AS u(s, k, h, i)
     WHERE u.k IS NOT NULL AND v_codes[u.i] IS NULL;

    INSERT INTO reserve_movement (currency_id, transfer_id, amount, sterling_reference, created_at)
    SELECT p_currency, v_main[u.i], u.d, u.sr, v_times[u.i]
      FROM unnest(p_reserve, p_sterling) WITH ORDINALITY AS u(d, sr, i)
     WHERE u.d IS NOT NULL AND u.d <> 0 AND v_codes[u.i] IS NULL;

    INSERT INTO audit_event (actor_id, actor_name, role, action, target, currency_id, outcome, client_address,
                             request_id, detail)
    SELECT u.x->>'actorId', u.x->>'actorName', u.x->>'role', u.x->>'action', u.x->>'target', p_currency, 'success',
           u.x->>'clientAddress', u.x->>'requestId',
           coalesce(u.x->'detail', '{}'::jsonb) || jsonb_build_object('transferId', v_main[u.i])
      FROM unnest(p_audit) WITH ORDINALITY AS u(x, i)
     WHERE u.x IS NOT NULL AND v_codes[u.i] IS NULL;
  ELSIF p_atomic AND v_failed THEN
    -- nothing was written: only the failures (and replays) have anything to say
    FOR i IN 1 .. n LOOP
      IF v_codes[i] IS NULL THEN v_codes[i] := 'NOT_POSTED'; END IF;
    END LOOP;
  END IF;

  RETURN QUERY
    SELECT c.i::integer, c.code, l.leg, l.id, l.kind, l.channel, l.from_account, l.to_account, l.amount,
           l.reference, l.metadata, l.parent_id, l.reverses_id, l.created_at
      FROM unnest(v_codes) WITH ORDINALITY AS c(code, i)
      LEFT JOIN transfer_rows(v_main) l ON l.ord = c.i
     ORDER BY c.i, l.leg;
END
$$;
