-- hookd schema, version 2: events, deliveries, attempts and idempotency keys.

-- The earliest time any of a subscription's deliveries is due (or its lease ends). It may be early,
-- never late: the claim walks subscriptions in this order, then their own due deliveries.
ALTER TABLE webhooks ADD COLUMN next_due_at INTEGER;
CREATE INDEX webhooks_next_due ON webhooks (next_due_at) WHERE next_due_at IS NOT NULL;

CREATE TABLE events (
  id         TEXT PRIMARY KEY,
  tenant_id  TEXT NOT NULL,
  type       TEXT NOT NULL,
  account_id TEXT,
  payload    TEXT NOT NULL,          -- the exact body every delivery sends
  deliveries_count INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX events_tenant_created ON events (tenant_id, created_at, id);
CREATE INDEX events_created ON events (created_at, id);

CREATE TABLE deliveries (
  id                   TEXT PRIMARY KEY,
  tenant_id            TEXT NOT NULL,
  event_id             TEXT NOT NULL,
  webhook_id           TEXT NOT NULL,
  event_type           TEXT NOT NULL,
  status               TEXT NOT NULL,
  attempts             INTEGER NOT NULL DEFAULT 0,   -- every attempt ever made
  series_attempts      INTEGER NOT NULL DEFAULT 0,   -- attempts since the last (re)queue: the schedule position
  response_status_code INTEGER,
  last_attempt_at      INTEGER,
  -- When it is next due; while leased, when the lease ends. NULL once final.
  next_attempt_at      INTEGER,
  lease_owner          TEXT,
  signature            TEXT,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL
) STRICT;

CREATE INDEX deliveries_due ON deliveries (webhook_id, next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_webhook_created ON deliveries (webhook_id, created_at, id);
CREATE INDEX deliveries_tenant_created ON deliveries (tenant_id, created_at, id);
CREATE INDEX deliveries_created ON deliveries (created_at, id);
CREATE INDEX deliveries_event ON deliveries (event_id, status);

CREATE TABLE attempts (
  id                   TEXT PRIMARY KEY,
  delivery_id          TEXT NOT NULL,
  started_at           INTEGER NOT NULL,
  duration_ms          INTEGER NOT NULL,
  response_status_code INTEGER,
  response_headers     TEXT,          -- JSON object
  response_body        TEXT,          -- the first 4 KiB
  error                TEXT
) STRICT;

CREATE INDEX attempts_delivery ON attempts (delivery_id, started_at, id);

CREATE TABLE idempotency_keys (
  tenant_id    TEXT NOT NULL,
  key          TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  event_ids    TEXT NOT NULL,          -- JSON array: the events the first request created
  expires_at   INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, key)
) STRICT, WITHOUT ROWID;

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
