// delivery: deliveries per second draining a 20 k-event backlog (10 k under --quick) to one fast subscriber. The events
// are published through the batch endpoint while the subscriber's origin holds requests (so the
// backlog is really in the database), then the origin answers 200 at once and the drain is timed at
// the receiver. The subscription may use hookd's whole in-flight cap (max_in_flight 256). The
// ceiling is measured right before the release (fetch at C=64, node:http at C=256), so load from
// elsewhere on the machine weighs on both alike.
import { describeWaits, type PostgresResult, postgresRows, sampleWaits, startCluster } from "../cluster.ts";
import type { Context, Scenario } from "../context.ts";
import { releaseAndDrain, waitForHeld } from "../drain.ts";
import { startHookd } from "../hookd.ts";
import { eventData } from "../load.ts";
import { row } from "../report.ts";
import { measurePost } from "./ceiling.ts";

export const delivery: Scenario = {
  name: "delivery",
  needs: [],
  capMs: { quick: 45_000, full: 90_000 },
  postgresCapMs: { quick: 90_000, full: 200_000 },
  async run(ctx) {
    // 20 k as the issue asks; 10 k under --quick to stay within its two minutes.
    const events = ctx.quick ? 10_000 : 20_000;
    if (ctx.drivers.includes("sqlite")) await sqliteDrain(ctx, events);
    if (ctx.drivers.includes("postgres")) await postgresDrain(ctx, events);
  },
};

async function sqliteDrain(ctx: Context, events: number): Promise<void> {
  {
    const ports = await ctx.receiver.addOrigins(1, { kind: "hold" });
    const hookd = await startHookd({ dir: ctx.newDir("delivery"), synchronous: "full" });
    try {
      await hookd.api.createWebhook({
        url: `http://127.0.0.1:${ports[0]}/w/0`,
        max_in_flight: 256,
        timeout_seconds: 60,
      });
      const published = await publishBacklog(hookd.api.publishBatch, events, 0);
      if (published !== events) throw new Error(`only ${published} of ${events} accepted`);
      const held = await waitForHeld(ctx, ports, 1);
      // The ceiling, measured right before the drain against a fast origin of the same receiver.
      const [fast] = await ctx.receiver.addOrigins(1, { kind: "fast" });
      const ms = ctx.quick ? 1000 : 2000;
      const viaFetch = await measurePost(ctx, fast as number, "fetch", 64, ms, 250);
      const viaNode = await measurePost(ctx, fast as number, "node", 256, ms, 250);
      const drain = await releaseAndDrain(
        ctx,
        ports,
        events - held,
        ctx.quick ? 25_000 : 60_000,
        hookd.cpuSeconds,
      );
      const best = Math.max(viaFetch.rate, viaNode.rate);
      ctx.rows.push(
        row({
          scenario: "delivery",
          figure: `drain ${events / 1000} k backlog, 1 subscriber, FULL`,
          value: drain.perSecond,
          unit: "dlv/s",
          ceiling: best,
          ceilingOf: "the better of fetch C=64 and node:http C=256 POST loops, measured just before",
          target: { on: "ratio", op: ">=", bound: 0.5 },
          ...(drain.complete ? {} : { note: `cut off: ${drain.delivered} of ${drain.expected}` }),
        }),
        row({
          scenario: "delivery",
          figure: "the same drain, vs node:http (hookd's client library)",
          value: drain.perSecond,
          unit: "dlv/s",
          ceiling: viaNode.rate,
          ceilingOf: "the node:http keep-alive POST loop at C=256, measured just before",
        }),
      );
      ctx.shared.set("delivery.sqlite", drain.perSecond);
      ctx.log(
        `${Math.round(drain.perSecond)} dlv/s, hookd at ${Math.round(drain.cpuPercent)}% CPU, ` +
          `receiver ${Math.round(drain.receiverCpuPercent)}%, load average ${drain.loadavg.toFixed(2)}`,
      );
      ctx.details.delivery = {
        ...drain,
        held,
        ceiling_fetch_c64: viaFetch.rate,
        ceiling_node_c256: viaNode.rate,
        memory: hookd.memory(),
      };
    } finally {
      await hookd.stop();
    }
  }
}

/**
 * The same drain on PostgreSQL with one instance and with N over one database: the backlog is
 * published round-robin over the instances while the origin holds, then released; the drain is
 * timed at the receiver to the last delivery, whichever instance sent it.
 */
async function postgresDrain(ctx: Context, events: number): Promise<void> {
  const results: PostgresResult[] = [];
  const details: Record<string, unknown> = {};
  for (const n of ctx.pgInstances) {
    const ports = await ctx.receiver.addOrigins(1, { kind: "hold" });
    const cluster = await startCluster(ctx, "postgres", n, `delivery_x${n}`);
    try {
      await cluster.api.createWebhook({
        url: `http://127.0.0.1:${ports[0]}/w/0`,
        max_in_flight: 256,
        timeout_seconds: 60,
      });
      const t0 = performance.now();
      const published = await publishBacklog(cluster.publishBatch, events, 0);
      const publishSeconds = (performance.now() - t0) / 1000;
      if (published !== events) throw new Error(`only ${published} of ${events} accepted`);
      const held = await waitForHeld(ctx, ports, 1);
      const waits = sampleWaits(cluster.database);
      const drain = await releaseAndDrain(
        ctx,
        ports,
        events - held,
        ctx.quick ? 30_000 : 60_000,
        cluster.cpuSeconds,
      );
      const waited = await waits.stop();
      ctx.log(
        `PostgreSQL ×${n}: ${Math.round(drain.perSecond)} dlv/s, hookd at ${Math.round(drain.cpuPercent)}% CPU ` +
          `(all instances), ${held} held; waits: ${describeWaits(waited)}`,
      );
      results.push({
        instances: n,
        value: drain.perSecond,
        ...(drain.complete ? {} : { note: `cut off: ${drain.delivered} of ${drain.expected}` }),
      });
      details[`x${n}`] = {
        ...drain,
        held,
        publish_seconds: publishSeconds,
        waits: waited,
        memory: cluster.memory(),
      };
    } finally {
      await cluster.stop();
    }
  }
  postgresRows(ctx, {
    scenario: "delivery",
    figure: `drain ${events / 1000} k backlog, 1 subscriber`,
    unit: "dlv/s",
    results,
    sqlite: ctx.shared.get("delivery.sqlite"),
    sqliteOf: "SQLite, the same drain in this run",
    vsSqlite: { on: "ratio", op: ">=", bound: 0.5 },
    scaling: true,
  });
  (ctx.details as Record<string, unknown>).delivery_postgres = details;
}

/** Publishes `count` events through /v1/events/batch, 500 at a time, two requests in flight. */
export async function publishBacklog(
  publishBatch: (events: { type: string; data: Record<string, unknown> }[]) => Promise<number>,
  count: number,
  firstSeq: number,
  type = "bench.event",
): Promise<number> {
  let next = 0;
  let accepted = 0;
  await Promise.all(
    [0, 1].map(async () => {
      while (next < count) {
        const from = next;
        const size = Math.min(500, count - from);
        next += size;
        const n = await publishBatch(
          Array.from({ length: size }, (_, i) => ({ type, data: eventData(firstSeq + from + i) })),
        );
        accepted += n; // not `accepted += await …`: that reads `accepted` before the await
      }
    }),
  );
  return accepted;
}
