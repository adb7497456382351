-- hookd schema, version 6: FIFO ordering and rate limits enforced by the claim (SPEC §3).
-- deliveries_fifo finds a FIFO subscription's head (its oldest queued delivery, ties by event id)
-- among its queued deliveries alone, never its history. rate_log is a rate-limited subscription's
-- recent claims, JSON [[claimed_at_ms, attempts], ...] (src/domain/delivery-rate.ts), written only
-- when such a subscription is claimed.
CREATE INDEX deliveries_fifo ON deliveries (webhook_id, created_at, event_id) WHERE next_attempt_at IS NOT NULL;
ALTER TABLE webhooks ADD COLUMN rate_log TEXT;
