-- Login attempts are counted before the password is checked, per client address and per username. Before, the
-- lockout was looked at before the password and the failure counted after it, so 200 guesses sent at once were
-- all checked. Now an attempt is claimed first, in one statement that locks the counters it touches: the attempts
-- still being checked count against the budget like failures do, so at most LOGIN_MAX_FAILURES guesses are ever
-- being checked or failed at once per address and per username, however they are sent.

-- Counters are keyed "address:<client address>" or "user:<username, lower-cased>"; the existing rows are addresses.
UPDATE login_throttle SET client = 'address:' || client;
-- attempts claimed and not yet decided, and when the last was claimed (a claim older than 30 s is forgotten, so an
-- instance that died mid-login does not hold a budget forever)
ALTER TABLE login_throttle ADD COLUMN pending integer NOT NULL DEFAULT 0;
ALTER TABLE login_throttle ADD COLUMN pending_at timestamptz;
CREATE INDEX login_throttle_last_failure_idx ON login_throttle (last_failure_at);

-- Claims one attempt against every key, or none. Refused (allowed = false, retry_after in whole seconds) while any
-- key is locked out; refused for a second while the key's failures and the attempts still being checked add up to
-- p_max (once a key has p_max failures, one attempt at a time is checked, each after its lockout ends). Keys are
-- locked in sorted order, so claims never deadlock, and a claim waits at most 250 ms for a counter another claim
-- holds: then it is refused too, so a burst of guesses cannot queue up on the service's connections.
-- p_now: the time to use (tests inject a clock); NULL is the database's clock, which every instance shares.
CREATE FUNCTION login_attempt_claim(p_keys text[], p_max integer, p_window integer, p_now timestamptz)
RETURNS TABLE (allowed boolean, retry_after integer)
LANGUAGE plpgsql AS $$
DECLARE
  v_now      timestamptz := COALESCE(p_now, now());
  v_keys     text[] := ARRAY(SELECT DISTINCT k FROM unnest(p_keys) AS k ORDER BY k);
  v_wait     double precision := 0;
  v_busy     boolean := false;
  v_row      login_throttle;
  v_failures integer;
  v_pending  integer;
  k          text;
BEGIN
  PERFORM set_config('lock_timeout', '250ms', true);
  BEGIN
    FOREACH k IN ARRAY v_keys LOOP
      INSERT INTO login_throttle (client, failures, last_failure_at) VALUES (k, 0, v_now) ON CONFLICT (client) DO NOTHING;
      SELECT * INTO v_row FROM login_throttle WHERE client = k FOR UPDATE;
      v_failures := CASE WHEN v_row.last_failure_at < v_now - make_interval(secs => p_window) THEN 0 ELSE v_row.failures END;
      v_pending := CASE WHEN v_row.pending_at IS NULL OR v_row.pending_at < v_now - interval '30 seconds' THEN 0 ELSE v_row.pending END;
      IF v_row.locked_until > v_now THEN
        v_wait := greatest(v_wait, extract(epoch FROM v_row.locked_until - v_now));
      ELSIF (v_failures >= p_max AND v_pending > 0) OR (v_failures < p_max AND v_failures + v_pending >= p_max) THEN
        v_busy := true;
      END IF;
    END LOOP;
  EXCEPTION WHEN lock_not_available THEN
    RETURN QUERY SELECT false, 1;
    RETURN;
  END;
  IF v_wait > 0 OR v_busy THEN
    RETURN QUERY SELECT false, greatest(ceil(v_wait)::integer, 1);
    RETURN;
  END IF;
  UPDATE login_throttle
     SET pending = CASE WHEN pending_at IS NULL OR pending_at < v_now - interval '30 seconds' THEN 1 ELSE pending + 1 END,
         pending_at = v_now
   WHERE client = ANY (v_keys);
  RETURN QUERY SELECT true, 0;
END
$$;

-- Decides a claimed attempt. A failure counts on every key (starting again at one after p_window seconds without
-- one); a key whose failures reach p_max is locked out for p_base seconds, doubling with each further failure, at
-- most p_cap. A success counts nothing, and p_reset (the username that was just proved) starts again from zero; an
-- address keeps its failures and lockout, so a caller with a login of its own cannot use it to unlock its address.
CREATE FUNCTION login_attempt_done(p_keys text[], p_failed boolean, p_reset text, p_max integer, p_base integer, p_cap integer,
                                   p_window integer, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_now  timestamptz := COALESCE(p_now, now());
  v_keys text[] := ARRAY(SELECT DISTINCT k FROM unnest(p_keys) AS k ORDER BY k);
  v_n    integer;
  k      text;
BEGIN
  FOREACH k IN ARRAY v_keys LOOP
    UPDATE login_throttle AS t
       SET pending = greatest(t.pending - 1, 0),
           failures = CASE WHEN NOT p_failed THEN t.failures
                           WHEN t.last_failure_at < v_now - make_interval(secs => p_window) THEN 1 ELSE t.failures + 1 END,
           last_failure_at = CASE WHEN p_failed THEN v_now ELSE t.last_failure_at END
     WHERE t.client = k
    RETURNING t.failures INTO v_n;
    IF p_failed AND v_n >= p_max THEN
      UPDATE login_throttle
         SET locked_until = greatest(locked_until, v_now + make_interval(secs => least(p_base * power(2, least(v_n - p_max, 30)), p_cap)))
       WHERE client = k;
    ELSIF NOT p_failed AND k = p_reset THEN
      UPDATE login_throttle SET failures = 0, locked_until = NULL WHERE client = k;
    END IF;
  END LOOP;
  -- a few forgotten counters go each time, so the table does not keep every address and name ever tried
  DELETE FROM login_throttle
   WHERE client IN (SELECT client FROM login_throttle
                     WHERE last_failure_at < v_now - make_interval(secs => p_window)
                       AND (locked_until IS NULL OR locked_until <= v_now)
                       AND (pending_at IS NULL OR pending_at < v_now - interval '30 seconds')
                       AND client <> ALL (v_keys)
                     LIMIT 10 FOR UPDATE SKIP LOCKED);
END
$$;
