// fan-out: every event goes to 100 subscriptions. Once with the 100 subscriptions on 100 distinct
// origins (ports: hookd keeps a keep-alive pool per origin), once with all 100 on one origin; the
// backlog is built while the origins hold requests, then drained and timed; each layout runs twice
// (A-B-B-A). The target compares the two: distinct origins should cost little. On SQLite a third
// layout runs in the same sequence: the 100 origins with a payload filter on each webhook, each
// matching half of the events (twice the events, so every webhook has as many deliveries to drain
// as unfiltered), compared with the unfiltered 100-origin drain. Filters are evaluated at fan-out, so their cost is in the
// backlog's ingest (reported in the note) as much as in the drain.
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
  capMs: { quick: 80_000, full: 180_000 },
  postgresCapMs: { quick: 90_000, full: 200_000 },
  async run(ctx) {
    const events = ctx.quick ? 100 : 200;
    if (ctx.drivers.includes("sqlite")) await sqliteFanOut(ctx, events);
    if (ctx.drivers.includes("postgres")) await postgresFanOut(ctx, events);
  },
};

async function sqliteFanOut(ctx: Context, events: number): Promise<void> {
  {
    // A-B-C-C-B-A: each layout twice, in mirrored order, so a drift in machine load weighs on all.
    const runs: Record<"one" | "many" | "filtered", DrainResult[]> = { one: [], many: [], filtered: [] };
    const ingest: Record<"many" | "filtered", { events: number; seconds: number }> = {
      many: { events: 0, seconds: 0 },
      filtered: { events: 0, seconds: 0 },
    };
    for (const layout of ["many", "one", "filtered", "filtered", "one", "many"] as const) {
      const ports = await ctx.receiver.addOrigins(layout === "one" ? 1 : SUBSCRIPTIONS, { kind: "hold" });
      const filtered = layout === "filtered";
      const published = filtered ? events * 2 : events;
      const result = await run(ctx, layout, published, ports, undefined, undefined, filtered);
      runs[layout].push(result);
      if (layout !== "one") {
        ingest[layout].events += published;
        ingest[layout].seconds += result.publishSeconds;
      }
    }
    const one = combine(runs.one);
    const many = combine(runs.many);
    const filtered = combine(runs.filtered);
    const ingestRate = (layout: "many" | "filtered") => ingest[layout].events / ingest[layout].seconds;
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
      row({
        scenario: "fan-out",
        figure: `${total / 1000} k deliveries (${events * 2} events × ${SUBSCRIPTIONS}, each matching half), a filter on each of the ${SUBSCRIPTIONS} webhooks (half matching)`,
        value: filtered.perSecond,
        unit: "dlv/s",
        ceiling: many.perSecond,
        ceilingOf: "the same run's unfiltered fan-out to 100 origins",
        target: { on: "ratio", op: ">=", bound: 0.8 },
        note: [
          filtered.complete ? null : `cut off: ${filtered.delivered} of ${filtered.expected}`,
          `backlog ingest ${Math.round(ingestRate("filtered"))} ev/s filtered (50 deliveries each) vs ${Math.round(ingestRate("many"))} ev/s unfiltered (100 each)`,
        ]
          .filter((n) => n !== null)
          .join("; "),
      }),
    );
    ctx.details.fanOut = { ...runs, ingest };
  }
}

/**
 * The 100-origin layout on PostgreSQL, one instance and N over one database; then, on one
 * instance, the same with a filter on each webhook (half matching), next to it.
 */
