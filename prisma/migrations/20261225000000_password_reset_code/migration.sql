-- A forgotten password: an issuer hands the login a one-time reset code (POST /v1/participants/{id}/password-reset,
-- POST /v1/staff/{id}/password-reset), and the login sets a new password with it (POST /v1/auth/password/reset).
-- Only the code's SHA-256 is kept, with when it stops working; one code per login, a new one replacing it, and
-- the code is cleared when used.
ALTER TABLE app_user
  ADD COLUMN reset_code_hash text,
  ADD COLUMN reset_expires_at timestamptz,
  ADD CONSTRAINT app_user_reset_code_check CHECK ((reset_code_hash IS NULL) = (reset_expires_at IS NULL));
