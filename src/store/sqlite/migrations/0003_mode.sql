-- Live and test mode (SPEC §2): every webhook, event and delivery carries the mode of the credential
-- that created it; existing rows are live. Lists of one tenant are read per mode, so the tenant
-- indexes of the big tables lead with (tenant_id, mode). Idempotency keys are per tenant and mode.
ALTER TABLE webhooks ADD COLUMN mode TEXT NOT NULL DEFAULT 'live';
ALTER TABLE events ADD COLUMN mode TEXT NOT NULL DEFAULT 'live';
ALTER TABLE deliveries ADD COLUMN mode TEXT NOT NULL DEFAULT 'live';

DROP INDEX events_tenant_created;
CREATE INDEX events_tenant_created ON events (tenant_id, mode, created_at, id);
DROP INDEX deliveries_tenant_created;
CREATE INDEX deliveries_tenant_created ON deliveries (tenant_id, mode, created_at, id);

CREATE TABLE idempotency_keys_by_mode (
  tenant_id    TEXT NOT NULL,
  mode         TEXT NOT NULL,
  key          TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  event_ids    TEXT NOT NULL,
  expires_at   INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, mode, key)
) STRICT, WITHOUT ROWID;
INSERT INTO idempotency_keys_by_mode (tenant_id, mode, key, request_hash, event_ids, expires_at)
  SELECT tenant_id, 'live', key, request_hash, event_ids, expires_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_by_mode RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
