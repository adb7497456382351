// fan-out: every event goes to 100 subscriptions. Once with the 100 subscriptions on 100 distinct
// origins (ports: hookd keeps a keep-alive pool per origin), once with all 100 on one origin; the
// backlog is built while the origins hold requests, then drained and timed; each layout runs twice
// (A-B-B-A). The target compares the two: distinct origins should cost little.
import {
  type Cluster,
  describeWaits,
  type PostgresResult,
  postgresRows,
  sampleWaits,
  startCluster,
  type WaitSample,
} from "../cluster.ts";
import type { Context, Scenario } from "../context.ts";
import { type DrainResult, releaseAndDrain, waitForHeld } from "../drain.ts";
import { row } from "../report.ts";
import { publishBacklog } from "./delivery.ts";

const SUBSCRIPTIONS = 100;

export const fanOut: Scenario = {
  name: "fan-out",
  needs: ["ceiling"],
  capMs: { quick: 50_000, full: 120_000 },
  postgresCapMs: { quick: 60_000, full: 150_000 },
  async run(ctx) {
    const events = ctx.quick ? 100 : 200;
    if (ctx.drivers.includes("sqlite")) await sqliteFanOut(ctx, events);
    if (ctx.drivers.includes("postgres")) await postgresFanOut(ctx, events);
  },
};

async function sqliteFanOut(ctx: Context, events: number): Promise<void> {
  {
    // A-B-B-A: each layout twice, in mirrored order, so a drift in machine load weighs on both.
    const runs: Record<"one" | "many", DrainResult[]> = { one: [], many: [] };
    for (const layout of ["many", "one", "one", "many"] as const) {
      const ports = await ctx.receiver.addOrigins(layout === "many" ? SUBSCRIPTIONS : 1, { kind: "hold" });
      runs[layout].push(await run(ctx, layout, events, ports));
    }
    const one = combine(runs.one);
    const many = combine(runs.many);
    ctx.shared.set("fanout.sqlite.many", many.perSecond);
    const total = events * SUBSCRIPTIONS;
    ctx.rows.push(
      row({
        scenario: "fan-out",
        figure: `${total / 1000} k deliveries (${events} events × ${SUBSCRIPTIONS}), 1 origin`,
        value: one.perSecond,
        unit: "dlv/s",
        ceiling: ctx.shared.get("post.best") ?? null,
        ceilingOf: "the best POST loop of this run",
        ...(one.complete ? {} : { note: `cut off: ${one.delivered} of ${one.expected}` }),
      }),
      row({
        scenario: "fan-out",
        figure: `${total / 1000} k deliveries (${events} events × ${SUBSCRIPTIONS}), ${SUBSCRIPTIONS} origins`,
        value: many.perSecond,
        unit: "dlv/s",
        ceiling: one.perSecond,
        ceilingOf: "the same fan-out to a single origin",
        target: { on: "ratio", op: ">=", bound: 0.8 },
        ...(many.complete ? {} : { note: `cut off: ${many.delivered} of ${many.expected}` }),
      }),
    );
    ctx.details.fanOut = runs;
  }
}

/** The 100-origin layout on PostgreSQL, one instance and N over one database. */
async function postgresFanOut(ctx: Context, events: number): Promise<void> {
  const results: PostgresResult[] = [];
  const details: Record<string, unknown> = {};
  for (const n of ctx.pgInstances) {
    const ports = await ctx.receiver.addOrigins(SUBSCRIPTIONS, { kind: "hold" });
    const cluster = await startCluster(ctx, "postgres", n, `fanout_x${n}`);
    let waited: WaitSample | null = null;
    const drain = await run(ctx, `PostgreSQL ×${n}, ${SUBSCRIPTIONS}`, events, ports, cluster, () => {
      const waits = sampleWaits(cluster.database);
      return async () => {
        waited = await waits.stop();
      };
    });
    ctx.log(`PostgreSQL ×${n}: waits during the drain: ${describeWaits(waited)}`);
    results.push({
      instances: n,
      value: drain.perSecond,
      ...(drain.complete ? {} : { note: `cut off: ${drain.delivered} of ${drain.expected}` }),
    });
    details[`x${n}`] = { ...drain, waits: waited };
  }
  postgresRows(ctx, {
    scenario: "fan-out",
    figure: `${(events * SUBSCRIPTIONS) / 1000} k deliveries (${events} events × ${SUBSCRIPTIONS}), ${SUBSCRIPTIONS} origins`,
    unit: "dlv/s",
    results,
    sqlite: ctx.shared.get("fanout.sqlite.many"),
    sqliteOf: "SQLite, the same fan-out to 100 origins in this run",
    scaling: true,
  });
  (ctx.details as Record<string, unknown>).fanOut_postgres = details;
}

/** One fan-out drain; `cluster` (stopped here) or, by default, one SQLite hookd of its own. */
async function run(
  ctx: Context,
  name: string,
  events: number,
  ports: number[],
  given?: Cluster,
  /** Called right before the release; what it answers, right after the drain. */
  beforeRelease?: () => () => Promise<void>,
): Promise<DrainResult> {
  const hookd = given ?? (await startCluster(ctx, "sqlite", 1, `fan-out-${name}`));
  try {
    for (let i = 0; i < SUBSCRIPTIONS; i++) {
      const port = ports[i % ports.length];
      await hookd.api.createWebhook({ url: `http://127.0.0.1:${port}/w/${i}`, timeout_seconds: 60 });
    }
    const accepted = await publishBacklog(hookd.publishBatch, events, 0);
    if (accepted !== events) throw new Error(`only ${accepted} of ${events} events accepted`);
    const held = await waitForHeld(ctx, ports, 1);
    const afterDrain = beforeRelease?.();
    const drain = await releaseAndDrain(
      ctx,
      ports,
      events * SUBSCRIPTIONS - held,
      ctx.quick ? 20_000 : 45_000,
      hookd.cpuSeconds,
    );
    await afterDrain?.();
    ctx.log(
      `${name} origin(s): ${Math.round(drain.perSecond)} dlv/s, hookd at ${Math.round(drain.cpuPercent)}% CPU, receiver ${Math.round(drain.receiverCpuPercent)}% (${held} held before the release)`,
    );
    return drain;
  } finally {
    await hookd.stop();
  }
}

/** Two drains as one: all deliveries over all the time. */
function combine(drains: DrainResult[]): DrainResult {
  const delivered = drains.reduce((n, d) => n + d.delivered, 0);
  const seconds = drains.reduce((n, d) => n + d.seconds, 0);
  return {
    delivered,
    expected: drains.reduce((n, d) => n + d.expected, 0),
    seconds,
    perSecond: delivered / seconds,
    duplicates: drains.reduce((n, d) => n + d.duplicates, 0),
    complete: drains.every((d) => d.complete),
    cpuPercent: drains.reduce((n, d) => n + d.cpuPercent * d.seconds, 0) / seconds,
    receiverCpuPercent: drains.reduce((n, d) => n + d.receiverCpuPercent * d.seconds, 0) / seconds,
    loadavg: Math.max(...drains.map((d) => d.loadavg)),
  };
}
