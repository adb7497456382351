// ingest: events per second accepted (202), single POST /v1/events at C = 1, 16, 64 and
// POST /v1/events/batch (500 events, C = 4), under synchronous FULL and NORMAL. One subscription
// matches every event, so each event also writes its delivery row; its origin holds requests, so
// the dispatcher stays idle and the figure is ingest alone. Compared with the fetch POST loop at
// the same concurrency (single) and with raw bun:sqlite batch inserts (batch), each measured right
// before the figure it is compared with.
import { join } from "node:path";
import { describeWaits, type PostgresResult, postgresRows, sampleWaits, startCluster } from "../cluster.ts";
import type { Context, Scenario } from "../context.ts";
import { startHookd } from "../hookd.ts";
import { closedLoop, eventData } from "../load.ts";
import { row } from "../report.ts";
import { batchInsertRate } from "../sqlite-floor.ts";
import { measurePost } from "./ceiling.ts";

const SINGLE_CONCURRENCY = [1, 16, 64] as const;
const BATCH_SIZE = 500;
const BATCH_CONCURRENCY = 4;

export const ingest: Scenario = {
  name: "ingest",
  needs: [],
  capMs: { quick: 45_000, full: 120_000 },
  postgresCapMs: { quick: 45_000, full: 90_000 },
  async run(ctx) {
    const durationMs = ctx.quick ? 1500 : 5000;
    const warmupMs = ctx.quick ? 300 : 1000;
    const details: Record<string, unknown> = {};
    const [port] = await ctx.receiver.addOrigins(1, { kind: "hold" });
    const [fast] = await ctx.receiver.addOrigins(1, { kind: "fast" });
    for (const sync of ctx.drivers.includes("sqlite") ? (["full", "normal"] as const) : []) {
      const hookd = await startHookd({ dir: ctx.newDir(`ingest-${sync}`), synchronous: sync });
      try {
        await hookd.api.createWebhook({ url: `http://127.0.0.1:${port}/w/0`, timeout_seconds: 60 });
        for (const c of SINGLE_CONCURRENCY) {
          // The ceiling right before the figure: the same fetch client, same C, no storage.
          const ceiling = await measurePost(ctx, fast as number, "fetch", c, ctx.quick ? 750 : 2000, 250);
          const result = await closedLoop({
            concurrency: c,
            durationMs: ctx.within(durationMs),
            warmupMs,
            maxOps: 2_000_000,
            send: (seq) => hookd.api.publish("bench.event", eventData(seq)),
          });
          details[`single.${sync}.c${c}`] = result;
          ctx.shared.set(`ingest.sqlite.${sync}.c${c}`, result.unitsPerSecond);
          ctx.rows.push(
            row({
              scenario: "ingest",
              figure: `single POST, C=${c}, ${sync.toUpperCase()}`,
              value: result.unitsPerSecond,
              unit: "ev/s",
              ceiling: ceiling.rate,
              ceilingOf: `fetch POST loop at C=${c} to the receiver (no storage), measured just before`,
              target: c === 64 && sync === "full" ? { on: "value", op: ">=", bound: 10_000 } : null,
              ...(result.failed > 0 ? { note: `${result.failed} requests not accepted` } : {}),
            }),
          );
        }
        const floor = batchInsertRate(
          join(ctx.newDir(`ingest-floor-${sync}`), "f.db"),
          sync,
          ctx.quick ? 750 : 2000,
        );
        const batch = await closedLoop({
          concurrency: BATCH_CONCURRENCY,
          durationMs: ctx.within(durationMs),
          warmupMs,
          maxOps: 100_000,
          send: (seq) =>
            hookd.api.publishBatch(
              Array.from({ length: BATCH_SIZE }, (_, i) => ({
                type: "bench.event",
                data: eventData(seq * BATCH_SIZE + i),
              })),
            ),
        });
        details[`batch.${sync}`] = batch;
        ctx.shared.set(`ingest.sqlite.${sync}.batch`, batch.unitsPerSecond);
        ctx.rows.push(
          row({
            scenario: "ingest",
            figure: `batch of ${BATCH_SIZE}, C=${BATCH_CONCURRENCY}, ${sync.toUpperCase()}`,
            value: batch.unitsPerSecond,
            unit: "ev/s",
            ceiling: floor,
            ceilingOf: "raw bun:sqlite batch insert into hookd's schema, measured just before",
            target: { on: "value", op: ">=", bound: 50_000 },
            ...(batch.failed > 0 ? { note: `${batch.failed} batches not accepted` } : {}),
          }),
        );
        details[`rss.${sync}`] = hookd.memory();
      } finally {
        await hookd.stop();
      }
    }
    if (ctx.drivers.includes("postgres")) details.postgres = await postgresIngest(ctx, port as number);
    // hookd is gone: let the held requests go.
    await ctx.receiver.setBehaviour([port as number], { kind: "fast" });
    ctx.details.ingest = details;
  },
};

