// backlog: 1 M pending deliveries (100 k with --quick) written straight into a database hookd
// created, over 100 subscriptions on 100 origins that answer after a fixed 20 ms. Then:
//  - claim latency: hookd's own claimDue() (imported from src, unchanged) run against that database
//    in a transaction that is rolled back, 256 at a time (a full claim) and 1 at a time (one freed
//    slot, the steady state); the floor is the minimal SQL that leases the same 256 rows;
//  - database bytes per delivery (file size / N), against the payload bytes every delivery carries;
//  - hookd started on it: start-to-ready, RSS (VmHWM, the peak) while it drains, and the drain rate
//    over a bounded window, projected to the whole backlog when the window ends first; the ceiling
//    is the node:http POST loop at C=256 against the same 20 ms origins.
import type { Database } from "bun:sqlite";
import { statSync } from "node:fs";
import { claimDue, createLeaseCounter } from "../../src/store/sqlite/dispatch.ts";

const noLeases = createLeaseCounter();

import { writeBacklog } from "../backlog-db.ts";
import { measurePgClaims, writePgBacklog } from "../backlog-pg.ts";
import type { Context, Scenario } from "../context.ts";
import { API_KEY, startHookd } from "../hookd.ts";
import { closedLoop, deliveryLike, nodeHttpPoster } from "../load.ts";
import { createDatabase } from "../postgres.ts";
import { row } from "../report.ts";
import { openLikeHookd } from "../sqlite-floor.ts";
import { median, percentiles, sleep } from "../stats.ts";

const SUBSCRIPTIONS = 100;
const RECEIVER_MS = 20;
const MB = 1024 * 1024;

export const backlog: Scenario = {
  name: "backlog",
  needs: [],
  capMs: { quick: 50_000, full: 180_000 },
  postgresCapMs: { quick: 90_000, full: 120_000 },
  async run(ctx) {
    if (ctx.drivers.includes("sqlite")) await sqliteBacklog(ctx);
    if (ctx.drivers.includes("postgres")) await postgresBacklog(ctx);
  },
};

