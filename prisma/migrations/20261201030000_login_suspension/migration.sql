-- An issuer can suspend a member's or business's login. While suspended_at is set the login gets no token, and
-- every request with one of its tokens, or with a token of its business's API keys, is refused. Suspending also
-- sets tokens_revoked_before: tokens issued until then stay dead after the login is reinstated, so reinstating a
-- login never brings back a token someone may have taken meanwhile (a new login is needed).
-- Every instance keeps the few logins concerned in memory (suspended, or revoked within the longest token
-- lifetime) and re-reads them at most every LOGIN_CHECK_MS; the partial index keeps that read to those rows.
ALTER TABLE app_user ADD COLUMN suspended_at timestamptz;
ALTER TABLE app_user ADD COLUMN tokens_revoked_before timestamptz;
CREATE INDEX app_user_revoked_idx ON app_user (tokens_revoked_before) WHERE tokens_revoked_before IS NOT NULL;
