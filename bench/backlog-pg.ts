// The backlog on PostgreSQL: N pending deliveries written in SQL (INSERT … SELECT generate_series,
// secondary indexes dropped first and rebuilt from their own definitions, then VACUUM ANALYZE) into
// a database hookd created, over the subscriptions already in it, one event per delivery, every
// one due now; each subscription's next_due_at set to its earliest due time. Then claim latency:
//  - hookd's store (createPostgresStore from the working tree's src/, unchanged): claimDue of 256
//    and of 1, each a committed transaction as the dispatcher runs it, its leases handed back with
//    releaseLeases (untimed) so every claim sees the same N pending;
//  - the same claimDue of src/store/postgres/dispatch.ts run on a recording connection in a
//    transaction rolled back: which statements a claim of 256 sends and what each costs, and
//    EXPLAIN (ANALYZE, BUFFERS) of each distinct statement with the parameters it was sent with;
//  - the floor: one statement that leases the same rows (8 per subscription, 32 subscriptions)
//    and returns their payloads, rolled back.
import { SQL } from "bun";
import { systemClock } from "../src/runtime/clock.ts";
import { createIdGenerator } from "../src/runtime/ids.ts";
import { cryptoRandom } from "../src/runtime/random.ts";
import * as dispatch from "../src/store/postgres/dispatch.ts";
import { createPostgresStore } from "../src/store/postgres/index.ts";
import type { DbTime } from "../src/store/postgres/time.ts";
import { percentiles } from "./stats.ts";

export interface PgBacklogWrite {
  webhooks: number;
  seconds: number;
  /** Mean bytes of the event payload. */
  payloadBytes: number;
  /** pg_total_relation_size of events + deliveries (heap, TOAST, indexes). */
  tableBytes: number;
}

/** Writes `count` pending deliveries into the hookd database at `url` (its subscriptions exist). */
export async function writePgBacklog(url: string, count: number, deadline: number): Promise<PgBacklogWrite> {
  const started = performance.now();
  const sql = new SQL({ url, max: 1, idleTimeout: 5 });
  const run = async (text: string, params: unknown[] = []) => {
    if (performance.now() > deadline) throw new Error("time cap reached while writing the backlog");
    return (await (params.length ? sql.unsafe(text, params) : sql.unsafe(text))) as Record<string, unknown>[];
  };
  try {
    await run("SET synchronous_commit = off");
    await run("SET maintenance_work_mem = '256MB'");
    await run("SET statement_timeout = 0");
    const [w] = await run("SELECT count(*)::int AS n FROM webhooks");
    const webhooks = Number(w?.n ?? 0);
    if (webhooks === 0) throw new Error("the database has no subscriptions");
    const indexes = (await run(
      `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()
         AND tablename IN ('events', 'deliveries') AND indexname NOT LIKE '%\\_pkey'`,
    )) as { indexname: string; indexdef: string }[];
    for (const { indexname } of indexes) await run(`DROP INDEX "${indexname}"`);
    const chunk = 250_000;
    for (let from = 0; from < count; from += chunk) {
      const to = Math.min(count, from + chunk) - 1;
      // Ids are 30 characters, like hookd's ULID ids; times in ms (database clock), one per ms, all past.
      const params = [from, to, count];
      await run(
        `WITH w AS (SELECT min(tenant_id) AS tenant FROM webhooks),
              t AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint - $3::bigint AS base)
         INSERT INTO events (id, tenant_id, type, account_id, payload, deliveries_count, created_at)
         SELECT 'evt_' || lpad(i::text, 26, '0'), w.tenant, 'bench.event', NULL,
           '{"id":"evt_' || lpad(i::text, 26, '0') || '","type":"bench.event","timestamp":"' ||
             to_char(to_timestamp((t.base + i) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') ||
             '","data":{"sent_at":' || (t.base + i) || ',"seq":' || i || ',"order_id":"ord_' ||
             lpad(to_hex(i), 8, '0') || '","amount":' || (1999 + i % 1000) || ',"currency":"eur"}}',
           1, t.base + i
         FROM generate_series($1::int, $2::int) AS i, w, t`,
        params,
      );
      await run(
        `WITH w AS (SELECT array_agg(id ORDER BY id) AS ids, min(tenant_id) AS tenant FROM webhooks),
              t AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint - $3::bigint AS base)
         INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, event_type, status, next_attempt_at, created_at, updated_at)
         SELECT 'dlv_' || lpad(i::text, 26, '0'), w.tenant, 'evt_' || lpad(i::text, 26, '0'),
           w.ids[i % cardinality(w.ids) + 1], 'bench.event', 'pending', t.base + i, t.base + i, t.base + i
         FROM generate_series($1::int, $2::int) AS i, w, t`,
        params,
      );
    }
    for (const { indexdef } of indexes) await run(indexdef);
    await run(
      `UPDATE webhooks SET next_due_at = (SELECT min(next_attempt_at) FROM deliveries d
         WHERE d.webhook_id = webhooks.id AND d.status IN ('pending', 'retrying')), in_flight = 0`,
    );
    await run("VACUUM (ANALYZE) events");
    await run("VACUUM (ANALYZE) deliveries");
    await run("VACUUM (ANALYZE) webhooks");
    // Flush now, so no checkpoint of the bulk write runs under the claims or the next scenario.
    await run("CHECKPOINT").catch(() => {}); // needs superuser or pg_checkpoint: best effort
    const [sizes] = await run(
      `SELECT (pg_total_relation_size('events') + pg_total_relation_size('deliveries'))::float8 AS bytes,
         (SELECT avg(length(payload)) FROM (SELECT payload FROM events LIMIT 10000) s)::float8 AS payload`,
    );
    return {
      webhooks,
      seconds: (performance.now() - started) / 1000,
      payloadBytes: Number(sizes?.payload ?? Number.NaN),
      tableBytes: Number(sizes?.bytes ?? Number.NaN),
    };
  } finally {
    await sql.close({ timeout: 1 }).catch(() => {});
  }
}

