-- hookd schema for PostgreSQL, version 4: portal and console sessions, and the delivery statistics
-- aggregates (the same tables as SQLite version 5).

-- A session's token is never stored, only its SHA-256 (hex). Revoking deletes the row, so the next
-- request with its token, on any instance, finds nothing (the lookup is per request, by this key).
CREATE TABLE portal_sessions (
  id           text PRIMARY KEY,
  token_hash   text NOT NULL UNIQUE,
  kind         text NOT NULL,
  tenant_id    text,
  mode         text NOT NULL,
  capabilities text NOT NULL,        -- JSON array
  created_at   bigint NOT NULL,
  expires_at   bigint NOT NULL
);

CREATE INDEX portal_sessions_tenant_created ON portal_sessions (tenant_id, created_at, id);
CREATE INDEX portal_sessions_created ON portal_sessions (created_at, id);
CREATE INDEX portal_sessions_expiry ON portal_sessions (expires_at);

-- Counts per webhook per span and start (epoch ms of the caller's clock), see SQLite's 0005. Writers
-- add to the row of their own shard (one per transaction, drawn at random), so instances and
-- concurrent transactions seldom wait for one another on a row; a read sums the shards.
CREATE TABLE webhook_stats (
  span       bigint NOT NULL,
  webhook_id text NOT NULL,
  start      bigint NOT NULL,
  shard      integer NOT NULL,
  tenant_id  text NOT NULL,
  mode       text NOT NULL,
  events     bigint NOT NULL DEFAULT 0,
  attempts   bigint NOT NULL DEFAULT 0,
  succeeded  bigint NOT NULL DEFAULT 0,
  failed     bigint NOT NULL DEFAULT 0,
  d0  bigint NOT NULL DEFAULT 0,
  d1  bigint NOT NULL DEFAULT 0,
  d2  bigint NOT NULL DEFAULT 0,
  d3  bigint NOT NULL DEFAULT 0,
  d4  bigint NOT NULL DEFAULT 0,
  d5  bigint NOT NULL DEFAULT 0,
  d6  bigint NOT NULL DEFAULT 0,
  d7  bigint NOT NULL DEFAULT 0,
  d8  bigint NOT NULL DEFAULT 0,
  d9  bigint NOT NULL DEFAULT 0,
  d10 bigint NOT NULL DEFAULT 0,
  d11 bigint NOT NULL DEFAULT 0,
  d12 bigint NOT NULL DEFAULT 0,
  d13 bigint NOT NULL DEFAULT 0,
  d14 bigint NOT NULL DEFAULT 0,
  d15 bigint NOT NULL DEFAULT 0,
  d16 bigint NOT NULL DEFAULT 0,
  d17 bigint NOT NULL DEFAULT 0,
  d18 bigint NOT NULL DEFAULT 0,
  d19 bigint NOT NULL DEFAULT 0,
  d20 bigint NOT NULL DEFAULT 0,
  d21 bigint NOT NULL DEFAULT 0,
  d22 bigint NOT NULL DEFAULT 0,
  d23 bigint NOT NULL DEFAULT 0,
  d24 bigint NOT NULL DEFAULT 0,
  d25 bigint NOT NULL DEFAULT 0,
  d26 bigint NOT NULL DEFAULT 0,
  d27 bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (span, webhook_id, start, tenant_id, shard)
) WITH (fillfactor = 70);

CREATE INDEX webhook_stats_tenant ON webhook_stats (span, tenant_id, start);
CREATE INDEX webhook_stats_start ON webhook_stats (span, start);
