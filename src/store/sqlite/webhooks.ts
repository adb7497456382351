// SQL for subscriptions: one function per statement.
import type { Database, SQLQueryBindings } from "bun:sqlite";
import { DEFAULT_MODE, type Mode } from "../../domain/mode.ts";
import type { DisabledReason, Ordering, SignatureScheme, Webhook } from "../../domain/webhook.ts";
import type { NewWebhook, Page, PageQuery, WebhookChanges, WebhookFilter, WebhookOrder } from "../store.ts";
import { keysetPage } from "./keyset.ts";

interface WebhookRow {
  id: string;
  tenant_id: string;
  mode: Mode;
  name: string;
  description: string | null;
  url: string;
  events: string;
  account_ids: string | null;
  enabled: number;
  disabled_reason: string | null;
  timeout_seconds: number;
  headers: string;
  metadata: string;
  max_in_flight: number;
  secret: string;
  filter: string | null;
  ordering: string;
  rate_limit: number | null;
  signature_scheme: string;
  consecutive_failures: number;
  health_since: number;
  created_at: number;
  updated_at: number;
  previous_secrets: string | null;
}

const SELECT = `SELECT w.*, (
    SELECT json_group_array(json_object('secret', p.secret, 'expires_at', p.expires_at))
    FROM webhook_previous_secrets p WHERE p.webhook_id = w.id
  ) AS previous_secrets
  FROM webhooks w`;

