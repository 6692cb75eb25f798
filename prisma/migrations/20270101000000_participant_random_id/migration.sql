-- A participant's id is public for businesses: the business directory, which anyone reads, lists each business
-- under it (and its page cursor carries it). As a uuid v7 its first 48 bits were the millisecond the business
-- registered, an instant of joining the accounts export generalises to the month for k-anonymity
-- (docs/disclosure.md, "Linkage"). New participants get a random (v4) id; nothing orders or ranges participants by
-- id. Ids already made keep their time: a primary key referenced from accounts, logins, keys and phones is not
-- rewritten here.
ALTER TABLE participant ALTER COLUMN id SET DEFAULT gen_random_uuid();
