// SQL for subscriptions on PostgreSQL: one function per statement. Every change to a subscription
// also bumps the fan-out version in its transaction (fanout.ts), so no instance fans out against a
// cached copy older than the commit.
import { DEFAULT_MODE, type Mode } from "../../domain/mode.ts";
import type { DisabledReason, Ordering, SignatureScheme, Webhook } from "../../domain/webhook.ts";
import type { NewWebhook, Page, PageQuery, WebhookChanges, WebhookFilter, WebhookOrder } from "../store.ts";
import type { Query } from "./client.ts";
import { keysetPage, num, numbered } from "./keyset.ts";

interface WebhookRow {
  id: string;
  tenant_id: string;
  mode: Mode;
  name: string;
  description: string | null;
  url: string;
  events: string;
  account_ids: string | null;
  enabled: boolean;
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
  health_since: string | number;
  created_at: string | number;
  updated_at: string | number;
  previous_secrets: string | null;
}

export const WEBHOOK_SELECT = `SELECT w.id, w.tenant_id, w.mode, w.name, w.description, w.url, w.events, w.account_ids,
    w.enabled, w.disabled_reason, w.timeout_seconds, w.headers, w.metadata, w.max_in_flight, w.secret,
    w.filter, w.ordering, w.rate_limit, w.signature_scheme, w.consecutive_failures, w.health_since, w.created_at, w.updated_at,
    (SELECT json_agg(json_build_object('secret', p.secret, 'expires_at', p.expires_at))::text
       FROM webhook_previous_secrets p WHERE p.webhook_id = w.id) AS previous_secrets
  FROM webhooks w`;

export function toWebhook(row: WebhookRow): Webhook {
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
    enabled: row.enabled,
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
    previousSecrets: previous.map((p) => ({ secret: p.secret, expiresAt: num(p.expires_at) })),
    consecutiveFailures: row.consecutive_failures,
    healthSince: num(row.health_since),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  };
}

export type { WebhookRow };

export async function bumpFanoutVersion(q: Query): Promise<void> {
  await q("UPDATE fanout_version SET version = version + 1 WHERE id = 1");
}

export async function insertWebhook(q: Query, w: NewWebhook): Promise<void> {
  await q(
    `INSERT INTO webhooks (id, tenant_id, name, description, url, events, account_ids, enabled, disabled_reason,
       timeout_seconds, headers, metadata, max_in_flight, secret, filter, ordering, rate_limit, signature_scheme,
       consecutive_failures, health_since, created_at, updated_at, mode)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, 0, $19, $19, $19, $20)`,
    [
      w.id,
      w.tenantId,
      w.name,
      w.description,
      w.url,
      JSON.stringify(w.events),
      w.accountIds === null ? null : JSON.stringify(w.accountIds),
      w.enabled,
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
      w.mode ?? DEFAULT_MODE,
    ],
  );
}

export async function selectWebhook(q: Query, id: string, tenantId?: string): Promise<Webhook | null> {
  const rows =
    tenantId === undefined
      ? await q<WebhookRow>(`${WEBHOOK_SELECT} WHERE w.id = $1`, [id])
      : await q<WebhookRow>(`${WEBHOOK_SELECT} WHERE w.id = $1 AND w.tenant_id = $2`, [id, tenantId]);
  return rows[0] ? toWebhook(rows[0]) : null;
}

// A pattern matches a type when it is the type, `*`, or `prefix.*` with the type starting `prefix.`.
const MATCHES_EVENT = `EXISTS (SELECT 1 FROM json_array_elements_text(w.events::json) e(value)
  WHERE e.value = ? OR e.value = '*' OR (right(e.value, 2) = '.*' AND left(?, length(e.value) - 1) = left(e.value, length(e.value) - 1)))`;

