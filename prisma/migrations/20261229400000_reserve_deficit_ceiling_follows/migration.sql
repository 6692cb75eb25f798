-- A currency whose reserve was already below zero when the reserve rule came in (20261229000000) kept its deficit
-- as the issuance account's ceiling, and that ceiling stayed where it was: sterling paid in by later issuances
-- could be paid straight out again while the reserve was still short, and once the reserve was back above zero it
-- could be taken below zero again, down to the old deficit, unless someone remembered to PATCH the ceiling to zero.
--
-- Such a ceiling now follows the balance down and never comes back up: whenever the issuance account's balance
-- falls (sterling in), its ceiling falls with it, to zero at the least. So nothing is paid out while the reserve is
-- below zero, and from the moment it is back the ceiling is zero, as every other currency's. The WHEN clause keeps
-- the trigger to issuance accounts whose ceiling is above zero: on every other account (every payment) it is not
-- called at all. It is a BEFORE trigger, so the table's CHECK constraints see the lowered ceiling.
CREATE FUNCTION account_issuance_ceiling_follows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.ceiling := GREATEST(LEAST(NEW.ceiling, NEW.balance), 0);
  RETURN NEW;
END $$;

CREATE TRIGGER account_issuance_ceiling_follows
  BEFORE UPDATE OF balance ON account
  FOR EACH ROW
  WHEN (NEW.system_kind = 'issuance' AND NEW.ceiling > 0 AND NEW.balance < OLD.balance)
  EXECUTE FUNCTION account_issuance_ceiling_follows();

-- and now for a deficit already paid back before this migration ran
UPDATE account SET ceiling = GREATEST(balance, 0) WHERE system_kind = 'issuance' AND ceiling > GREATEST(balance, 0);