async function sqliteBacklog(ctx: Context): Promise<void> {
  {
    const count = ctx.quick ? 100_000 : 1_000_000;
    const label = `${count / 1000} k`;
    const ports = await ctx.receiver.addOrigins(SUBSCRIPTIONS, { kind: "latency", ms: RECEIVER_MS });
    const dir = ctx.newDir("backlog");

    // 1. hookd creates the database and the subscriptions; its RSS with an empty queue is the floor.
    const first = await startHookd({ dir, synchronous: "full" });
    let emptyRss: number;
    try {
      for (let i = 0; i < SUBSCRIPTIONS; i++)
        await first.api.createWebhook({ url: `http://127.0.0.1:${ports[i]}/w/${i}`, timeout_seconds: 30 });
      await sleep(500);
      emptyRss = first.memory().rss;
    } finally {
      await first.stop();
    }

    // 2. The backlog, written directly.
    const written = writeBacklog(first.dbPath, count, ctx.deadline - (ctx.quick ? 20_000 : 60_000));
    ctx.log(`wrote ${label} deliveries in ${written.seconds.toFixed(1)} s`);
    const bytes = statSync(first.dbPath).size;

    // 3. Claim latency on that database, with hookd's own claim code.
    const claims = measureClaims(ctx, first.dbPath);

    // 4. The drain ceiling: the POST loop at hookd's in-flight cap against the same 20 ms origins.
    const post = nodeHttpPoster(`http://127.0.0.1:${ports[0]}`, 256);
    let ceilingRate: number;
    try {
      const loop = await closedLoop({
        concurrency: 256,
        durationMs: ctx.within(ctx.quick ? 1500 : 3000),
        warmupMs: 300,
        maxOps: 1_000_000,
        send: async (seq) => {
          const { body, headers } = deliveryLike(seq, `${ctx.runId}bl`);
          return (await post("/ceiling", body, headers)) < 300 ? 1 : 0;
        },
      });
      ceilingRate = loop.unitsPerSecond;
    } finally {
      post.close();
    }

    // 5. hookd on the backlog.
    await ctx.receiver.reset(ports);
    const hookd = await startHookd({ dir, synchronous: "full" });
    const rss: number[] = [];
    let drained = 0;
    let seconds = 0;
    let cpuPercent = Number.NaN;
    const inFlightSamples: number[] = [];
    let statsTimes = { p50: Number.NaN, p95: Number.NaN, floor: Number.NaN };
    try {
      const cpu0 = hookd.cpuSeconds();
      const started = performance.now();
      const end = started + ctx.within(ctx.quick ? 15_000 : 45_000);
      while (performance.now() < end) {
        await sleep(250);
        rss.push(hookd.memory().rss);
        const inFlight = await gauge(hookd.url, "hookd_in_flight");
        if (Number.isFinite(inFlight)) inFlightSamples.push(inFlight);
        drained = (await ctx.receiver.stats(ports)).unique;
        if (drained >= count) break;
      }
      seconds = (performance.now() - started) / 1000;
      cpuPercent = (100 * (hookd.cpuSeconds() - cpu0)) / seconds;
      rss.push(hookd.memory().hwm);
      // GET /v1/stats on the database of N deliveries, while hookd still drains it.
      statsTimes = await measureStats(hookd.url);
    } finally {
      await hookd.stop();
    }
    ctx.log(
      `drain: ${Math.round(drained / seconds)} dlv/s, hookd at ${Math.round(cpuPercent)}% CPU, ` +
        `${Math.round(median(inFlightSamples))} in flight (median of /metrics samples)`,
    );
    const complete = drained >= count;
    const rate = drained / seconds;
    const drainSeconds = complete ? seconds : count / rate;
    const peak = Math.max(...rss.filter(Number.isFinite));

    ctx.rows.push(
      row({
        scenario: "backlog",
        figure: `claim 256 at ${label} pending (median)`,
        value: claims.full.p50,
        unit: "ms",
        ceiling: claims.floor.p50,
        ceilingOf: "minimal SQL leasing the same 256 rows",
        target: { on: "value", op: "<=", bound: 2 },
        note: `p99 ${claims.full.p99.toFixed(2)} ms`,
      }),
      row({
        scenario: "backlog",
        figure: `claim 1 at ${label} pending (median)`,
        value: claims.one.p50,
        unit: "ms",
        ceiling: claims.floorOne.p50,
        ceilingOf: "minimal SQL leasing the same row",
        target: { on: "value", op: "<=", bound: 2 },
      }),
      row({
        scenario: "backlog",
        figure: `peak RSS draining ${label}`,
        value: peak / MB,
        unit: "MB",
        ceiling: emptyRss / MB,
        ceilingOf: "hookd's RSS with an empty queue",
        target: { on: "value", op: "<=", bound: 250 },
      }),
      row({
        scenario: "backlog",
        figure: "database bytes per delivery",
        value: bytes / count,
        unit: "B",
        ceiling: written.payloadBytes,
        ceilingOf: "the payload bytes of a delivery",
      }),
      row({
        scenario: "backlog",
        figure: `${complete ? "time" : "projected time"} to drain ${label} (20 ms receiver)`,
        value: drainSeconds,
        unit: "s",
        ceiling: count / ceilingRate,
        ceilingOf: "N / the node:http POST loop rate at C=256 against the same origins",
        ...(complete ? {} : { note: `${drained} delivered in ${seconds.toFixed(1)} s` }),
      }),
      row({
        scenario: "backlog",
        figure: `GET /v1/stats (24 h, hourly) at ${label} deliveries (median)`,
        value: statsTimes.p50,
        unit: "ms",
        ceiling: statsTimes.floor,
        ceilingOf: "GET /v1/event-types (authenticated, reads no table), same loop",
        target: { on: "value", op: "<=", bound: 100 },
        note: `p95 ${statsTimes.p95.toFixed(1)} ms, while draining`,
      }),
      row({
        scenario: "backlog",
        figure: `start-to-ready on ${label} pending`,
        value: hookd.startToReadyMs,
        unit: "ms",
        ceiling: first.startToReadyMs,
        ceilingOf: "hookd's start on a new database",
      }),
    );
    ctx.details.backlog = {
      count,
      written,
      database_bytes: bytes,
      claims,
      empty_rss: emptyRss,
      rss_samples: rss,
      drained,
      drain_window_seconds: seconds,
      drain_rate: rate,
      drain_cpu_percent: cpuPercent,
      // hookd_in_flight from /metrics every 250 ms: how close hookd stays to its cap of 256.
      in_flight_mean: inFlightSamples.reduce((a, b) => a + b, 0) / Math.max(1, inFlightSamples.length),
      ceiling_rate: ceilingRate,
    };
    ctx.shared.set("backlog.sqlite.claim256", claims.full.p50);
    ctx.shared.set("backlog.sqlite.claim1", claims.one.p50);
    ctx.shared.set("backlog.sqlite.count", count);
  }
}

