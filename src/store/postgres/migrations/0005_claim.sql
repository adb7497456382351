-- hookd schema for PostgreSQL, version 5: what a claim of one statement needs (dispatch.ts).
-- A claim leases first attempts and retries by separate index scans (the share of a claim kept for
-- first attempts is counted apart). deliveries_due holds both states in due order, so a scan for
-- retries alone read every due first attempt of the subscription (10 k rows a subscription at 1 M
-- pending); this partial index holds retries alone. A settle that schedules a retry already writes
-- the row's index entries (next_attempt_at changes), and a lease still touches no indexed column.
CREATE INDEX deliveries_retry_due ON deliveries (webhook_id, next_attempt_at) WHERE status = 'retrying';
