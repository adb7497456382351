-- Live and test mode (SPEC §2): every webhook, event and delivery carries the mode of the credential
-- that created it; existing rows are live (a constant default: no table rewrite). Lists of one
-- tenant are read per mode, so the tenant indexes of the big tables lead with (tenant_id, mode)
-- (rebuilt here: writes to events and deliveries wait while they build). Idempotency keys are per
-- tenant and mode.
ALTER TABLE webhooks ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test'));
ALTER TABLE events ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test'));
ALTER TABLE deliveries ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test'));

DROP INDEX events_tenant_created;
CREATE INDEX events_tenant_created ON events (tenant_id, mode, created_at, id);
DROP INDEX deliveries_tenant_created;
CREATE INDEX deliveries_tenant_created ON deliveries (tenant_id, mode, created_at, id);

ALTER TABLE idempotency_keys ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test'));
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (tenant_id, mode, key);
