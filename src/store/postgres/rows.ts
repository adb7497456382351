// Whole rows in and out in the drivers' shared format (store.ts StoredRow), for `storage copy` and
// the contract tests: SQLite's columns, epoch ms numbers, JSON text, booleans as 0/1. A leased
// delivery's next_attempt_at is its lease end; due times are turned between database time and the
// caller's. The columns only several instances need (in_flight, lease_check_at) are not shared: they
// are recounted after an import.
import { COUNT_COLUMNS } from "../stat-deltas.ts";
import type { StoredRow, TableName } from "../store.ts";
import type { PgClient, Query } from "./client.ts";
import { num } from "./keyset.ts";
import type { DbTime } from "./time.ts";

interface TableSpec {
  keys: string[];
  columns: string[];
  numbers: string[];
  booleans?: string[];
}

const TABLES: Record<TableName, TableSpec> = {
  settings: { keys: ["key"], columns: ["key", "value"], numbers: [] },
  webhooks: {
    keys: ["id"],
    columns: [
      "id",
      "tenant_id",
      "name",
      "description",
      "url",
      "events",
      "account_ids",
      "enabled",
      "disabled_reason",
      "timeout_seconds",
      "headers",
      "metadata",
      "max_in_flight",
      "secret",
      "consecutive_failures",
      "health_since",
      "created_at",
      "updated_at",
      "next_due_at",
      "mode",
      "filter",
      "ordering",
      "rate_limit",
      "signature_scheme",
      "rate_log",
    ],
    numbers: [
      "timeout_seconds",
      "max_in_flight",
      "rate_limit",
      "consecutive_failures",
      "health_since",
      "created_at",
      "updated_at",
      "next_due_at",
    ],
    booleans: ["enabled"],
  },
  webhook_previous_secrets: {
    keys: ["webhook_id", "expires_at", "secret"],
    columns: ["webhook_id", "secret", "expires_at"],
    numbers: ["expires_at"],
  },
  events: {
    keys: ["id"],
    columns: ["id", "tenant_id", "type", "account_id", "payload", "deliveries_count", "created_at", "mode"],
    numbers: ["deliveries_count", "created_at"],
  },
  deliveries: {
    keys: ["id"],
    columns: [
      "id",
      "tenant_id",
      "event_id",
      "webhook_id",
      "event_type",
      "status",
      "attempts",
      "series_attempts",
      "response_status_code",
      "last_attempt_at",
      "next_attempt_at",
      "lease_owner",
      "signature",
      "created_at",
      "updated_at",
      "mode",
    ],
    numbers: [
      "attempts",
      "series_attempts",
      "response_status_code",
      "last_attempt_at",
      "next_attempt_at",
      "created_at",
      "updated_at",
    ],
  },
  attempts: {
    keys: ["id"],
    columns: [
      "id",
      "delivery_id",
      "started_at",
      "duration_ms",
      "response_status_code",
      "response_headers",
      "response_body",
      "error",
    ],
    numbers: ["started_at", "duration_ms", "response_status_code"],
  },
  idempotency_keys: {
    keys: ["tenant_id", "mode", "key"],
    columns: ["tenant_id", "key", "request_hash", "event_ids", "expires_at", "mode"],
    numbers: ["expires_at"],
  },
  portal_sessions: {
    keys: ["id"],
    columns: ["id", "token_hash", "kind", "tenant_id", "mode", "capabilities", "created_at", "expires_at"],
    numbers: ["created_at", "expires_at"],
  },
  webhook_stats: {
    keys: ["span", "webhook_id", "start", "tenant_id", "shard"],
    columns: ["span", "webhook_id", "start", "shard", "tenant_id", "mode", ...COUNT_COLUMNS],
    numbers: ["span", "start", "shard", ...COUNT_COLUMNS],
  },
};

