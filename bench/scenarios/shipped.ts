// shipped: the product as a user runs it, on each driver. Webhooks created with only `url` and
// `events` (so the default max_in_flight of 8 and every other default), events arriving while
// deliveries go out. Figures: a mixed load (publishers at C=64 single POSTs while the same hookd
// delivers to a fast origin; accepted/s and delivered/s over the same window; again with the
// webhook's cap raised to 64), a default webhook's drain, ingest→receipt p50 at 200 ev/s and p99
// at 1000 ev/s, and hookd's CPU per delivered event (user + system from /proc/<pid>/stat over the
// mixed run and its drain tail, divided by deliveries). Every rate sits next to a fetch POST loop
// at C=64 measured in the same driver block; the CPU figure next to that loop's client + receiver
// CPU per request.
import { type Cluster, DRIVER_LABEL, type Driver, startCluster } from "../cluster.ts";
import type { Context, Scenario } from "../context.ts";
import { releaseAndDrain, waitForHeld, waitForUnique } from "../drain.ts";
import { API_KEY } from "../hookd.ts";
import { closedLoop, deliveryLike, eventData, fetchPoster, type Send } from "../load.ts";
import { row } from "../report.ts";
import { sleep } from "../stats.ts";
import { publishBacklog } from "./delivery.ts";
import { measure } from "./latency.ts";

const C = 64;

export const shipped: Scenario = {
  name: "shipped",
  needs: [],
  capMs: { quick: 90_000, full: 200_000 },
  postgresCapMs: { quick: 90_000, full: 200_000 },
  async run(ctx) {
    for (const driver of ctx.drivers) await shippedOn(ctx, driver);
  },
};

interface Loop {
  rate: number;
  /** Runner (client) + receiver CPU per request, in µs. */
  cpuPerRequestUs: number;
}

/** The fetch POST loop at C=64 straight to the receiver, with its client and receiver CPU. */
async function postLoop(ctx: Context, port: number, ms: number): Promise<Loop> {
  const post = fetchPoster(`http://127.0.0.1:${port}`);
  const tag = `${ctx.runId}shipped${Math.floor(performance.now())}`;
  const send: Send = async (seq) => {
    const { body, headers } = deliveryLike(seq, tag);
    return (await post("/w/0", body, headers)) < 300 ? 1 : 0;
  };
  await closedLoop({ concurrency: C, durationMs: ctx.within(250), maxOps: 1_000_000, send });
  await ctx.receiver.reset([port]);
  const client0 = process.cpuUsage();
  const receiver0 = ctx.receiver.cpuSeconds();
  const result = await closedLoop({ concurrency: C, durationMs: ctx.within(ms), maxOps: 5_000_000, send });
  const client = process.cpuUsage(client0);
  const cpu = (client.user + client.system) / 1e6 + (ctx.receiver.cpuSeconds() - receiver0);
  return { rate: result.unitsPerSecond, cpuPerRequestUs: (1e6 * cpu) / Math.max(1, result.units) };
}

interface Mixed {
  accepted: number;
  delivered: number;
  cpuPerDeliveryUs: number;
  complete: boolean;
  detail: Record<string, unknown>;
}

/**
 * Publishers at C=64 for `ms` while hookd delivers to `port`; then waits (bounded) for the rest to
 * arrive. Accepted/s and delivered/s over the publishing window; CPU over window and tail.
 */
async function mixed(ctx: Context, cluster: Cluster, port: number, type: string, ms: number): Promise<Mixed> {
  const publish: Send = (seq) => cluster.publish(type, eventData(seq));
  // Warm-up (connections, JIT, the subscription cache), delivered before the window opens.
  const warm = await closedLoop({
    concurrency: C,
    durationMs: ctx.within(300),
    maxOps: 1_000_000,
    send: publish,
  });
  await waitForUnique(ctx, [port], warm.units);
  await sleep(200);
  await ctx.receiver.reset([port]);
  const cpu0 = cluster.cpuSeconds();
  const t0 = performance.now();
  const load = await closedLoop({
    concurrency: C,
    durationMs: ctx.within(ms),
    maxOps: 5_000_000,
    send: publish,
  });
  const inWindow = await ctx.receiver.stats([port]);
  const windowS = load.elapsedMs / 1000;
  const end = performance.now() + ctx.within(60_000);
  let stats = inWindow;
  while (stats.unique < load.units && performance.now() < end) {
    await sleep(50);
    stats = await ctx.receiver.stats([port]);
  }
  const cpu = cluster.cpuSeconds() - cpu0;
  return {
    accepted: load.units / windowS,
    delivered: inWindow.unique / windowS,
    cpuPerDeliveryUs: (1e6 * cpu) / Math.max(1, stats.unique),
    complete: stats.unique >= load.units,
    detail: {
      window_seconds: windowS,
      accepted: load.units,
      refused: load.failed,
      delivered_in_window: inWindow.unique,
      delivered_in_all: stats.unique,
      tail_seconds: (performance.now() - t0) / 1000 - windowS,
      hookd_cpu_seconds: cpu,
      duplicates: stats.duplicates,
      post_p50_ms: load.opLatency.p50,
    },
  };
}