/**
 * PostgreSQL (synchronous_commit on, the server default): single POSTs at C=64 and batches of 500
 * at C=4, with one instance and with N over one fresh database, the load spread round-robin; what
 * hookd's sessions wait on is sampled from pg_stat_activity meanwhile.
 */
async function postgresIngest(ctx: Context, holdPort: number): Promise<Record<string, unknown>> {
  const durationMs = ctx.quick ? 1500 : 5000;
  const warmupOne = ctx.quick ? 300 : 1000;
  const details: Record<string, unknown> = {};
  const single: PostgresResult[] = [];
  const batched: PostgresResult[] = [];
  for (const n of ctx.pgInstances) {
    const cluster = await startCluster(ctx, "postgres", n, `ingest_x${n}`);
    // Each instance about as warm as one alone: three sharing one instance's warm-up spent a
    // quarter of their CPU in the JIT's compiling during the measurement.
    const warmupMs = warmupOne * n;
    try {
      await cluster.api.createWebhook({ url: `http://127.0.0.1:${holdPort}/w/0`, timeout_seconds: 60 });
      const waits = sampleWaits(cluster.database);
      const result = await closedLoop({
        concurrency: 64,
        durationMs: ctx.within(durationMs),
        warmupMs,
        maxOps: 2_000_000,
        send: (seq) => cluster.publish("bench.event", eventData(seq)),
      });
      const singleWaits = await waits.stop();
      const batchWaits = sampleWaits(cluster.database);
      const batch = await closedLoop({
        concurrency: BATCH_CONCURRENCY,
        durationMs: ctx.within(durationMs),
        warmupMs,
        maxOps: 100_000,
        send: (seq) =>
          cluster.publishBatch(
            Array.from({ length: BATCH_SIZE }, (_, i) => ({
              type: "bench.event",
              data: eventData(seq * BATCH_SIZE + i),
            })),
          ),
      });
      const batchWaited = await batchWaits.stop();
      ctx.log(
        `PostgreSQL ×${n}: C=64 ${Math.round(result.unitsPerSecond)} ev/s (waits: ${describeWaits(singleWaits)}); ` +
          `batch ${Math.round(batch.unitsPerSecond)} ev/s (waits: ${describeWaits(batchWaited)})`,
      );
      single.push({
        instances: n,
        value: result.unitsPerSecond,
        ...(result.failed > 0 ? { note: `${result.failed} requests not accepted` } : {}),
      });
      batched.push({
        instances: n,
        value: batch.unitsPerSecond,
        ...(batch.failed > 0 ? { note: `${batch.failed} batches not accepted` } : {}),
      });
      details[`x${n}`] = { single: result, single_waits: singleWaits, batch, batch_waits: batchWaited };
    } finally {
      await cluster.stop();
    }
  }
  postgresRows(ctx, {
    scenario: "ingest",
    figure: "single POST, C=64, synchronous_commit=on",
    unit: "ev/s",
    results: single,
    sqlite: ctx.shared.get("ingest.sqlite.full.c64"),
    sqliteOf: "SQLite, single POST at C=64, FULL, in this run",
    vsSqlite: { on: "ratio", op: ">=", bound: 0.5 },
    scaling: true,
  });
  postgresRows(ctx, {
    scenario: "ingest",
    figure: `batch of ${BATCH_SIZE}, C=${BATCH_CONCURRENCY}, synchronous_commit=on`,
    unit: "ev/s",
    results: batched,
    sqlite: ctx.shared.get("ingest.sqlite.full.batch"),
    sqliteOf: "SQLite, batch of 500 at C=4, FULL, in this run",
    vsSqlite: { on: "ratio", op: ">=", bound: 0.5 },
    scaling: true,
  });
  return details;
}
