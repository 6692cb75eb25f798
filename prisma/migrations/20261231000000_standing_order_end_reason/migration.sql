-- A standing order whose paying account or payee account is closed is ended by the scheduler rather than refused
-- every week for ever: it is cancelled, and why is kept on the order (end_code ACCOUNT_CLOSED and a sentence). An
-- order cancelled by its owner or an issuer has neither.
ALTER TABLE standing_order
  ADD COLUMN end_code text,
  ADD COLUMN end_detail text,
  ADD CONSTRAINT standing_order_end_check CHECK ((end_code IS NULL) = (end_detail IS NULL) AND (end_code IS NULL OR status = 'cancelled'));
