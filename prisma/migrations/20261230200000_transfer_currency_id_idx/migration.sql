-- GET /v1/currencies/{code}/transfers goes along a currency's transfers in id order (keyset on the time-ordered id),
-- and with kind, from or to it first finds the next TRANSFER_WINDOW ids after its cursor. The only index that began
-- with the currency was (currency_id, created_at, id), whose order is not the id's, so a page walked the primary key
-- (every currency's transfers) filtering by currency, or sorted what it found: a page for a redemption among
-- 300,000 payments read 75,000 buffers and took 83 ms (docs/measurements.md, "Transfer search pages and
-- TRANSFER_WINDOW"). This index gives the currency's ids in order. It costs each transfer written one index entry
-- more (measured there too).
-- Built in the migration's transaction (not CONCURRENTLY, which the runner cannot do): inserts of transfers, and so
-- payments, wait for the one scan of the table it takes.
CREATE INDEX transfer_currency_id_idx ON transfer (currency_id, id);
