// The statistics aggregates (domain/stats.ts) on SQLite: one upsert per ingest or settle batch,
// the per-request rollup, the queue and webhook counts of GET /v1/stats, and their retention.
import type { Database, SQLQueryBindings } from "bun:sqlite";
import { STAT_SPANS, type StatCounts } from "../../domain/stats.ts";
import {
  ATTEMPT_COLUMNS,
  attemptValues,
  COUNT_COLUMNS,
  DURATION_COLUMNS,
  type StatWrite,
} from "../stat-deltas.ts";
import type { StatsQuery, StatsRead } from "../store.ts";
import { perRows, runInChunks, valuesList } from "./statements.ts";

const KEY = "(span, webhook_id, start, tenant_id, mode, shard)";
/** Rows a statement writes at most (a larger batch takes more than one). */
const ROWS_PER_STATEMENT = 200;

const eventsSql = perRows(
  (rows) =>
    `INSERT INTO webhook_stats (span, webhook_id, start, tenant_id, shard, mode, events)
   VALUES ${valuesList(rows, "(?, ?, ?, ?, 0, ?, ?)")}
   ON CONFLICT ${KEY} DO UPDATE SET events = events + excluded.events`,
);

// A settle's rows take their webhook's tenant; a webhook deleted meanwhile drops its row.
const attemptsSql = perRows(
  (rows) =>
    `INSERT INTO webhook_stats (span, webhook_id, start, tenant_id, shard, mode, ${ATTEMPT_COLUMNS.join(", ")})
   SELECT v.column1, v.column2, v.column3, w.tenant_id, 0, w.mode,
     ${ATTEMPT_COLUMNS.map((_, i) => `v.column${i + 4}`).join(", ")}
   FROM (VALUES ${valuesList(rows, `(${new Array(3 + ATTEMPT_COLUMNS.length).fill("?").join(", ")})`)}) v
   JOIN webhooks w ON w.id = v.column2 WHERE true
   ON CONFLICT ${KEY} DO UPDATE SET ${ATTEMPT_COLUMNS.map((c) => `${c} = ${c} + excluded.${c}`).join(", ")}`,
);

/**
 * Adds one ingest's or settle's deltas: one statement (bound values, no JSON to parse) for up to
 * ROWS_PER_STATEMENT rows, which is every ordinary batch.
 */
export function addStats(db: Database, write: StatWrite): void {
  if (write.kind === "events")
    runInChunks(db, write.deltas, ROWS_PER_STATEMENT, eventsSql, (d) => [
      d.span,
      d.webhookId,
      d.start,
      d.tenantId,
      d.mode,
      d.events,
    ]);
  else
    runInChunks(db, write.deltas, ROWS_PER_STATEMENT, attemptsSql, (d) => [
      d.span,
      d.webhookId,
      d.start,
      ...attemptValues(d),
    ]);
}

const SUMS = COUNT_COLUMNS.filter((c) => c !== "events")
  .map((c) => `sum(${c}) AS ${c}`)
  .join(", ");

export function readStats(db: Database, query: StatsQuery): StatsRead {
  const where = ["span = ?", "start >= ?", "start < ?"];
  const params: SQLQueryBindings[] = [query.webhookId ?? "", query.span, query.since, query.until];
  if (query.tenantId !== undefined) {
    where.push("tenant_id = ?");
    params.push(query.tenantId);
  }
  if (query.webhookId !== undefined) {
    where.push("webhook_id = ?");
    params.push(query.webhookId);
  }
  if (query.mode !== undefined) {
    where.push("mode = ?");
    params.push(query.mode);
  }
  // Events: the tenant's own rows ('') count events accepted; a webhook's, those fanned out to it.
  const rows = db
    .query<Record<string, number>, SQLQueryBindings[]>(
      `SELECT start, sum(CASE WHEN webhook_id = ? THEN events ELSE 0 END) AS events, ${SUMS}
       FROM webhook_stats WHERE ${where.join(" AND ")} GROUP BY start`,
    )
    .all(...params)
    .map((row) => toCounts(row));
  return { rows, queue: queue(db, query), webhooks: webhookCounts(db, query) };
}

function toCounts(row: Record<string, number>): { start: number } & StatCounts {
  return {
    start: row.start as number,
    events: row.events ?? 0,
    attempts: row.attempts ?? 0,
    succeeded: row.succeeded ?? 0,
    failed: row.failed ?? 0,
    durations: DURATION_COLUMNS.map((c) => row[c] ?? 0),
  };
}

/** Which webhooks a query covers, as a condition on `webhooks w`. */
function webhookScope(query: StatsQuery): { sql: string; params: string[] } {
  const where = ["1"];
  const params: string[] = [];
  if (query.webhookId !== undefined) {
    where.push("w.id = ?");
    params.push(query.webhookId);
  }
  if (query.tenantId !== undefined) {
    where.push("w.tenant_id = ?");
    params.push(query.tenantId);
  }
  if (query.mode !== undefined) {
    where.push("w.mode = ?");
    params.push(query.mode);
  }
  return { sql: where.join(" AND "), params };
}

function queue(db: Database, query: StatsQuery): StatsRead["queue"] {
  const scope = webhookScope(query);
  // The depth from the per-webhook counts the triggers keep (0005_portal_stats.sql); the oldest due
  // time from each webhook's first entry in the due index (webhook_id, next_attempt_at).
  const depth = db
    .query<{ n: number | null }, string[]>(
      `SELECT sum(q.depth) AS n FROM webhook_queue q JOIN webhooks w ON w.id = q.webhook_id WHERE ${scope.sql}`,
    )
    .get(...scope.params)?.n;
  const oldest = db
    .query<{ at: number | null }, string[]>(
      `SELECT min((SELECT min(d.next_attempt_at) FROM deliveries d
         WHERE d.webhook_id = w.id AND d.next_attempt_at IS NOT NULL)) AS at
       FROM webhooks w WHERE w.next_due_at IS NOT NULL AND ${scope.sql}`,
    )
    .get(...scope.params)?.at;
  return { depth: depth ?? 0, oldestDueAt: oldest ?? null };
}

function webhookCounts(db: Database, query: StatsQuery): StatsRead["webhooks"] {
  const scope = webhookScope(query);
  const row = db
    .query<{ enabled: number | null; disabled: number | null; failing: number | null }, string[]>(
      `SELECT sum(w.enabled) AS enabled, sum(1 - w.enabled) AS disabled,
         sum(w.enabled = 1 AND w.consecutive_failures > 0) AS failing
       FROM webhooks w WHERE ${scope.sql}`,
    )
    .get(...scope.params);
  return { enabled: row?.enabled ?? 0, disabled: row?.disabled ?? 0, failing: row?.failing ?? 0 };
}

/**
 * Removes aggregates of spans that ended before `before`: `limit` rows a span at a time, at most
 * SWEEP_ROUNDS times a call (what is left goes at the next run).
 */
export function sweepStats(db: Database, before: number, limit: number): number {
  let removed = 0;
  const remove = db.query<never, [number, number, number, number]>(
    `DELETE FROM webhook_stats WHERE (span, webhook_id, start, tenant_id, shard) IN (
       SELECT span, webhook_id, start, tenant_id, shard FROM webhook_stats WHERE span = ? AND start <= ? - ? LIMIT ?)`,
  );
  for (const span of STAT_SPANS) {
    for (let round = 0; round < SWEEP_ROUNDS; round++) {
      const n = remove.run(span, before, span, limit).changes;
      removed += n;
      if (n < limit) break;
    }
  }
  return removed;
}

const SWEEP_ROUNDS = 20;
