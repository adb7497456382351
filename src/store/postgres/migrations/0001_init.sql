-- hookd schema for PostgreSQL, version 1: the same tables and columns as SQLite versions 1 and 2,
-- plus what several instances need (in-flight counters, leases kept apart from due times, the
-- instances table and the fan-out version). Times are epoch milliseconds (bigint); JSON columns
-- hold JSON text, so the exact bytes and any escape in them survive (jsonb refuses \u0000).
--
-- The hot queue (SPEC §6; docs/postgres.md says why):
-- - deliveries: a claim writes only lease_owner and leased_until, which no index covers, so a claim
--   is a HOT update (fillfactor leaves room on the page); the due index is partial on the queued
--   states and leaves with the row when it is settled.
-- - webhooks: in_flight and the health counters change on every claim and settle and are in no
--   index; next_due_at changes only when a claim drains a subscription.
-- - autovacuum runs on these two much earlier than PostgreSQL's 20% default, so dead versions of
--   queue rows do not pile up under a steady load.

CREATE TABLE settings (
  key   text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE webhooks (
  id                   text PRIMARY KEY,
  tenant_id            text NOT NULL,
  name                 text NOT NULL,
  description          text,
  url                  text NOT NULL,
  events               text NOT NULL,           -- JSON array of types and patterns
  account_ids          text,                    -- JSON array, or NULL for every account
  enabled              boolean NOT NULL,
  disabled_reason      text,
  timeout_seconds      integer NOT NULL,
  headers              text NOT NULL,           -- JSON object
  metadata             text NOT NULL,           -- JSON object
  max_in_flight        integer NOT NULL,
  secret               text NOT NULL,
  consecutive_failures integer NOT NULL DEFAULT 0,
  health_since         bigint NOT NULL,
  created_at           bigint NOT NULL,
  updated_at           bigint NOT NULL,
  -- The earliest time (database clock) any queued delivery is due; may be early, never late.
  next_due_at          bigint,
  -- Deliveries of this subscription under a lease, counted by claims and settles of every instance.
  in_flight            integer NOT NULL DEFAULT 0,
  -- No lease of this subscription ends before this (database clock); may be early, never late.
  lease_check_at       bigint NOT NULL DEFAULT 9007199254740991
) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500,
        autovacuum_analyze_scale_factor = 0.05);

CREATE INDEX webhooks_tenant_created ON webhooks (tenant_id, created_at, id);
CREATE INDEX webhooks_tenant_updated ON webhooks (tenant_id, updated_at, id);
CREATE INDEX webhooks_tenant_name ON webhooks (tenant_id, name, id);
CREATE INDEX webhooks_created ON webhooks (created_at, id);
CREATE INDEX webhooks_updated ON webhooks (updated_at, id);
CREATE INDEX webhooks_name ON webhooks (name, id);
CREATE INDEX webhooks_next_due ON webhooks (next_due_at) WHERE next_due_at IS NOT NULL;

CREATE TABLE webhook_previous_secrets (
  webhook_id text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  secret     text NOT NULL,
  expires_at bigint NOT NULL
);

CREATE INDEX webhook_previous_secrets_webhook ON webhook_previous_secrets (webhook_id, expires_at);

CREATE TABLE events (
  id               text PRIMARY KEY,
  tenant_id        text NOT NULL,
  type             text NOT NULL,
  account_id       text,
  payload          text NOT NULL,
  deliveries_count integer NOT NULL,
  created_at       bigint NOT NULL
);

CREATE INDEX events_tenant_created ON events (tenant_id, created_at, id);
CREATE INDEX events_created ON events (created_at, id);

CREATE TABLE deliveries (
  id                   text PRIMARY KEY,
  tenant_id            text NOT NULL,
  event_id             text NOT NULL,
  webhook_id           text NOT NULL,
  event_type           text NOT NULL,
  status               text NOT NULL,
  attempts             integer NOT NULL DEFAULT 0,
  series_attempts      integer NOT NULL DEFAULT 0,
  response_status_code integer,
  last_attempt_at      bigint,
  -- When it is next due (database clock); NULL once final. Unchanged by a lease.
  next_attempt_at      bigint,
  lease_owner          text,
  -- When the lease ends (database clock).
  leased_until         bigint,
  signature            text,
  created_at           bigint NOT NULL,
  updated_at           bigint NOT NULL
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02,
        autovacuum_vacuum_insert_scale_factor = 0.05);

CREATE INDEX deliveries_due ON deliveries (webhook_id, next_attempt_at) WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_webhook_created ON deliveries (webhook_id, created_at, id);
CREATE INDEX deliveries_tenant_created ON deliveries (tenant_id, created_at, id);
CREATE INDEX deliveries_created ON deliveries (created_at, id);
CREATE INDEX deliveries_event ON deliveries (event_id, status);

CREATE TABLE attempts (
  id                   text PRIMARY KEY,
  delivery_id          text NOT NULL,
  started_at           bigint NOT NULL,
  duration_ms          integer NOT NULL,
  response_status_code integer,
  response_headers     text,
  response_body        text,
  error                text
);

CREATE INDEX attempts_delivery ON attempts (delivery_id, started_at, id);

CREATE TABLE idempotency_keys (
  tenant_id    text NOT NULL,
  key          text NOT NULL,
  request_hash text NOT NULL,
  event_ids    text NOT NULL,
  expires_at   bigint NOT NULL,
  PRIMARY KEY (tenant_id, key)
);

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Live instances (heartbeats, by the database's clock), for per-key rate limit shares and metrics.
CREATE TABLE instances (
  id           text PRIMARY KEY,
  version      text NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL
);

-- Bumped in the transaction of every change to a subscription: an instance's fan-out cache is good
-- only while this matches what it loaded with.
CREATE TABLE fanout_version (
  id      integer PRIMARY KEY CHECK (id = 1),
  version bigint NOT NULL
);
INSERT INTO fanout_version (id, version) VALUES (1, 0);

-- Who runs maintenance (retention, the idempotency-key sweep) now: a lease by the database's clock,
-- so one instance at a time sweeps, and another takes over when it dies.
CREATE TABLE maintenance_lease (
  id         integer PRIMARY KEY CHECK (id = 1),
  owner      text NOT NULL,
  expires_at timestamptz NOT NULL
);
INSERT INTO maintenance_lease (id, owner, expires_at) VALUES (1, '', '-infinity');
