-- The rows that only the ledger's posting function writes (transfer, entry, idempotency_key, reserve_movement) no
-- longer carry foreign-key constraints. PostgreSQL checks a foreign key row by row, with a lookup and a share lock
-- on the referenced row: about 20 checks for a payment with its fee, all of them for references
-- ledger_post_movements() has just made sure of (the accounts it locked and found in this currency, the transfers
-- it inserted in the same statement, the reversed transfer it looked up under the accounts' locks, the currency of
-- the call). Measured on 1,000-payment calls, dropping them takes 0.58-0.62 of the time; 32-payment calls 0.78-0.81
-- (docs/performance.md).
--
-- What the constraints also did, and what does it now:
--   * a reference to a missing or foreign row: the posting function checks every one, and the ledger invariants
--     (test/invariants.ts: every reference points at a row of the same currency) run after the property,
--     concurrency, crash and outage tests;
--   * a referenced row deleted: ledger rows are never deleted or changed (corrections are new transfers), accounts
--     are closed, never deleted, and currencies are never deleted; the triggers below refuse it outright.

ALTER TABLE transfer
  DROP CONSTRAINT transfer_currency_id_fkey,
  DROP CONSTRAINT transfer_from_account_id_fkey,
  DROP CONSTRAINT transfer_to_account_id_fkey,
  DROP CONSTRAINT transfer_parent_id_fkey,
  DROP CONSTRAINT transfer_reverses_id_fkey;
ALTER TABLE entry
  DROP CONSTRAINT entry_currency_id_fkey,
  DROP CONSTRAINT entry_transfer_id_fkey,
  DROP CONSTRAINT entry_account_id_fkey;
ALTER TABLE idempotency_key
  DROP CONSTRAINT idempotency_key_currency_id_fkey,
  DROP CONSTRAINT idempotency_key_transfer_id_fkey;
ALTER TABLE reserve_movement
  DROP CONSTRAINT reserve_movement_currency_id_fkey,
  DROP CONSTRAINT reserve_movement_transfer_id_fkey;

CREATE FUNCTION ledger_rows_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'CL002',
    MESSAGE = format('%s rows are never %s: the ledger only appends (correct a transfer by reversing it; close an account)',
                     TG_TABLE_NAME, CASE TG_OP WHEN 'UPDATE' THEN 'updated' WHEN 'TRUNCATE' THEN 'truncated' ELSE 'deleted' END);
END
$$;

CREATE TRIGGER transfer_append_only BEFORE UPDATE OR DELETE ON transfer
  FOR EACH ROW EXECUTE FUNCTION ledger_rows_immutable();
CREATE TRIGGER transfer_no_truncate BEFORE TRUNCATE ON transfer
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_rows_immutable();
CREATE TRIGGER entry_append_only BEFORE UPDATE OR DELETE ON entry
  FOR EACH ROW EXECUTE FUNCTION ledger_rows_immutable();
CREATE TRIGGER entry_no_truncate BEFORE TRUNCATE ON entry
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_rows_immutable();
CREATE TRIGGER idempotency_key_append_only BEFORE UPDATE OR DELETE ON idempotency_key
  FOR EACH ROW EXECUTE FUNCTION ledger_rows_immutable();
CREATE TRIGGER idempotency_key_no_truncate BEFORE TRUNCATE ON idempotency_key
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_rows_immutable();
CREATE TRIGGER reserve_movement_append_only BEFORE UPDATE OR DELETE ON reserve_movement
  FOR EACH ROW EXECUTE FUNCTION ledger_rows_immutable();
CREATE TRIGGER reserve_movement_no_truncate BEFORE TRUNCATE ON reserve_movement
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_rows_immutable();
-- accounts and currencies are referenced by the rows above: they are closed, never deleted
CREATE TRIGGER account_never_deleted BEFORE DELETE ON account
  FOR EACH ROW EXECUTE FUNCTION ledger_rows_immutable();
CREATE TRIGGER account_no_truncate BEFORE TRUNCATE ON account
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_rows_immutable();
CREATE TRIGGER currency_never_deleted BEFORE DELETE ON currency
  FOR EACH ROW EXECUTE FUNCTION ledger_rows_immutable();
CREATE TRIGGER currency_no_truncate BEFORE TRUNCATE ON currency
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_rows_immutable();
