// `bun bench/phases.ts [--events N] [--subscriptions K] [--max-in-flight M] [--rate R]`: where
// hookd's main-thread time goes. Runs hookd's daemon in this process (from src/, unchanged) and
// wraps the store calls the dispatcher makes and the connection's db.run() (BEGIN, COMMIT, PRAGMA,
// SAVEPOINT): bun:sqlite is synchronous, so the time inside them is main-thread time in SQLite,
// fsyncs included. Default: build a backlog while the receiver holds requests, release it, and split
// the drain's wall time into claim, settle, transaction statements and the rest (HTTP client,
// signing, event loop). --rate R: an open loop of single POSTs at R ev/s for 5 s to one fast
// subscriber, the same split per event. --postgres URL: the same over a new PostgreSQL database
// (store calls are then asynchronous: their times are wall spans, overlapping ones counted apart).
// A profiling aid for BENCHMARKS.md, not part of `bun run bench`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../src/config/load.ts";
import { createDaemon } from "../src/daemon.ts";
import { createLogger } from "../src/runtime/logger.ts";
import { API_KEY, benchConfig, createApi } from "./hookd.ts";
import { eventData, openLoop } from "./load.ts";
import { closeAdmin, createDatabase } from "./postgres.ts";
import { spawnReceiver } from "./receiver.ts";
import { publishBacklog } from "./scenarios/delivery.ts";
import { pollUntil, sleep, wallMs } from "./stats.ts";

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const events = flag("events", 20_000);
const subscriptions = flag("subscriptions", 1);
const maxInFlight = flag("max-in-flight", 256);
const rate = flag("rate", 0);
const postgresAt = process.argv.indexOf("--postgres");
const database =
  postgresAt >= 0
    ? await createDatabase(String(process.argv[postgresAt + 1]), String(process.pid), "phases")
    : null;
const dir = mkdtempSync(join(tmpdir(), "hookd-phases-"));
const receiver = await spawnReceiver();
const config = parseConfig(
  benchConfig({ dir, synchronous: "full", ...(database ? { postgresUrl: database.url } : {}) }),
  "bench",
  process.env,
);
const daemon = await createDaemon({ config, logger: createLogger("warn") });

interface Phase {
  calls: number;
  ms: number;
  items: number;
}
const phases: Record<string, Phase> = {};
// Statements inside a wrapped store call count for that call, not again on their own.
let depth = 0;
const store = daemon.store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
for (const name of ["claimDue", "settle", "settleAndClaim", "nextDueAt", "releaseLeases", "queueStats"]) {
  const original = store[name]?.bind(daemon.store);
  if (!original) continue;
  const phase: Phase = { calls: 0, ms: 0, items: 0 };
  phases[name] = phase;
  store[name] = async (...args: unknown[]) => {
    const t0 = performance.now();
    depth++;
    let pending: Promise<unknown>;
    try {
      pending = original(...args); // the SQLite work runs synchronously, inside this call
    } finally {
      depth--;
      if (!database) phase.ms += performance.now() - t0;
      phase.calls++;
    }
    const result = await pending;
    if (database) phase.ms += performance.now() - t0;
    if (Array.isArray(result)) phase.items += result.length;
    else if (Array.isArray(args[0])) phase.items += args[0].length;
    return result;
  };
}
// --separate: settle and claim in two calls even where the store offers settleAndClaim (A/B).
if (process.argv.includes("--separate")) store.settleAndClaim = undefined as never;
// Transaction statements on the store's connection (the ingest batcher's), by their first word.
const db = (daemon.store as unknown as { db?: { run: (sql: string, ...rest: unknown[]) => unknown } }).db;
const run = db?.run.bind(db);
if (db && run)
  db.run = (sql: string, ...rest: unknown[]) => {
    if (depth > 0) return run(sql, ...rest);
    const t0 = performance.now();
    try {
      return run(sql, ...rest);
    } finally {
      const name = `db.run ${sql.trim().split(/\s+/)[0]?.toUpperCase()}`;
      phases[name] ??= { calls: 0, ms: 0, items: 0 };
      const phase = phases[name];
      phase.ms += performance.now() - t0;
      phase.calls++;
    }
  };