async function postgresFanOut(ctx: Context, events: number): Promise<void> {
  const results: PostgresResult[] = [];
  const details: Record<string, unknown> = {};
  for (const n of ctx.pgInstances) {
    const drain = await postgresRun(ctx, n, events, false, details);
    results.push({
      instances: n,
      value: drain.perSecond,
      ...(drain.complete ? {} : { note: `cut off: ${drain.delivered} of ${drain.expected}` }),
    });
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
  const unfiltered = results.find((r) => r.instances === 1);
  if (unfiltered) {
    const filtered = await postgresRun(ctx, 1, events * 2, true, details);
    ctx.rows.push(
      row({
        scenario: "fan-out",
        figure: `PostgreSQL ×1: ${(events * SUBSCRIPTIONS) / 1000} k deliveries (${events * 2} events × ${SUBSCRIPTIONS}, each matching half), a filter on each of the ${SUBSCRIPTIONS} webhooks (half matching)`,
        value: filtered.perSecond,
        unit: "dlv/s",
        ceiling: unfiltered.value,
        ceilingOf: "the same run's unfiltered PostgreSQL ×1 fan-out to 100 origins",
        target: { on: "ratio", op: ">=", bound: 0.8 },
        ...(filtered.complete ? {} : { note: `cut off: ${filtered.delivered} of ${filtered.expected}` }),
      }),
    );
  }
  (ctx.details as Record<string, unknown>).fanOut_postgres = details;
}

async function postgresRun(
  ctx: Context,
  n: number,
  events: number,
  filtered: boolean,
  details: Record<string, unknown>,
): Promise<DrainResult> {
  const ports = await ctx.receiver.addOrigins(SUBSCRIPTIONS, { kind: "hold" });
  const label = `${filtered ? "filtered_" : ""}x${n}`;
  const cluster = await startCluster(ctx, "postgres", n, `fanout_${label}`);
  let waited: WaitSample | null = null;
  const name = `PostgreSQL ×${n}${filtered ? " filtered" : ""}, ${SUBSCRIPTIONS}`;
  const drain = await run(
    ctx,
    name,
    events,
    ports,
    cluster,
    () => {
      const waits = sampleWaits(cluster.database);
      return async () => {
        waited = await waits.stop();
      };
    },
    filtered,
  );
  ctx.log(`${name}: waits during the drain: ${describeWaits(waited)}`);
  details[label] = { ...drain, waits: waited };
  return drain;
}

/**
 * The filter of webhook `i` in the filtered layout, for a backlog of `events`: three conditions,
 * the last one true for half of the events (a bench event's amount is 1999 + its sequence number
 * below 1000): the even webhooks take the first half, the odd ones the second.
 */
function benchFilter(i: number, events: number): Record<string, unknown> {
  const middle = 1999 + Math.floor(events / 2);
  return {
    type: { $startsWith: "bench." },
    "data.currency": { $in: ["eur", "usd"] },
    "data.amount": i % 2 === 0 ? { $lt: middle } : { $gte: middle },
  };
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
  /** A filter on each webhook, half of them matching every event. */
  filtered = false,
): Promise<DrainResult & { publishSeconds: number }> {
  const hookd = given ?? (await startCluster(ctx, "sqlite", 1, `fan-out-${name}`));
  try {
    for (let i = 0; i < SUBSCRIPTIONS; i++) {
      const port = ports[i % ports.length];
      await hookd.api.createWebhook({
        url: `http://127.0.0.1:${port}/w/${i}`,
        timeout_seconds: 60,
        ...(filtered ? { filter: benchFilter(i, events) } : {}),
      });
    }
    const publishedAt = performance.now();
    const accepted = await publishBacklog(hookd.publishBatch, events, 0);
    const publishSeconds = (performance.now() - publishedAt) / 1000;
    if (accepted !== events) throw new Error(`only ${accepted} of ${events} events accepted`);
    const perEvent = filtered ? SUBSCRIPTIONS / 2 : SUBSCRIPTIONS;
    const held = await waitForHeld(ctx, ports, 1);
    const afterDrain = beforeRelease?.();
    const drain = await releaseAndDrain(
      ctx,
      ports,
      events * perEvent - held,
      ctx.quick ? 20_000 : 45_000,
      hookd.cpuSeconds,
    );
    await afterDrain?.();
    ctx.log(
      `${name} origin(s): ${Math.round(drain.perSecond)} dlv/s, hookd at ${Math.round(drain.cpuPercent)}% CPU, receiver ${Math.round(drain.receiverCpuPercent)}% (${held} held before the release); backlog of ${events} events published in ${publishSeconds.toFixed(2)} s`,
    );
    return { ...drain, publishSeconds };
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
