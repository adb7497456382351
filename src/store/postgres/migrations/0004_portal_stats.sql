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

-- Queued deliveries (pending or retrying) per webhook, for GET /v1/stats without counting the due
-- index (hundreds of ms at a million). Statement triggers on deliveries append one row per webhook
-- and statement to queue_deltas (inserts never wait on one another: no counter row is shared by
-- writers); maintenance folds the deltas into webhook_queue (sweepRetention, one instance at a
-- time); a read sums both in one snapshot. Not copied by `storage copy`: derived from deliveries.
CREATE TABLE webhook_queue (
  webhook_id text PRIMARY KEY,
  tenant_id  text NOT NULL,
  depth      bigint NOT NULL
);

CREATE TABLE queue_deltas (
  webhook_id text NOT NULL,
  tenant_id  text NOT NULL,
  delta      bigint NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

CREATE INDEX queue_deltas_webhook ON queue_deltas (webhook_id);

CREATE FUNCTION hookd_queue_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO queue_deltas (webhook_id, tenant_id, delta)
    SELECT webhook_id, min(tenant_id), count(*) FROM hookd_new WHERE status IN ('pending', 'retrying')
    GROUP BY webhook_id;
  RETURN NULL;
END $$;

CREATE FUNCTION hookd_queue_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO queue_deltas (webhook_id, tenant_id, delta)
    SELECT n.webhook_id, min(n.tenant_id),
      sum(CASE WHEN n.status IN ('pending', 'retrying') THEN 1 ELSE -1 END)
    FROM hookd_new n JOIN hookd_old o ON o.id = n.id
    WHERE (n.status IN ('pending', 'retrying')) <> (o.status IN ('pending', 'retrying'))
    GROUP BY n.webhook_id;
  RETURN NULL;
END $$;

CREATE FUNCTION hookd_queue_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO queue_deltas (webhook_id, tenant_id, delta)
    SELECT webhook_id, min(tenant_id), -count(*) FROM hookd_old WHERE status IN ('pending', 'retrying')
    GROUP BY webhook_id;
  RETURN NULL;
END $$;

-- The triggers first: their lock on deliveries holds writers back until this migration commits, so
-- the count below misses nothing and nothing is counted twice.
CREATE TRIGGER deliveries_queue_inserted AFTER INSERT ON deliveries
  REFERENCING NEW TABLE AS hookd_new FOR EACH STATEMENT EXECUTE FUNCTION hookd_queue_inserted();
CREATE TRIGGER deliveries_queue_updated AFTER UPDATE ON deliveries
  REFERENCING OLD TABLE AS hookd_old NEW TABLE AS hookd_new FOR EACH STATEMENT EXECUTE FUNCTION hookd_queue_updated();
CREATE TRIGGER deliveries_queue_deleted AFTER DELETE ON deliveries
  REFERENCING OLD TABLE AS hookd_old FOR EACH STATEMENT EXECUTE FUNCTION hookd_queue_deleted();

INSERT INTO webhook_queue (webhook_id, tenant_id, depth)
  SELECT webhook_id, min(tenant_id), count(*) FROM deliveries WHERE status IN ('pending', 'retrying')
  GROUP BY webhook_id;
