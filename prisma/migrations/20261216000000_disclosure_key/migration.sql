-- The secret behind the consistent perturbation of published report cells (docs/disclosure.md). One per
-- currency, made with the currency (a trigger, so reports never write) from pg_strong_random (via two v4 UUIDs:
-- 244 random bits); never sent, never logged. It must never change: a new secret would give every cell fresh
-- noise, and averaging the old and new figures would undo the protection.
CREATE TABLE disclosure_key (
  currency_id uuid PRIMARY KEY,
  secret      bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION disclosure_key_make () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO disclosure_key (currency_id, secret)
  VALUES (NEW.id, decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'))
  ON CONFLICT (currency_id) DO NOTHING;
  RETURN NEW;
END $$;

CREATE TRIGGER currency_disclosure_key AFTER INSERT ON currency FOR EACH ROW EXECUTE FUNCTION disclosure_key_make();

INSERT INTO disclosure_key (currency_id, secret)
SELECT id, decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex') FROM currency
ON CONFLICT (currency_id) DO NOTHING;
