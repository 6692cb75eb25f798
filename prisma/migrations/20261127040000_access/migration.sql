-- Access: API keys for business integrations, the append-only audit trail, and login throttling per client
-- address (kept in the database so every instance behind a load balancer sees the same lockout).

-- An API key belongs to a business (participant) and carries scopes. Only a sha256 of the key is stored: the
-- key is shown once, when it is created. prefix is the start of the key, so a person can tell keys apart.
CREATE TABLE api_key (
  id             uuid PRIMARY KEY DEFAULT uuid_v7(),
  currency_id    uuid NOT NULL REFERENCES currency (id),
  participant_id uuid NOT NULL REFERENCES participant (id),
  name           text NOT NULL,
  prefix         text NOT NULL,
  secret_hash    text NOT NULL,
  scopes         text[] NOT NULL CHECK (cardinality(scopes) > 0),
  created_by     text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  last_used_at   timestamptz,
  revoked_at     timestamptz
);
CREATE UNIQUE INDEX api_key_secret_hash_key ON api_key (secret_hash);
CREATE INDEX api_key_participant_idx ON api_key (participant_id, id);

-- Who did what, as whom, to what, from where, with what outcome. Issuer actions are written in the same
-- transaction as the action itself, so a committed action always has its row.
CREATE TABLE audit_event (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at             timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor_id       text,
  actor_name     text,
  role           text,
  action         text NOT NULL,
  target         text,
  currency_id    uuid,
  outcome        text NOT NULL CHECK (outcome IN ('success', 'failure')),
  error_code     text,
  client_address text,
  request_id     text,
  detail         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_event_currency_idx ON audit_event (currency_id, id);

-- Append-only, enforced here rather than trusted to the code: UPDATE, DELETE and TRUNCATE are refused for every
-- role that does not own the table (and for the owner too, unless it drops the triggers on purpose).
CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'CL002', MESSAGE = 'audit_event is append-only: rows are never updated or deleted';
END
$$;
CREATE TRIGGER audit_event_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_event
  FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_event FROM PUBLIC;

-- Failed logins per client address: after a number of failures the address is locked out for a time that
-- doubles with every further failure (see src/domain/access.ts). Failures older than the window are forgotten.
CREATE TABLE login_throttle (
  client          text PRIMARY KEY,
  failures        integer NOT NULL,
  last_failure_at timestamptz NOT NULL,
  locked_until    timestamptz
);
