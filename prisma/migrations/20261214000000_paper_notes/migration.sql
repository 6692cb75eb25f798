-- Paper notes (docs/scheme-operations.md): four movement kinds through the currency's paper-float system account.
--   note_sale        issuance -> paper   notes sold for sterling: paper circulation and the reserve grow
--   note_deposit     paper -> account    notes paid into an account: paper shrinks, the account grows
--   note_buyback     paper -> issuance   a business's notes bought back for sterling (its fee: a 'fee' leg paper -> fees)
--   note_withdrawal  paper -> issuance   worn or lost notes taken out of circulation; their sterling leaves the reserve
-- The legs are built in src/domain/movements.ts and posted by ledger_post_movements(), which has nothing
-- kind-specific in it: only the transfer table's CHECK needs to know the new kinds.
ALTER TABLE transfer DROP CONSTRAINT transfer_kind_check;
ALTER TABLE transfer ADD CONSTRAINT transfer_kind_check CHECK (kind IN (
  'payment', 'fee', 'issuance', 'redemption', 'reversal', 'note_sale', 'note_deposit', 'note_buyback', 'note_withdrawal'));
