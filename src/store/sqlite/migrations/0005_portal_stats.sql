-- hookd schema, version 5: portal and console sessions, and the delivery statistics aggregates.

-- A session's token is never stored, only its SHA-256 (hex). kind: portal (one tenant, its
-- capabilities) or console (hookd console-link without --tenant: every scope, no tenant).
-- Revoking deletes the row; an expired one is refused by the lookup and removed by retention.
CREATE TABLE portal_sessions (
  id           TEXT PRIMARY KEY,
  token_hash   TEXT NOT NULL UNIQUE,
  kind         TEXT NOT NULL,
  tenant_id    TEXT,
  mode         TEXT NOT NULL,
  capabilities TEXT NOT NULL,        -- JSON array
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX portal_sessions_tenant_created ON portal_sessions (tenant_id, created_at, id);
CREATE INDEX portal_sessions_created ON portal_sessions (created_at, id);
CREATE INDEX portal_sessions_expiry ON portal_sessions (expires_at);

-- Counts per webhook per span (60000: a minute, 3600000: an hour, 86400000: a UTC day) starting at
-- start (epoch ms), added to by the ingest and settle transactions (src/domain/stats.ts). webhook_id
-- '' is the tenant's own row (hence tenant_id in the key): events accepted. d0..d27: attempts per duration bucket
-- (DURATION_BOUNDS_MS). shard is always 0 on SQLite (one writer); PostgreSQL spreads writers.
CREATE TABLE webhook_stats (
  span       INTEGER NOT NULL,
  webhook_id TEXT NOT NULL,
  start      INTEGER NOT NULL,
  shard      INTEGER NOT NULL,
  tenant_id  TEXT NOT NULL,
  mode       TEXT NOT NULL,
  events     INTEGER NOT NULL DEFAULT 0,
  attempts   INTEGER NOT NULL DEFAULT 0,
  succeeded  INTEGER NOT NULL DEFAULT 0,
  failed     INTEGER NOT NULL DEFAULT 0,
  d0  INTEGER NOT NULL DEFAULT 0,
  d1  INTEGER NOT NULL DEFAULT 0,
  d2  INTEGER NOT NULL DEFAULT 0,
  d3  INTEGER NOT NULL DEFAULT 0,
  d4  INTEGER NOT NULL DEFAULT 0,
  d5  INTEGER NOT NULL DEFAULT 0,
  d6  INTEGER NOT NULL DEFAULT 0,
  d7  INTEGER NOT NULL DEFAULT 0,
  d8  INTEGER NOT NULL DEFAULT 0,
  d9  INTEGER NOT NULL DEFAULT 0,
  d10 INTEGER NOT NULL DEFAULT 0,
  d11 INTEGER NOT NULL DEFAULT 0,
  d12 INTEGER NOT NULL DEFAULT 0,
  d13 INTEGER NOT NULL DEFAULT 0,
  d14 INTEGER NOT NULL DEFAULT 0,
  d15 INTEGER NOT NULL DEFAULT 0,
  d16 INTEGER NOT NULL DEFAULT 0,
  d17 INTEGER NOT NULL DEFAULT 0,
  d18 INTEGER NOT NULL DEFAULT 0,
  d19 INTEGER NOT NULL DEFAULT 0,
  d20 INTEGER NOT NULL DEFAULT 0,
  d21 INTEGER NOT NULL DEFAULT 0,
  d22 INTEGER NOT NULL DEFAULT 0,
  d23 INTEGER NOT NULL DEFAULT 0,
  d24 INTEGER NOT NULL DEFAULT 0,
  d25 INTEGER NOT NULL DEFAULT 0,
  d26 INTEGER NOT NULL DEFAULT 0,
  d27 INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (span, webhook_id, start, tenant_id, shard)
) STRICT, WITHOUT ROWID;

CREATE INDEX webhook_stats_tenant ON webhook_stats (span, tenant_id, start);
CREATE INDEX webhook_stats_start ON webhook_stats (span, start);

-- Queued deliveries (next_attempt_at set: pending or retrying) per webhook, kept by triggers on
-- every path that queues or ends a delivery, so GET /v1/stats reads the queue's depth from one row
-- a webhook instead of counting the due index (70 ms and more at a million). Not copied by
-- `storage copy`: it is derived from deliveries.
CREATE TABLE webhook_queue (
  webhook_id TEXT PRIMARY KEY,
  tenant_id  TEXT NOT NULL,
  depth      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX webhook_queue_tenant ON webhook_queue (tenant_id);

INSERT INTO webhook_queue (webhook_id, tenant_id, depth)
  SELECT webhook_id, min(tenant_id), count(*) FROM deliveries WHERE next_attempt_at IS NOT NULL GROUP BY webhook_id;

CREATE TRIGGER deliveries_queue_insert AFTER INSERT ON deliveries WHEN NEW.next_attempt_at IS NOT NULL
BEGIN
  INSERT INTO webhook_queue (webhook_id, tenant_id, depth) VALUES (NEW.webhook_id, NEW.tenant_id, 1)
    ON CONFLICT (webhook_id) DO UPDATE SET depth = depth + 1;
END;

-- Every statement that queues a delivery or ends one sets its status; a claim or a lease release
-- (next_attempt_at alone) does not fire this trigger at all.
CREATE TRIGGER deliveries_queue_update AFTER UPDATE OF status ON deliveries
  WHEN (OLD.next_attempt_at IS NULL) <> (NEW.next_attempt_at IS NULL)
BEGIN
  INSERT INTO webhook_queue (webhook_id, tenant_id, depth)
    VALUES (NEW.webhook_id, NEW.tenant_id, CASE WHEN NEW.next_attempt_at IS NULL THEN -1 ELSE 1 END)
    ON CONFLICT (webhook_id) DO UPDATE SET depth = depth + excluded.depth;
END;

CREATE TRIGGER deliveries_queue_delete AFTER DELETE ON deliveries WHEN OLD.next_attempt_at IS NOT NULL
BEGIN
  UPDATE webhook_queue SET depth = depth - 1 WHERE webhook_id = OLD.webhook_id;
END;