/**
 * 1 M pending deliveries on PostgreSQL (in both modes: building them in SQL takes ≈ 20 s here),
 * over 100 subscriptions hookd created through its API; then claim latency through hookd's own
 * store (backlog-pg.ts). hookd is not started on this backlog.
 */
async function postgresBacklog(ctx: Context): Promise<void> {
  const count = 1_000_000;
  const label = `${count / 1000} k`;
  const db = await createDatabase(ctx.postgresUrl as string, ctx.runId, "backlog");
  try {
    const first = await startHookd({
      dir: ctx.newDir("backlog-pg"),
      synchronous: "full",
      postgresUrl: db.url,
    });
    try {
      for (let i = 0; i < SUBSCRIPTIONS; i++)
        await first.api.createWebhook({ url: `http://127.0.0.1:9/w/${i}`, timeout_seconds: 30 });
    } finally {
      await first.stop();
    }
    const written = await writePgBacklog(db.url, count, ctx.deadline - 20_000);
    ctx.log(`PostgreSQL: wrote ${label} deliveries in ${written.seconds.toFixed(1)} s`);
    const claims = await measurePgClaims(db.url, ctx.within(ctx.quick ? 3000 : 8000));
    ctx.log(
      `PostgreSQL claim of 256: median ${claims.full.p50.toFixed(2)} ms (${claims.fullRows} rows), ` +
        `one round trip ${claims.roundTripMs.toFixed(3)} ms; per statement of one claim: ` +
        claims.statements
          .map((s) => `${s.calls}× ${s.statement.slice(0, 40)}… ${s.ms.toFixed(1)} ms`)
          .join("; "),
    );
    const sqliteNote = (key: string) => {
      const v = ctx.shared.get(key);
      const n = ctx.shared.get("backlog.sqlite.count");
      return v === undefined ? "" : `; SQLite in this run: ${v.toFixed(2)} ms at ${(n ?? 0) / 1000} k`;
    };
    ctx.rows.push(
      row({
        scenario: "backlog",
        figure: `PostgreSQL: claim 256 at ${label} pending (median)`,
        value: claims.full.p50,
        unit: "ms",
        ceiling: claims.floor.p50,
        ceilingOf: "one statement leasing the same 256 rows and returning their payloads (rolled back)",
        target: { on: "value", op: "<=", bound: 10 },
        note: `p99 ${claims.full.p99.toFixed(2)} ms${sqliteNote("backlog.sqlite.claim256")}`,
      }),
      row({
        scenario: "backlog",
        figure: `PostgreSQL: claim 1 at ${label} pending (median)`,
        value: claims.one.p50,
        unit: "ms",
        ceiling: claims.floorOne.p50,
        ceilingOf: "one statement leasing the same row (rolled back)",
        target: { on: "value", op: "<=", bound: 10 },
        note: `p99 ${claims.one.p99.toFixed(2)} ms${sqliteNote("backlog.sqlite.claim1")}`,
      }),
      row({
        scenario: "backlog",
        figure: "PostgreSQL: database bytes per delivery (events + deliveries, with indexes)",
        value: written.tableBytes / count,
        unit: "B",
        ceiling: written.payloadBytes,
        ceilingOf: "the payload bytes of a delivery",
      }),
    );
    (ctx.details as Record<string, unknown>).backlog_postgres = { count, written, claims };
  } finally {
    await db.drop();
  }
}

