// latency: ingest-to-receipt time at fixed arrival rates (open loop, single POSTs, 200 / 1000 /
// 3000 ev/s, synchronous=FULL). The load generator writes its wall clock into `data.sent_at`; the
// receiver subtracts it on arrival. The floor is the same open loop POSTing the same body straight
// to the receiver (no hookd): what the loopback, the runtimes and the clock cost at that rate.
import { describeWaits, type PostgresResult, postgresRows, sampleWaits, startCluster } from "../cluster.ts";
import type { Context, Scenario } from "../context.ts";
import { waitForUnique } from "../drain.ts";
import { startHookd } from "../hookd.ts";
import { deliveryLike, eventData, fetchPoster, type OpenLoopResult, openLoop, type Send } from "../load.ts";
import type { ReceiverStats } from "../receiver.ts";
import { row } from "../report.ts";

export const RATES = [200, 1000, 3000] as const;

export const latency: Scenario = {
  name: "latency",
  needs: [],
  capMs: { quick: 45_000, full: 120_000 },
  postgresCapMs: { quick: 60_000, full: 120_000 },
  async run(ctx) {
    if (ctx.drivers.includes("sqlite")) await sqliteLatency(ctx);
    if (ctx.drivers.includes("postgres")) await postgresLatency(ctx);
  },
};

async function sqliteLatency(ctx: Context): Promise<void> {
  {
    const durationMs = ctx.quick ? 2500 : 10_000;
    const floorMs = ctx.quick ? 1000 : 4000;
    const [hookdPort, floorPort] = (await ctx.receiver.addOrigins(2, { kind: "fast" })) as [number, number];
    const floorPost = fetchPoster(`http://127.0.0.1:${floorPort}`);
    const hookd = await startHookd({ dir: ctx.newDir("latency"), synchronous: "full" });
    const details: Record<string, unknown> = {};
    try {
      await hookd.api.createWebhook({ url: `http://127.0.0.1:${hookdPort}/w/0`, max_in_flight: 64 });
      const publish: Send = (seq) => hookd.api.publish("bench.event", eventData(seq));
      // Warm-up: connections, JIT, the subscription cache.
      await openLoop({ rate: 500, durationMs: 500, maxInFlight: 256, send: publish });
      for (const rate of RATES) {
        const floor = await measure(ctx, floorPort, rate, floorMs, async (seq) => {
          const { body, headers } = deliveryLike(seq, `${ctx.runId}lat${rate}`);
          return (await floorPost("/w/0", body, headers)) < 300 ? 1 : 0;
        });
        const cpu0 = hookd.cpuSeconds();
        const t0 = performance.now();
        const through = await measure(ctx, hookdPort, rate, durationMs, publish);
        const cpuPercent = (100 * (hookd.cpuSeconds() - cpu0)) / ((performance.now() - t0) / 1000);
        ctx.log(
          `${rate} ev/s: p99 ${through.stats.latency.p99.toFixed(1)} ms, hookd at ${Math.round(cpuPercent)}% CPU`,
        );
        details[`r${rate}`] = { floor, hookd: through, cpu_percent: cpuPercent };
        for (const p of ["p50", "p95", "p99"] as const) {
          ctx.rows.push(
            row({
              scenario: "latency",
              figure: `ingest→receipt ${p} at ${rate} ev/s`,
              value: through.stats.latency[p],
              unit: "ms",
              ceiling: floor.stats.latency[p],
              ceilingOf: "the same open loop POSTing straight to the receiver",
              target: p === "p99" && rate === 1000 ? { on: "value", op: "<=", bound: 25 } : null,
              ...(through.load.dropped > 0 || through.missing > 0
                ? { note: `${through.load.dropped} arrivals dropped, ${through.missing} not received` }
                : {}),
            }),
          );
        }
        for (const p of ["p50", "p95", "p99"] as const)
          ctx.shared.set(`latency.sqlite.${p}.${rate}`, through.stats.latency[p]);
        if (rate === 1000) ctx.shared.set("latency.p99.1000", through.stats.latency.p99);
      }
      details.memory = hookd.memory();
    } finally {
      await hookd.stop();
    }
    ctx.details.latency = details;
  }
}

/**
 * ingest→receipt at 1000 ev/s on PostgreSQL, one instance and N over one database (the POSTs
 * spread round-robin; any instance may deliver: every one is woken by the work notification).
 */
