-- What the accounts exports have published of each participant account (docs/disclosure.md, "Exports made at
-- different times"). A researcher who downloads the accounts export twice links the two files' pseudonyms through
-- the transfers (the same payments at the same microseconds), and so holds, of each account, the sequence of what
-- each file said. `history` is a digest of that sequence (sha256 of the previous digest and the combination
-- published); the next export generalises the accounts of each history apart, so every sequence a researcher can
-- hold is shared by at least k accounts. `role_known` and `area_known`: some export gave the account's role, or its
-- area and locality, so the flows report counts that margin class as given (src/reports/flows.report.ts).
-- No foreign key to account: accounts are never deleted, and a key without currency_id would not distribute.
CREATE TABLE account_export_history (
  currency_id uuid        NOT NULL,
  account_id  uuid        NOT NULL,
  history     text        NOT NULL,
  role_known  boolean     NOT NULL DEFAULT false,
  area_known  boolean     NOT NULL DEFAULT false,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (currency_id, account_id)
);
