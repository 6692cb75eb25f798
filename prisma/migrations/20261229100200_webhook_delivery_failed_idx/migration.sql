-- GET /v1/webhooks/{id}/deliveries?status=failed walked the endpoint's whole log newest first (webhook_delivery_webhook_idx)
-- to find the few failed deliveries among the delivered ones, on the service's main pool: about 90 ms a request for
-- an endpoint with 500,000 deliveries, growing with its log, as often as its owner liked to ask. Failed deliveries
-- are few, and a row becomes failed once, so this index costs the payments' inserts nothing (a delivery is written
-- pending). Pending ones are found through webhook_delivery_currency_due_idx; delivered are most of any log.
-- Built in the migration's transaction (not CONCURRENTLY, which the runner cannot do): inserts of deliveries, and so
-- the payments that write them, wait for the one scan of the table it takes.
CREATE INDEX webhook_delivery_failed_idx ON webhook_delivery (webhook_id, id) WHERE status = 'failed';
