-- The sterling reserve never falls below zero. A currency's issuance account holds minus its reserve (currency
-- leaves it when sterling comes in, comes back when sterling is paid out), so a ceiling of zero on it refuses any
-- redemption, note buyback, note withdrawal or reversal of an issuance that would pay out sterling the scheme never
-- received. Before this, money spent on credit (an account whose floor is below zero) could be redeemed: the
-- reserve went negative while the books still balanced.
--
-- A currency whose reserve is already below zero keeps its deficit as its ceiling: nothing more can be paid out
-- until issuances bring it back, and the issuer can then put the ceiling at zero (PATCH /v1/accounts/{id}).
UPDATE account SET ceiling = GREATEST(balance, 0) WHERE system_kind = 'issuance';

-- Every issuance account has a ceiling, whoever makes the currency (the API, the simulator, a script).
ALTER TABLE account ADD CONSTRAINT account_issuance_ceiling_check
  CHECK (system_kind IS DISTINCT FROM 'issuance' OR ceiling IS NOT NULL);