async function shippedOn(ctx: Context, driver: Driver): Promise<void> {
  const label = DRIVER_LABEL[driver];
  const windowMs = ctx.quick ? 3000 : 8000;
  const [ceilPort, mixed8Port, mixed64Port, latPort, floorPort] = (await ctx.receiver.addOrigins(5, {
    kind: "fast",
  })) as [number, number, number, number, number];
  const [holdPort] = (await ctx.receiver.addOrigins(1, { kind: "hold" })) as [number];
  const cluster = await startCluster(ctx, driver, 1, `shipped_${driver}`);
  const details: Record<string, unknown> = {};
  const hookdPid = cluster.instances[0]?.pid;
  try {
    // Created as a user would: only url and events (the bench config allows http and loopback).
    const base = cluster.instances[0]?.url as string;
    const webhook = async (port: number, type: string, extra: Record<string, unknown> = {}) => {
      const response = await fetch(`${base}/v1/webhooks`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ url: `http://127.0.0.1:${port}/w/0`, events: [type], ...extra }),
      });
      if (response.status !== 201)
        throw new Error(`creating a webhook: ${response.status} ${await response.text()}`);
    };
    await webhook(mixed8Port, "mixed8.event");
    await webhook(mixed64Port, "mixed64.event", { max_in_flight: 64 });
    await webhook(latPort, "latency.event");
    await webhook(holdPort, "drain.event");

    const loop = await postLoop(ctx, ceilPort, ctx.quick ? 1500 : 3000);
    ctx.log(
      `${label}: POST loop ${Math.round(loop.rate)} req/s, ${loop.cpuPerRequestUs.toFixed(0)} µs CPU/request`,
    );
    const loopOf = "fetch POST loop at C=64 straight to the receiver, this driver's block of the run";

    const m8 = await mixed(ctx, cluster, mixed8Port, "mixed8.event", windowMs);
    const m64 = await mixed(ctx, cluster, mixed64Port, "mixed64.event", windowMs);
    ctx.log(
      `${label}: mixed default ${Math.round(m8.accepted)} acc/s ${Math.round(m8.delivered)} dlv/s ` +
        `${m8.cpuPerDeliveryUs.toFixed(0)} µs/dlv; cap 64 ${Math.round(m64.accepted)} acc/s ` +
        `${Math.round(m64.delivered)} dlv/s ${m64.cpuPerDeliveryUs.toFixed(0)} µs/dlv`,
    );

    // The default webhook's drain: a backlog built while its origin holds, then released.
    const events = ctx.quick ? 5000 : 10_000;
    const published = await publishBacklog(cluster.publishBatch, events, 0, "drain.event");
    if (published !== events) throw new Error(`only ${published} of ${events} accepted`);
    const held = await waitForHeld(ctx, [holdPort], 1);
    const drainLoop = await postLoop(ctx, ceilPort, ctx.quick ? 1000 : 2000);
    const drain = await releaseAndDrain(ctx, [holdPort], events - held, 60_000, cluster.cpuSeconds);

    // Latency with defaults: the floor is the same open loop straight to the receiver.
    const floorPost = fetchPoster(`http://127.0.0.1:${floorPort}`);
    const latencyMs = ctx.quick ? 2500 : 8000;
    const publishLat: Send = (seq) => cluster.publish("latency.event", eventData(seq));
    const floorSend =
      (rate: number): Send =>
      async (seq) => {
        const { body, headers } = deliveryLike(seq, `${ctx.runId}shl${rate}`);
        return (await floorPost("/w/0", body, headers)) < 300 ? 1 : 0;
      };
    const lat: Record<
      number,
      { hookd: Awaited<ReturnType<typeof measure>>; floor: Awaited<ReturnType<typeof measure>> }
    > = {};
    for (const rate of [200, 1000]) {
      const floor = await measure(ctx, floorPort, rate, ctx.quick ? 1000 : 3000, floorSend(rate));
      const through = await measure(ctx, latPort, rate, latencyMs, publishLat);
      lat[rate] = { hookd: through, floor };
    }
    const l200 = lat[200] as (typeof lat)[number];
    const l1000 = lat[1000] as (typeof lat)[number];

    const figure = (text: string) =>
      ctx.drivers.length > 1 || driver !== "sqlite" ? `${label}: ${text}` : text;
    const note = (m: Mixed) =>
      m.complete ? undefined : "not every accepted event arrived within 60 s after the window";
    const onTarget = driver === "sqlite";
    ctx.rows.push(
      row({
        scenario: "shipped",
        figure: figure("hookd CPU per delivered event (mixed, default webhook)"),
        value: m8.cpuPerDeliveryUs,
        unit: "µs",
        ceiling: loop.cpuPerRequestUs,
        ceilingOf: "the POST loop's client + receiver CPU per request",
        target: onTarget ? { on: "ratio", op: "<=", bound: 2 } : null,
        note: note(m8),
      }),
      row({
        scenario: "shipped",
        figure: figure("the same, webhook cap 64"),
        value: m64.cpuPerDeliveryUs,
        unit: "µs",
        ceiling: loop.cpuPerRequestUs,
        ceilingOf: "the POST loop's client + receiver CPU per request",
        note: note(m64),
      }),
      row({
        scenario: "shipped",
        figure: figure("mixed C=64: events accepted /s while delivering (default webhook)"),
        value: m8.accepted,
        unit: "ev/s",
        ceiling: loop.rate,
        ceilingOf: loopOf,
        target: onTarget ? { on: "ratio", op: ">=", bound: 0.4 } : null,
      }),
      row({
        scenario: "shipped",
        figure: figure("mixed C=64: deliveries /s, same window (default cap 8)"),
        value: m8.delivered,
        unit: "dlv/s",
        ceiling: loop.rate,
        ceilingOf: loopOf,
      }),
      row({
        scenario: "shipped",
        figure: figure("mixed C=64, cap 64: events accepted /s"),
        value: m64.accepted,
        unit: "ev/s",
        ceiling: loop.rate,
        ceilingOf: loopOf,
        target: onTarget ? { on: "ratio", op: ">=", bound: 0.4 } : null,
      }),
      row({
        scenario: "shipped",
        figure: figure("mixed C=64, cap 64: deliveries /s, same window"),
        value: m64.delivered,
        unit: "dlv/s",
        ceiling: loop.rate,
        ceilingOf: loopOf,
        target: onTarget ? { on: "ratio", op: ">=", bound: 0.4 } : null,
      }),
      row({
        scenario: "shipped",
        figure: figure(`default webhook drain (cap 8), ${events / 1000} k backlog`),
        value: drain.perSecond,
        unit: "dlv/s",
        ceiling: drainLoop.rate,
        ceilingOf: "the same POST loop, measured just before the release",
        target: onTarget ? { on: "ratio", op: ">=", bound: 0.25 } : null,
        ...(drain.complete ? {} : { note: `cut off: ${drain.delivered} of ${drain.expected}` }),
      }),
      row({
        scenario: "shipped",
        figure: figure("ingest→receipt p50 at 200 ev/s (default webhook)"),
        value: l200.hookd.stats.latency.p50,
        unit: "ms",
        ceiling: l200.floor.stats.latency.p50,
        ceilingOf: "the same open loop POSTing straight to the receiver",
        target: onTarget ? { on: "value", op: "<=", bound: 1 } : null,
      }),
      row({
        scenario: "shipped",
        figure: figure("ingest→receipt p99 at 1000 ev/s (default webhook)"),
        value: l1000.hookd.stats.latency.p99,
        unit: "ms",
        ceiling: l1000.floor.stats.latency.p99,
        ceilingOf: "the same open loop POSTing straight to the receiver",
        target: onTarget ? { on: "value", op: "<=", bound: 10 } : null,
        ...(l1000.hookd.missing > 0 || l1000.hookd.load.dropped > 0
          ? { note: `${l1000.hookd.load.dropped} dropped, ${l1000.hookd.missing} not received` }
          : {}),
      }),
    );
    ctx.log(
      `${label}: drain ${Math.round(drain.perSecond)} dlv/s (loop ${Math.round(drainLoop.rate)}); ` +
        `p50@200 ${l200.hookd.stats.latency.p50.toFixed(2)} ms, p99@1000 ${l1000.hookd.stats.latency.p99.toFixed(2)} ms`,
    );
    Object.assign(details, {
      hookd_pid: hookdPid,
      loop,
      drain_loop: drainLoop,
      mixed_default: m8,
      mixed_cap64: m64,
      drain: { ...drain, held },
      latency: {
        r200: {
          p50: l200.hookd.stats.latency.p50,
          p99: l200.hookd.stats.latency.p99,
          floor: l200.floor.stats.latency,
        },
        r1000: {
          p50: l1000.hookd.stats.latency.p50,
          p99: l1000.hookd.stats.latency.p99,
          floor: l1000.floor.stats.latency,
        },
      },
      memory: cluster.memory(),
    });
  } finally {
    await cluster.stop();
  }
  ctx.details[`shipped_${driver}`] = details;
}