interface ClaimFigures {
  full: ReturnType<typeof percentiles>;
  one: ReturnType<typeof percentiles>;
  floor: ReturnType<typeof percentiles>;
  floorOne: ReturnType<typeof percentiles>;
}

/** Times claims against the backlog database; every claim is rolled back, so each sees the same queue. */
function measureClaims(ctx: Context, path: string): ClaimFigures {
  const db = openLikeHookd(path, "full");
  try {
    const budget = ctx.quick ? 800 : 2500;
    const time = (limit: number, claim: (db: Database, limit: number) => unknown) => {
      const samples: number[] = [];
      const end = performance.now() + ctx.within(budget);
      while (performance.now() < end && samples.length < 5000) {
        db.run("BEGIN IMMEDIATE");
        try {
          const t0 = performance.now();
          claim(db, limit);
          samples.push(performance.now() - t0);
        } finally {
          db.run("ROLLBACK");
        }
      }
      return percentiles([Float64Array.from(samples)]);
    };
    const hookdClaim = (db: Database, limit: number) =>
      claimDue(
        db,
        {
          now: Date.now(),
          owner: "bench.1",
          leaseMs: 60_000,
          limit,
          retryLimit: 192,
        },
        noLeases,
      );
    return {
      full: time(256, hookdClaim),
      one: time(1, hookdClaim),
      floor: time(256, minimalClaim),
      floorOne: time(1, minimalClaim),
    };
  } finally {
    db.close();
  }
}

/** The least SQL that leases `limit` due rows (8 per subscription, as hookd's cap) and reads payloads. */
function minimalClaim(db: Database, limit: number): number {
  const now = Date.now();
  const webhooks = db
    .query<{ id: string }, [number, number]>(
      "SELECT id FROM webhooks WHERE next_due_at <= ? ORDER BY next_due_at LIMIT ?",
    )
    .all(now, Math.ceil(limit / 8));
  const lease = db.query<{ event_id: string }, [number, string, number, number]>(
    `UPDATE deliveries SET next_attempt_at = ?, lease_owner = 'floor' WHERE id IN
       (SELECT id FROM deliveries WHERE webhook_id = ? AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?)
     RETURNING event_id`,
  );
  const payload = db.query<{ payload: string }, [string]>("SELECT payload FROM events WHERE id = ?");
  let n = 0;
  for (const { id } of webhooks) {
    for (const { event_id } of lease.all(now + 60_000, id, now, Math.min(8, limit - n))) {
      payload.get(event_id);
      n++;
    }
    if (n >= limit) break;
  }
  return n;
}

/** One unlabelled gauge from hookd's /metrics (NaN when absent). */
async function gauge(url: string, name: string): Promise<number> {
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
    return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}

/** GET /v1/stats (the default: 24 h, hourly) 30 times, each after a GET /v1/event-types (the floor). */
async function measureStats(url: string): Promise<{ p50: number; p95: number; floor: number }> {
  const headers = { authorization: `Bearer ${API_KEY}` };
  const timed = async (path: string) => {
    const started = performance.now();
    const response = await fetch(url + path, { headers, signal: AbortSignal.timeout(10_000) });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`GET ${path}: ${response.status}`);
    return performance.now() - started;
  };
  const stats: number[] = [];
  const floor: number[] = [];
  for (let i = 0; i < 30; i++) {
    floor.push(await timed("/v1/event-types"));
    stats.push(await timed("/v1/stats"));
  }
  const sorted = [...stats].sort((a, b) => a - b);
  return {
    p50: median(stats),
    p95: sorted[Math.floor(sorted.length * 0.95)] as number,
    floor: median(floor),
  };
}