async function postgresLatency(ctx: Context): Promise<void> {
  // 1000 ev/s is the target's rate; 200 ev/s shows the latency where ingest keeps up with ease.
  const rates = [200, 1000] as const;
  const durationMs = ctx.quick ? 2500 : 10_000;
  type ByRate = Record<"p50" | "p95" | "p99", PostgresResult[]>;
  const results = new Map<number, ByRate>(rates.map((r) => [r, { p50: [], p95: [], p99: [] }]));
  const details: Record<string, unknown> = {};
  for (const n of ctx.pgInstances) {
    const [port] = (await ctx.receiver.addOrigins(1, { kind: "fast" })) as [number];
    const cluster = await startCluster(ctx, "postgres", n, `latency_x${n}`);
    try {
      await cluster.api.createWebhook({ url: `http://127.0.0.1:${port}/w/0`, max_in_flight: 64 });
      const publish: Send = (seq) => cluster.publish("bench.event", eventData(seq));
      // Warm-up: each instance about as warm as one alone (connections, JIT, the subscription
      // cache: three instances sharing one instance's warm-up measured the JIT's compiling), and
      // all of it delivered before the measurement starts.
      await ctx.receiver.reset([port]);
      const warm = await openLoop({ rate: 300 * n, durationMs: 1000, maxInFlight: 256, send: publish });
      await waitForUnique(ctx, [port], warm.ok);
      for (const rate of rates) {
        const cpu0 = cluster.cpuSeconds();
        const t0 = performance.now();
        const waits = sampleWaits(cluster.database);
        const through = await measure(ctx, port, rate, durationMs, publish);
        const waited = await waits.stop();
        const seconds = (performance.now() - t0) / 1000;
        const cpuPercent = (100 * (cluster.cpuSeconds() - cpu0)) / seconds;
        // Accepted per second over the whole open loop, its tail included: below the arrival rate
        // when ingest cannot keep up (then the latency is mostly the POSTs' own queueing).
        const acceptedRate = (through.load.ok * 1000) / through.load.elapsedMs;
        ctx.log(
          `PostgreSQL ×${n} at ${rate} ev/s: p50 ${through.stats.latency.p50.toFixed(1)} ms, p99 ${through.stats.latency.p99.toFixed(1)} ms, ` +
            `POST→202 p50 ${through.load.opLatency.p50.toFixed(1)} ms, ${through.load.dropped} dropped, ` +
            `hookd at ${Math.round(cpuPercent)}% CPU; waits: ${describeWaits(waited)}`,
        );
        const note = [
          `POST→202 p50 ${through.load.opLatency.p50.toFixed(1)} ms`,
          through.load.dropped > 0 || through.missing > 0 || through.load.failed > 0
            ? `${through.load.dropped} arrivals dropped (1024 outstanding), ${through.load.failed} refused, ${through.missing} not received`
            : "",
        ]
          .filter(Boolean)
          .join("; ");
        const byRate = results.get(rate) as ByRate;
        for (const p of ["p50", "p95", "p99"] as const)
          byRate[p].push({ instances: n, value: through.stats.latency[p], note });
        details[`x${n}.r${rate}`] = {
          hookd: through,
          accepted_rate: acceptedRate,
          cpu_percent: cpuPercent,
          waits: waited,
        };
      }
    } finally {
      await cluster.stop();
    }
  }
  for (const rate of rates) {
    for (const p of ["p50", "p99"] as const) {
      postgresRows(ctx, {
        scenario: "latency",
        figure: `ingest→receipt ${p} at ${rate} ev/s`,
        unit: "ms",
        results: (results.get(rate) as ByRate)[p],
        sqlite: ctx.shared.get(`latency.sqlite.${p}.${rate}`),
        sqliteOf: `SQLite, ${p} at ${rate} ev/s in this run`,
        valueTarget: p === "p99" && rate === 1000 ? { on: "value", op: "<=", bound: 25 } : null,
      });
    }
  }
  (ctx.details as Record<string, unknown>).latency_postgres = details;
}

/** One open-loop run against `port` (directly or through hookd); latencies from the receiver. */
export async function measure(
  ctx: Context,
  port: number,
  rate: number,
  durationMs: number,
  send: Send,
): Promise<{ load: OpenLoopResult; stats: ReceiverStats; missing: number }> {
  await ctx.receiver.reset([port]);
  const load = await openLoop({ rate, durationMs: ctx.within(durationMs), maxInFlight: 1024, send });
  // Wait (bounded) until every accepted event arrived.
  const stats = await waitForUnique(ctx, [port], load.ok);
  return { load, stats, missing: Math.max(0, load.ok - stats.unique) };
}