function report(title: string, wall: number, cpu: NodeJS.CpuUsage, per: number, perName: string): void {
  const line = (name: string, p: Phase) =>
    `${name.padEnd(18)} ${String(p.calls).padStart(6)} calls ${p.ms.toFixed(0).padStart(6)} ms ` +
    `${((100 * p.ms) / wall).toFixed(1).padStart(5)}% of wall  ${(p.ms / Math.max(1, p.calls)).toFixed(3)} ms/call  ` +
    `${((1000 * p.ms) / per).toFixed(1)} µs/${perName}`;
  const inSql = Object.values(phases).reduce((n, p) => n + p.ms, 0);
  const lines = [
    title,
    `process CPU: user ${(cpu.user / 1000).toFixed(0)} ms + system ${(cpu.system / 1000).toFixed(0)} ms ` +
      `= ${((100 * (cpu.user + cpu.system)) / 1000 / wall).toFixed(0)}% of one core` +
      (rate > 0 ? " (includes this process's load generator)" : ""),
    ...Object.entries(phases)
      .filter(([, p]) => p.calls > 0)
      .map(([name, p]) => line(name, p)),
    `${"rest".padEnd(18)} ${(wall - inSql).toFixed(0).padStart(19)} ms ${((100 * (wall - inSql)) / wall).toFixed(1).padStart(5)}% of wall  ` +
      "(HTTP server and client, validation, signing, metrics, event loop, idle)",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

try {
  const { url } = await daemon.start();
  const api = createApi(url);
  const ports = await receiver.addOrigins(subscriptions, { kind: rate > 0 ? "fast" : "hold" });
  for (let i = 0; i < subscriptions; i++) {
    const response = await fetch(`${url}/v1/webhooks`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({
        name: `phases-${i}`,
        url: `http://127.0.0.1:${ports[i]}/w/${i}`,
        events: ["*"],
        max_in_flight: Math.min(maxInFlight, 256),
        timeout_seconds: 60,
      }),
    });
    if (response.status !== 201) throw new Error(`webhook: ${response.status} ${await response.text()}`);
  }
  if (rate > 0) {
    const send = (seq: number) => api.publish("bench.event", eventData(seq));
    await openLoop({ rate, durationMs: 1000, maxInFlight: 512, send }); // warm-up
    for (const phase of Object.values(phases)) Object.assign(phase, { calls: 0, ms: 0, items: 0 });
    await receiver.reset(ports);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const load = await openLoop({ rate, durationMs: 5000, maxInFlight: 1024, send });
    const wall = performance.now() - t0;
    const stats = await receiver.stats(ports);
    report(
      `open loop: ${load.ok} events at ${rate} ev/s in ${wall.toFixed(0)} ms; receiver p50 ${stats.latency.p50.toFixed(1)} ms, p99 ${stats.latency.p99.toFixed(1)} ms`,
      wall,
      process.cpuUsage(cpu0),
      load.ok,
      "event",
    );
  } else {
    const accepted = await publishBacklog(api.publishBatch, events, 0);
    const total = accepted * subscriptions;
    await sleep(500);
    const { held } = await receiver.stats(ports);
    for (const phase of Object.values(phases)) Object.assign(phase, { calls: 0, ms: 0, items: 0 });
    await receiver.reset(ports);
    const cpu0 = process.cpuUsage();
    const t0 = wallMs();
    await receiver.setBehaviour(ports, { kind: "fast" });
    await pollUntil(
      "the drain",
      async () => ((await receiver.stats(ports)).unique >= total - held ? true : undefined),
      120_000,
      20,
    );
    const stats = await receiver.stats(ports);
    const wall = stats.lastAt - t0;
    report(
      `drain: ${stats.unique} deliveries in ${wall.toFixed(0)} ms = ${Math.round((stats.unique * 1000) / wall)} dlv/s ` +
        `(${subscriptions} subscription(s), ${held} held before the release, ${stats.duplicates} duplicates)`,
      wall,
      process.cpuUsage(cpu0),
      stats.unique,
      "delivery",
    );
  }
} finally {
  await daemon.stop();
  await receiver.close();
  rmSync(dir, { recursive: true, force: true });
  await database?.drop();
  await closeAdmin();
}
process.exit(0);