type Percentiles = ReturnType<typeof percentiles>;

export interface StatementCost {
  /** The statement, whitespace collapsed, cut at 120 characters. */
  statement: string;
  calls: number;
  /** Round-trip time of all its calls in one claim of 256 (median claim), ms. */
  ms: number;
}

export interface PgClaimFigures {
  full: Percentiles;
  one: Percentiles;
  /** Deliveries a full claim returned (median claim). */
  fullRows: number;
  floor: Percentiles;
  floorOne: Percentiles;
  /** claimDue of dispatch.ts in a rolled-back transaction (no BEGIN/COMMIT round trips, no commit flush). */
  rolledBack: Percentiles;
  /** Per statement of one claim of 256, from the rolled-back runs (the median-time claim). */
  statements: StatementCost[];
  /** EXPLAIN (ANALYZE, BUFFERS) of each distinct statement of a claim of 256, then of the floor's. */
  explain: { statement: string; plan: string }[];
  /** One parameterized `SELECT $1::int` on the same kind of connection (Bun SQL), median ms. */
  roundTripMs: number;
}

const squash = (text: string) => text.replace(/\s+/g, " ").trim();

/** Claim latency against the backlog database at `url` (see the file's head). */
export async function measurePgClaims(url: string, budgetMs: number): Promise<PgClaimFigures> {
  const store = await createPostgresStore({
    url,
    poolSize: 2,
    statementTimeoutMs: 30_000,
    ids: createIdGenerator(systemClock, cryptoRandom),
    clock: systemClock,
  });
  // The session settings hookd's client sets that change plans or timing (jit off: client.ts).
  const sql = new SQL({ url, max: 1, idleTimeout: 5, connection: { jit: "off" } });
  try {
    const time: DbTime = store.time;
    let serial = 0;
    const storeClaim = async (limit: number) => {
      const samples: number[] = [];
      const rows: number[] = [];
      const end = performance.now() + budgetMs;
      while (performance.now() < end && samples.length < 2000) {
        const now = Date.now();
        const t0 = performance.now();
        const claimed = await store.claimDue({
          now,
          owner: `bench.${++serial}`,
          leaseMs: 60_000,
          limit,
          retryLimit: Math.floor((limit * 3) / 4),
        });
        samples.push(performance.now() - t0);
        rows.push(claimed.length);
        // Hand the leases back (untimed): the rows are due again at once, behind the backlog.
        await store.releaseLeases(
          claimed.map((c) => ({ deliveryId: c.id, leaseOwner: c.leaseOwner })),
          Date.now(),
        );
      }
      return {
        p: percentiles([Float64Array.from(samples)]),
        rows: rows.sort((a, b) => a - b)[rows.length >> 1] ?? 0,
      };
    };
    const full = await storeClaim(256);
    const one = await storeClaim(1);

    // The same claim on a recording connection, rolled back.
    class Rollback extends Error {}
    const recorded = async (limit: number) => {
      const calls: { text: string; params: unknown[]; ms: number }[] = [];
      let total = 0;
      try {
        await sql.begin(async (tx) => {
          const q = (async (text: string, params: unknown[] = []) => {
            const t0 = performance.now();
            const out = params.length ? await tx.unsafe(text, params) : await tx.unsafe(text);
            calls.push({ text, params, ms: performance.now() - t0 });
            return out;
          }) as Parameters<typeof dispatch.claimDue>[0]["query"];
          const t0 = performance.now();
          // Every statement on the one rolled-back transaction (the store commits each round alone).
          await dispatch.claimDue({ query: q, tx: (fn) => fn(q) }, time, {
            now: Date.now(),
            owner: `bench.rb.${++serial}`,
            leaseMs: 60_000,
            limit,
            retryLimit: Math.floor((limit * 3) / 4),
          });
          total = performance.now() - t0;
          throw new Rollback();
        });
      } catch (error) {
        if (!(error instanceof Rollback)) throw error;
      }
      return { total, calls };
    };
    const runs: Awaited<ReturnType<typeof recorded>>[] = [];
    const rbEnd = performance.now() + budgetMs / 2;
    while (performance.now() < rbEnd && runs.length < 500) runs.push(await recorded(256));
    const byTime = [...runs].sort((a, b) => a.total - b.total);
    const median = byTime[byTime.length >> 1];
    const statements = new Map<string, StatementCost>();
    for (const call of median?.calls ?? []) {
      const key = squash(call.text).slice(0, 120);
      const s = statements.get(key) ?? { statement: key, calls: 0, ms: 0 };
      s.calls++;
      s.ms += call.ms;
      statements.set(key, s);
    }

    // EXPLAIN (ANALYZE, BUFFERS) of each distinct statement, with its first parameters, in one
    // rolled-back transaction that replays the claim's statements in order (so later ones see the
    // leases the earlier ones took, as in the claim).
    const explain: { statement: string; plan: string }[] = [];
    const seen = new Set<string>();
    try {
      await sql.begin(async (tx) => {
        for (const call of median?.calls ?? []) {
          const key = squash(call.text);
          if (seen.has(key)) {
            await (call.params.length ? tx.unsafe(call.text, call.params) : tx.unsafe(call.text));
            continue;
          }
          seen.add(key);
          const rows = (await tx.unsafe(`EXPLAIN (ANALYZE, BUFFERS) ${call.text}`, call.params)) as {
            "QUERY PLAN": string;
          }[];
          explain.push({ statement: key.slice(0, 200), plan: rows.map((r) => r["QUERY PLAN"]).join("\n") });
        }
        const dbNow = time.toDb(Date.now());
        const rows = (await tx.unsafe(`EXPLAIN (ANALYZE, BUFFERS) ${MINIMAL_CLAIM}`, [
          dbNow,
          256,
          dbNow + 65_000,
        ])) as {
          "QUERY PLAN": string;
        }[];
        explain.push({
          statement: "floor: one-statement claim of 256",
          plan: rows.map((r) => r["QUERY PLAN"]).join("\n"),
        });
        throw new Rollback();
      });
    } catch (error) {
      if (!(error instanceof Rollback)) throw error;
    }

    const floorClaim = async (limit: number) => {
      const samples: number[] = [];
      const end = performance.now() + budgetMs / 2;
      while (performance.now() < end && samples.length < 2000) {
        try {
          await sql.begin(async (tx) => {
            const dbNow = time.toDb(Date.now());
            const t0 = performance.now();
            await tx.unsafe(MINIMAL_CLAIM, [dbNow, limit, dbNow + 65_000]);
            samples.push(performance.now() - t0);
            throw new Rollback();
          });
        } catch (error) {
          if (!(error instanceof Rollback)) throw error;
        }
      }
      return percentiles([Float64Array.from(samples)]);
    };
    const trips: number[] = [];
    for (let i = 0; i < 1200; i++) {
      const t0 = performance.now();
      await sql.unsafe("SELECT $1::int AS x", [i]);
      if (i >= 200) trips.push(performance.now() - t0);
    }
    return {
      roundTripMs: percentiles([Float64Array.from(trips)]).p50,
      full: full.p,
      one: one.p,
      fullRows: full.rows,
      floor: await floorClaim(256),
      floorOne: await floorClaim(1),
      rolledBack: percentiles([Float64Array.from(runs.map((r) => r.total))]),
      statements: [...statements.values()].sort((a, b) => b.ms - a.ms),
      explain,
    };
  } finally {
    await sql.close({ timeout: 1 }).catch(() => {});
    await store.close();
  }
}

/**
 * The least SQL that leases what a claim of $2 leases (up to 8 due deliveries of each of the 32
 * subscriptions due first, as hookd's cap per subscription) and returns their payloads: one
 * round trip. $1 the database's now, $3 the lease end.
 */
const MINIMAL_CLAIM = `WITH w AS (
    SELECT id FROM webhooks WHERE next_due_at <= $1 ORDER BY next_due_at LIMIT 32 FOR UPDATE SKIP LOCKED),
  picked AS (
    SELECT d.id FROM w CROSS JOIN LATERAL (
      SELECT id FROM deliveries WHERE webhook_id = w.id AND status IN ('pending', 'retrying')
        AND next_attempt_at <= $1 AND lease_owner IS NULL
      ORDER BY next_attempt_at LIMIT 8 FOR UPDATE SKIP LOCKED) d
    LIMIT $2)
  UPDATE deliveries d SET lease_owner = 'floor', leased_until = $3
  FROM picked p WHERE d.id = p.id
  RETURNING d.id, d.status, d.series_attempts, d.event_type,
    (SELECT payload FROM events e WHERE e.id = d.event_id) AS payload`;
