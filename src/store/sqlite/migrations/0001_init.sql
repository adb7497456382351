-- hookd schema, version 1: settings and subscriptions.
-- Times are integer milliseconds since the Unix epoch; JSON columns hold arrays or objects as text.

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE webhooks (
  id                   TEXT PRIMARY KEY,
  tenant_id            TEXT NOT NULL,
  name                 TEXT NOT NULL,
  description          TEXT,
  url                  TEXT NOT NULL,
  events               TEXT NOT NULL,           -- JSON array of types and patterns
  account_ids          TEXT,                    -- JSON array, or NULL for every account
  enabled              INTEGER NOT NULL,
  disabled_reason      TEXT,
  timeout_seconds      INTEGER NOT NULL,
  headers              TEXT NOT NULL,           -- JSON object
  metadata             TEXT NOT NULL,           -- JSON object
  max_in_flight        INTEGER NOT NULL,
  secret               TEXT NOT NULL,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  health_since         INTEGER NOT NULL,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL
) STRICT;

CREATE INDEX webhooks_tenant_created ON webhooks (tenant_id, created_at, id);
CREATE INDEX webhooks_tenant_updated ON webhooks (tenant_id, updated_at, id);
CREATE INDEX webhooks_tenant_name ON webhooks (tenant_id, name, id);
CREATE INDEX webhooks_created ON webhooks (created_at, id);
CREATE INDEX webhooks_updated ON webhooks (updated_at, id);
CREATE INDEX webhooks_name ON webhooks (name, id);

-- Secrets replaced by a rotation, still valid for signing until expires_at.
CREATE TABLE webhook_previous_secrets (
  webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  secret     TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX webhook_previous_secrets_webhook ON webhook_previous_secrets (webhook_id, expires_at);
