// The statistics aggregates (domain/stats.ts) on PostgreSQL: one upsert per ingest or settle
// transaction, the per-request rollup, the queue and webhook counts of GET /v1/stats, retention.
//
// Contention: a writer adds to the rows of its own shard, which changes from one transaction to the
// next (SHARDS of them, starting at random per instance), so instances and concurrent transactions
// of one instance seldom wait on the same row; a read sums the shards. Rows are written in the
// table's key order and as the last statement of their transaction (after the subscription rows),
// so two writers never lock them in opposite orders.
import { STAT_SPANS, type StatCounts, type StatDelta } from "../../domain/stats.ts";
import {
  ATTEMPT_COLUMNS,
  attemptValues,
  COUNT_COLUMNS,
  DURATION_COLUMNS,
  type StatWrite,
} from "../stat-deltas.ts";
import type { StatsQuery, StatsRead } from "../store.ts";
import type { Query } from "./client.ts";
import { num, numbered, numOrNull } from "./keyset.ts";
import type { DbTime } from "./time.ts";

const SHARDS = 16;

const KEY = "(span, webhook_id, start, tenant_id, mode, shard)";

const EVENTS_SQL = `INSERT INTO webhook_stats (span, webhook_id, start, tenant_id, shard, mode, events)
  SELECT u.span, u.webhook_id, u.start, u.tenant_id, $6, u.mode, u.events
  FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $7::text[]) WITH ORDINALITY
    AS u(span, webhook_id, start, tenant_id, events, mode, n)
  ORDER BY u.n
  ON CONFLICT ${KEY} DO UPDATE SET events = webhook_stats.events + excluded.events`;

// A settle's rows take their webhook's tenant; a webhook deleted meanwhile drops its row.
const ATTEMPTS_SQL = `INSERT INTO webhook_stats (span, webhook_id, start, tenant_id, shard, mode, ${ATTEMPT_COLUMNS.join(", ")})
  SELECT (t.j ->> 0)::bigint, t.j ->> 1, (t.j ->> 2)::bigint, w.tenant_id, $2, w.mode,
    ${ATTEMPT_COLUMNS.map((_, i) => `(t.j ->> ${i + 3})::bigint`).join(", ")}
  FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS t(j, n) JOIN webhooks w ON w.id = t.j ->> 1
  ORDER BY t.n
  ON CONFLICT ${KEY} DO UPDATE SET
    ${ATTEMPT_COLUMNS.map((c) => `${c} = webhook_stats.${c} + excluded.${c}`).join(", ")}`;

/** Picks the shard of each write: a rotation from a random start. */
export function createShards(): () => number {
  let next = (crypto.getRandomValues(new Uint32Array(1))[0] ?? 0) % SHARDS;
  return () => {
    next = (next + 1) % SHARDS;
    return next;
  };
}

/** An ingest's deltas as columns: span, webhook, start, tenant, events, mode (EVENTS_SQL, hookd_ingest()). */
export function eventStatColumns(write: { deltas: readonly StatDelta[] }): unknown[][] {
  const { deltas } = write;
  return [
    deltas.map((d) => d.span),
    deltas.map((d) => d.webhookId),
    deltas.map((d) => d.start),
    deltas.map((d) => d.tenantId),
    deltas.map((d) => d.events),
    deltas.map((d) => d.mode),
  ];
}

/** Adds one ingest's or settle's deltas, in one statement, to the rows of `shard`. */
export async function addStats(q: Query, write: StatWrite, shard: number): Promise<void> {
  const { deltas } = write;
  if (deltas.length === 0) return;
  if (write.kind === "events") {
    const [span, webhookId, start, tenantId, events, mode] = eventStatColumns(write);
    await q(EVENTS_SQL, [span, webhookId, start, tenantId, events, shard, mode]);
    return;
  }
  await q(ATTEMPTS_SQL, [attemptStatsJson(write), shard]);
}

/** A settle's deltas as the JSON ATTEMPTS_SQL and hookd_settle() read: [span, webhook, start, ...counts]. */
export function attemptStatsJson(write: { deltas: readonly StatDelta[] }): string {
  return JSON.stringify(write.deltas.map((d) => [d.span, d.webhookId, d.start, ...attemptValues(d)]));
}

const SUMS = COUNT_COLUMNS.filter((c) => c !== "events")
  .map((c) => `sum(${c})::bigint AS ${c}`)
  .join(", ");

export async function readStats(q: Query, time: DbTime, query: StatsQuery): Promise<StatsRead> {
  const where = ["span = ?", "start >= ?", "start < ?"];
  const params: unknown[] = [query.webhookId ?? "", query.span, query.since, query.until];
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
  const raw = await q<Record<string, unknown>>(
    numbered(
      `SELECT start, sum(CASE WHEN webhook_id = ? THEN events ELSE 0 END)::bigint AS events, ${SUMS}
       FROM webhook_stats WHERE ${where.join(" AND ")} GROUP BY start`,
    ),
    params,
  );
  return {
    rows: raw.map(toCounts),
    queue: await queue(q, time, query),
    webhooks: await webhookCounts(q, query),
  };
}