function toWebhook(row: WebhookRow): Webhook {
  const previous = JSON.parse(row.previous_secrets ?? "[]") as { secret: string; expires_at: number }[];
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    name: row.name,
    description: row.description,
    url: row.url,
    events: JSON.parse(row.events),
    accountIds: row.account_ids === null ? null : JSON.parse(row.account_ids),
    enabled: row.enabled === 1,
    disabledReason: row.disabled_reason as DisabledReason | null,
    timeoutSeconds: row.timeout_seconds,
    headers: JSON.parse(row.headers),
    metadata: JSON.parse(row.metadata),
    maxInFlight: row.max_in_flight,
    // `?? default`: a query that does not select these columns (an older SELECT) reads the defaults.
    filter: row.filter == null ? null : JSON.parse(row.filter),
    ordering: (row.ordering ?? "unordered") as Ordering,
    rateLimit: row.rate_limit ?? null,
    signatureScheme: (row.signature_scheme ?? "v1") as SignatureScheme,
    secret: row.secret,
    previousSecrets: previous.map((p) => ({ secret: p.secret, expiresAt: p.expires_at })),
    consecutiveFailures: row.consecutive_failures,
    healthSince: row.health_since,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

const tenantClause = (tenantId: string | undefined): [string, SQLQueryBindings[]] =>
  tenantId === undefined ? ["1 = 1", []] : ["w.tenant_id = ?", [tenantId]];

export function insertWebhook(db: Database, w: NewWebhook): void {
  db.query(
    `INSERT INTO webhooks (id, tenant_id, mode, name, description, url, events, account_ids, enabled, disabled_reason,
       timeout_seconds, headers, metadata, max_in_flight, secret, filter, ordering, rate_limit, signature_scheme,
       consecutive_failures, health_since, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`,
  ).run(
    w.id,
    w.tenantId,
    w.mode ?? DEFAULT_MODE,
    w.name,
    w.description,
    w.url,
    JSON.stringify(w.events),
    w.accountIds === null ? null : JSON.stringify(w.accountIds),
    w.enabled ? 1 : 0,
    w.disabledReason,
    w.timeoutSeconds,
    JSON.stringify(w.headers),
    JSON.stringify(w.metadata),
    w.maxInFlight,
    w.secret,
    w.filter == null ? null : JSON.stringify(w.filter),
    w.ordering ?? "unordered",
    w.rateLimit ?? null,
    w.signatureScheme ?? "v1",
    w.createdAt,
    w.createdAt,
    w.createdAt,
  );
}

export function selectWebhook(db: Database, id: string, tenantId?: string): Webhook | null {
  const [clause, params] = tenantClause(tenantId);
  const row = db
    .query<WebhookRow, SQLQueryBindings[]>(`${SELECT} WHERE w.id = ? AND ${clause}`)
    .get(id, ...params);
  return row ? toWebhook(row) : null;
}

// A pattern matches a type when it is the type, `*`, or `prefix.*` with the type starting `prefix.`.
// Binds the type twice.
const MATCHES_EVENT = `EXISTS (SELECT 1 FROM json_each(w.events) e WHERE e.value = ? OR e.value = '*'
  OR (substr(e.value, -2) = '.*' AND substr(?, 1, length(e.value) - 1) = substr(e.value, 1, length(e.value) - 1)))`;

export function selectWebhookPage(
  db: Database,
  filter: WebhookFilter,
  page: PageQuery<WebhookOrder>,
): Page<Webhook> {
  const where: string[] = [];
  const params: SQLQueryBindings[] = [];
  if (filter.tenantId !== undefined) {
    where.push("w.tenant_id = ?");
    params.push(filter.tenantId);
  }
  if (filter.mode !== undefined) {
    where.push("w.mode = ?");
    params.push(filter.mode);
  }
  if (filter.enabled !== undefined) {
    where.push("w.enabled = ?");
    params.push(filter.enabled ? 1 : 0);
  }
  if (filter.accountId !== undefined) {
    where.push(
      "(w.account_ids IS NULL OR EXISTS (SELECT 1 FROM json_each(w.account_ids) a WHERE a.value = ?))",
    );
    params.push(filter.accountId);
  }
  if (filter.search !== undefined) {
    where.push(
      "(instr(lower(w.name), ?) > 0 OR instr(lower(w.url), ?) > 0 OR instr(lower(w.id), ?) > 0 OR instr(lower(coalesce(w.description, '')), ?) > 0)",
    );
    const needle = filter.search.toLowerCase();
    params.push(needle, needle, needle, needle);
  }
  if (filter.ordering !== undefined) {
    where.push("w.ordering = ?");
    params.push(filter.ordering);
  }
  if (filter.eventType !== undefined) {
    where.push(MATCHES_EVENT);
    params.push(filter.eventType, filter.eventType);
  }
  const descending = page.order.startsWith("-");
  const column = `w.${page.order.replace("-", "")}`;
  return keysetPage(
    db,
    { select: SELECT, where, params, column, idColumn: "w.id", descending, map: toWebhook },
    page,
  );
}

const COLUMNS: Record<
  Exclude<keyof WebhookChanges, "resetHealthAt">,
  [string, (v: never) => SQLQueryBindings]
> = {
  name: ["name", (v: string) => v],
  description: ["description", (v: string | null) => v],
  url: ["url", (v: string) => v],
  events: ["events", (v: string[]) => JSON.stringify(v)],
  accountIds: ["account_ids", (v: string[] | null) => (v === null ? null : JSON.stringify(v))],
  enabled: ["enabled", (v: boolean) => (v ? 1 : 0)],
  disabledReason: ["disabled_reason", (v: string | null) => v],
  timeoutSeconds: ["timeout_seconds", (v: number) => v],
  headers: ["headers", (v: Record<string, string>) => JSON.stringify(v)],
  metadata: ["metadata", (v: Record<string, string>) => JSON.stringify(v)],
  maxInFlight: ["max_in_flight", (v: number) => v],
  filter: ["filter", (v: object | null) => (v === null ? null : JSON.stringify(v))],
  ordering: ["ordering", (v: string) => v],
  rateLimit: ["rate_limit", (v: number | null) => v],
  signatureScheme: ["signature_scheme", (v: string) => v],
  secret: ["secret", (v: string) => v],
};

export function updateWebhook(
  db: Database,
  id: string,
  tenantId: string | undefined,
  changes: WebhookChanges,
  now: number,
): boolean {
  const sets = ["updated_at = ?"];
  const params: SQLQueryBindings[] = [now];
  for (const [field, [column, encode]] of Object.entries(COLUMNS)) {
    const value = changes[field as keyof WebhookChanges];
    if (value === undefined) continue;
    sets.push(`${column} = ?`);
    params.push(encode(value as never));
  }
  if (changes.resetHealthAt !== undefined) {
    sets.push("consecutive_failures = 0", "health_since = ?");
    params.push(changes.resetHealthAt);
  }
  const [clause, tenantParams] = tenantClause(tenantId);
  const result = db
    .query(`UPDATE webhooks AS w SET ${sets.join(", ")} WHERE w.id = ? AND ${clause}`)
    .run(...params, id, ...tenantParams);
  return result.changes > 0;
}

export function deleteWebhook(db: Database, id: string, tenantId: string | undefined): boolean {
  const [clause, params] = tenantClause(tenantId);
  return db.query(`DELETE FROM webhooks AS w WHERE w.id = ? AND ${clause}`).run(id, ...params).changes > 0;
}

export function replaceSecret(db: Database, id: string, secret: string, now: number): void {
  db.query("UPDATE webhooks SET secret = ?, updated_at = ? WHERE id = ?").run(secret, now, id);
}

export function insertPreviousSecret(db: Database, id: string, secret: string, expiresAt: number): void {
  db.query("INSERT INTO webhook_previous_secrets (webhook_id, secret, expires_at) VALUES (?, ?, ?)").run(
    id,
    secret,
    expiresAt,
  );
}

/** Earlier secrets end no later than the new grace period: a rotation never extends an old one. */
export function capPreviousSecrets(db: Database, id: string, until: number): void {
  db.query("UPDATE webhook_previous_secrets SET expires_at = min(expires_at, ?) WHERE webhook_id = ?").run(
    until,
    id,
  );
}

export function deleteExpiredSecrets(db: Database, id: string, now: number): void {
  db.query("DELETE FROM webhook_previous_secrets WHERE webhook_id = ? AND expires_at <= ?").run(id, now);
}