export function selectWebhookPage(
  q: Query,
  filter: WebhookFilter,
  page: PageQuery<WebhookOrder>,
): Promise<Page<Webhook>> {
  const where: string[] = [];
  const params: unknown[] = [];
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
    params.push(filter.enabled);
  }
  if (filter.accountId !== undefined) {
    where.push(
      "(w.account_ids IS NULL OR EXISTS (SELECT 1 FROM json_array_elements_text(w.account_ids::json) a(value) WHERE a.value = ?))",
    );
    params.push(filter.accountId);
  }
  if (filter.search !== undefined) {
    where.push(
      "(strpos(lower(w.name), ?) > 0 OR strpos(lower(w.url), ?) > 0 OR strpos(lower(w.id), ?) > 0 OR strpos(lower(coalesce(w.description, '')), ?) > 0)",
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
    q,
    { select: WEBHOOK_SELECT, where, params, column, idColumn: "w.id", descending, map: toWebhook },
    page,
  );
}

const COLUMNS: Record<Exclude<keyof WebhookChanges, "resetHealthAt">, [string, (v: never) => unknown]> = {
  name: ["name", (v: string) => v],
  description: ["description", (v: string | null) => v],
  url: ["url", (v: string) => v],
  events: ["events", (v: string[]) => JSON.stringify(v)],
  accountIds: ["account_ids", (v: string[] | null) => (v === null ? null : JSON.stringify(v))],
  enabled: ["enabled", (v: boolean) => v],
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

export async function updateWebhook(
  q: Query,
  id: string,
  tenantId: string | undefined,
  changes: WebhookChanges,
  now: number,
): Promise<boolean> {
  const sets = ["updated_at = ?"];
  const params: unknown[] = [now];
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
  params.push(id);
  let where = "id = ?";
  if (tenantId !== undefined) {
    where += " AND tenant_id = ?";
    params.push(tenantId);
  }
  const rows = await q(
    numbered(`UPDATE webhooks SET ${sets.join(", ")} WHERE ${where} RETURNING id`),
    params,
  );
  return rows.length > 0;
}

export async function deleteWebhook(q: Query, id: string, tenantId: string | undefined): Promise<boolean> {
  const rows =
    tenantId === undefined
      ? await q("DELETE FROM webhooks WHERE id = $1 RETURNING id", [id])
      : await q("DELETE FROM webhooks WHERE id = $1 AND tenant_id = $2 RETURNING id", [id, tenantId]);
  return rows.length > 0;
}

/** Locks the subscription's row for the rest of the transaction (rotation, requeue). */
export async function lockWebhook(q: Query, id: string, tenantId?: string): Promise<boolean> {
  const rows =
    tenantId === undefined
      ? await q("SELECT id FROM webhooks WHERE id = $1 FOR UPDATE", [id])
      : await q("SELECT id FROM webhooks WHERE id = $1 AND tenant_id = $2 FOR UPDATE", [id, tenantId]);
  return rows.length > 0;
}

export async function replaceSecret(q: Query, id: string, secret: string, now: number): Promise<void> {
  await q("UPDATE webhooks SET secret = $1, updated_at = $2 WHERE id = $3", [secret, now, id]);
}

export async function insertPreviousSecret(
  q: Query,
  id: string,
  secret: string,
  expiresAt: number,
): Promise<void> {
  await q("INSERT INTO webhook_previous_secrets (webhook_id, secret, expires_at) VALUES ($1, $2, $3)", [
    id,
    secret,
    expiresAt,
  ]);
}

/** Earlier secrets end no later than the new grace period: a rotation never extends an old one. */
export async function capPreviousSecrets(q: Query, id: string, until: number): Promise<void> {
  await q("UPDATE webhook_previous_secrets SET expires_at = least(expires_at, $1) WHERE webhook_id = $2", [
    until,
    id,
  ]);
}

export async function deleteExpiredSecrets(q: Query, id: string, now: number): Promise<void> {
  await q("DELETE FROM webhook_previous_secrets WHERE webhook_id = $1 AND expires_at <= $2", [id, now]);
}
