-- hookd schema for PostgreSQL, version 6: FIFO ordering and rate limits enforced by the claim
-- (SPEC §3), as SQLite version 6. deliveries_fifo finds a FIFO subscription's head (its oldest
-- queued delivery, ties by event id) among its queued deliveries alone, never its history.
-- rate_log is a rate-limited subscription's recent claims, JSON text [[claimed_at_ms, attempts], ...]
-- (src/domain/delivery-rate.ts), read and written under the subscription's row lock, and only when
-- such a subscription is claimed.
CREATE INDEX deliveries_fifo ON deliveries (webhook_id, created_at, event_id) WHERE status IN ('pending', 'retrying');
ALTER TABLE webhooks ADD COLUMN rate_log text;