function toCounts(row: Record<string, unknown>): { start: number } & StatCounts {
  return {
    start: num(row.start),
    events: num(row.events ?? 0),
    attempts: num(row.attempts ?? 0),
    succeeded: num(row.succeeded ?? 0),
    failed: num(row.failed ?? 0),
    durations: DURATION_COLUMNS.map((c) => num(row[c] ?? 0)),
  };
}

function webhookScope(query: StatsQuery): { sql: string; params: string[] } {
  const where = ["true"];
  const params: string[] = [];
  if (query.webhookId !== undefined) {
    params.push(query.webhookId);
    where.push(`w.id = $${params.length}`);
  }
  if (query.tenantId !== undefined) {
    params.push(query.tenantId);
    where.push(`w.tenant_id = $${params.length}`);
  }
  if (query.mode !== undefined) {
    params.push(query.mode);
    where.push(`w.mode = $${params.length}`);
  }
  return { sql: where.join(" AND "), params };
}

async function queue(q: Query, time: DbTime, query: StatsQuery): Promise<StatsRead["queue"]> {
  const scope = webhookScope(query);
  // The depth: the folded counts and the deltas not folded yet, in one snapshot (0004_portal_stats.sql).
  const [depth] = await q<{ n: string | number | null }>(
    `SELECT (SELECT coalesce(sum(c.depth), 0) FROM webhook_queue c JOIN webhooks w ON w.id = c.webhook_id
               WHERE ${scope.sql})
          + (SELECT coalesce(sum(c.delta), 0) FROM queue_deltas c JOIN webhooks w ON w.id = c.webhook_id
               WHERE ${scope.sql}) AS n`,
    scope.params,
  );
  // The oldest due time of a delivery not in flight: each webhook's due index (webhook_id,
  // next_attempt_at) walked from its start past the leased ones (claims take the earliest first).
  const [oldest] = await q<{ at: string | number | null }>(
    `SELECT min((SELECT d.next_attempt_at FROM deliveries d
         WHERE d.webhook_id = w.id AND d.status IN ('pending', 'retrying') AND d.lease_owner IS NULL
         ORDER BY d.next_attempt_at LIMIT 1)) AS at
     FROM webhooks w WHERE w.next_due_at IS NOT NULL AND ${scope.sql}`,
    scope.params,
  );
  return { depth: num(depth?.n ?? 0), oldestDueAt: time.fromDbOrNull(numOrNull(oldest?.at ?? null)) };
}

/** Folds the queue deltas into the per-webhook depths (maintenance: one instance at a time). */
export async function foldQueueDeltas(q: Query): Promise<number> {
  const [row] = await q<{ n: number }>(
    `WITH moved AS (DELETE FROM queue_deltas RETURNING webhook_id, tenant_id, delta),
     folded AS (
       INSERT INTO webhook_queue (webhook_id, tenant_id, depth)
         SELECT webhook_id, min(tenant_id), sum(delta) FROM moved GROUP BY webhook_id ORDER BY webhook_id
       ON CONFLICT (webhook_id) DO UPDATE SET depth = webhook_queue.depth + excluded.depth RETURNING 1)
     SELECT (SELECT count(*) FROM moved)::int AS n`,
  );
  return row?.n ?? 0;
}

async function webhookCounts(q: Query, query: StatsQuery): Promise<StatsRead["webhooks"]> {
  const scope = webhookScope(query);
  const [row] = await q<{ enabled: number; disabled: number; failing: number }>(
    `SELECT count(*) FILTER (WHERE w.enabled)::int AS enabled, count(*) FILTER (WHERE NOT w.enabled)::int AS disabled,
       count(*) FILTER (WHERE w.enabled AND w.consecutive_failures > 0)::int AS failing
     FROM webhooks w WHERE ${scope.sql}`,
    scope.params,
  );
  return { enabled: row?.enabled ?? 0, disabled: row?.disabled ?? 0, failing: row?.failing ?? 0 };
}

/**
 * Removes aggregates of spans that ended before `before`: `limit` rows a span at a time, at most
 * SWEEP_ROUNDS times a call (what is left goes at the next run).
 */
export async function sweepStats(q: Query, before: number, limit: number): Promise<number> {
  let removed = 0;
  for (const span of STAT_SPANS) {
    for (let round = 0; round < SWEEP_ROUNDS; round++) {
      const [row] = await q<{ n: number }>(
        `WITH gone AS (DELETE FROM webhook_stats WHERE (span, webhook_id, start, tenant_id, shard) IN (
           SELECT span, webhook_id, start, tenant_id, shard FROM webhook_stats WHERE span = $1 AND start <= $2 - $1 LIMIT $3)
           RETURNING 1)
         SELECT count(*)::int AS n FROM gone`,
        [span, before, limit],
      );
      const n = row?.n ?? 0;
      removed += n;
      if (n < limit) break;
    }
  }
  return removed;
}

const SWEEP_ROUNDS = 20;