export async function exportRows(
  q: Query,
  time: DbTime,
  table: TableName,
  after: string | null,
  limit: number,
): Promise<{ rows: StoredRow[]; last: string | null }> {
  const spec = TABLES[table];
  const keyTuple = `(${spec.keys.join(", ")})`;
  const params: unknown[] = after === null ? [] : (JSON.parse(after) as unknown[]);
  const where =
    after === null ? "" : `WHERE ${keyTuple} > (${spec.keys.map((_, i) => `$${i + 1}`).join(", ")})`;
  const select =
    table === "deliveries"
      ? spec.columns
          .map((c) =>
            c === "next_attempt_at"
              ? "CASE WHEN lease_owner IS NOT NULL THEN leased_until ELSE next_attempt_at END AS next_attempt_at"
              : c,
          )
          .join(", ")
      : spec.columns.join(", ");
  const raw = await q<Record<string, unknown>>(
    `SELECT ${select} FROM ${table} ${where} ORDER BY ${spec.keys.join(", ")} LIMIT ${Math.trunc(limit)}`,
    params,
  );
  const rows = raw.map((r) => {
    const row: StoredRow = {};
    for (const column of spec.columns) {
      const value = r[column];
      if (value === null || value === undefined) row[column] = null;
      else if (spec.booleans?.includes(column)) row[column] = value ? 1 : 0;
      else if (spec.numbers.includes(column)) row[column] = num(value);
      else row[column] = String(value);
    }
    if (table === "deliveries" && typeof row.next_attempt_at === "number")
      row.next_attempt_at = time.fromDb(row.next_attempt_at);
    if (table === "webhooks" && typeof row.next_due_at === "number")
      row.next_due_at = time.fromDb(row.next_due_at);
    return row;
  });
  const lastRow = raw.at(-1);
  return { rows, last: lastRow ? JSON.stringify(spec.keys.map((k) => lastRow[k])) : null };
}

export async function importRows(
  client: PgClient,
  time: DbTime,
  table: TableName,
  rows: readonly StoredRow[],
): Promise<void> {
  if (rows.length === 0) return;
  const spec = TABLES[table];
  const columns = [...spec.columns];
  const values = rows.map((row) => {
    const out = columns.map((column) => {
      const value = row[column] ?? null;
      if (value === null) return null;
      if (spec.booleans?.includes(column)) return value === 1 || value === "1";
      if (column === "next_attempt_at" || column === "next_due_at") return time.toDb(Number(value));
      return value;
    });
    return out;
  });
  if (table === "deliveries") {
    // The lease end, when leased, is kept as the lease's end in database time.
    columns.push("leased_until");
    values.forEach((v, i) => {
      v.push(rows[i]?.lease_owner ? (v[columns.indexOf("next_attempt_at")] ?? null) : null);
    });
  }
  const placeholders = values
    .map((v, r) => `(${v.map((_, c) => `$${r * v.length + c + 1}`).join(", ")})`)
    .join(", ");
  await client.tx(async (q) => {
    await q(`INSERT INTO ${table} (${columns.join(", ")}) VALUES ${placeholders}`, values.flat());
    if (table === "deliveries") {
      await q(
        `UPDATE webhooks w SET in_flight = c.n, lease_check_at = least(w.lease_check_at, c.until)
         FROM (SELECT webhook_id, count(*)::int AS n, min(leased_until) AS until FROM deliveries
               WHERE lease_owner IS NOT NULL AND status IN ('pending', 'retrying') GROUP BY webhook_id) c
         WHERE w.id = c.webhook_id`,
      );
    }
    if (table === "webhooks") await q("UPDATE fanout_version SET version = version + 1 WHERE id = 1");
  });
}

export async function hasData(q: Query): Promise<boolean> {
  const [row] = await q<{ found: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM webhooks) OR EXISTS (SELECT 1 FROM events)
       OR EXISTS (SELECT 1 FROM settings WHERE key <> 'heartbeat') AS found`,
  );
  return row?.found === true;
}
