-- A password reset code remembers which login handed it out, so that suspending that login ends the codes it made
-- and has not seen used (src/services/login.service.ts, suspendLogin), as it ends its tokens. A code made before
-- this migration has no maker on record and works until it is used or expires (24 hours at most).
ALTER TABLE app_user
  ADD COLUMN reset_issued_by uuid,
  ADD CONSTRAINT app_user_reset_issued_by_check CHECK (reset_issued_by IS NULL OR reset_code_hash IS NOT NULL);

-- the codes one login made, found when it is suspended: only logins holding a code are indexed
CREATE INDEX app_user_reset_issued_by_idx ON app_user (reset_issued_by) WHERE reset_issued_by IS NOT NULL;
