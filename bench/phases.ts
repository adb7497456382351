// `bun bench/phases.ts [--events N] [--subscriptions K] [--max-in-flight M]`: where a delivery drain's
// time goes. Runs hookd's daemon in this process (from src/, unchanged), wraps the store calls the
// dispatcher makes (bun:sqlite is synchronous, so the time inside them is main-thread time spent in
// SQL), builds a backlog while the receiver holds requests, then releases it and reports the
// drain's wall time split into claim, settle and the rest (HTTP client, signing, event loop), next
// to the CPU the process used. A profiling aid for BENCHMARKS.md, not part of `bun run bench`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../src/config/load.ts";
import { createDaemon } from "../src/daemon.ts";
import { createLogger } from "../src/runtime/logger.ts";
import { API_KEY, benchConfig, createApi } from "./hookd.ts";
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
const dir = mkdtempSync(join(tmpdir(), "hookd-phases-"));
const receiver = await spawnReceiver();
const config = parseConfig(benchConfig({ dir, synchronous: "full" }), "bench", process.env);
const daemon = await createDaemon({ config, logger: createLogger("warn") });

interface Phase {
  calls: number;
  ms: number;
  items: number;
}
const phases: Record<string, Phase> = {};
const store = daemon.store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
for (const name of ["claimDue", "settle", "nextDueAt", "releaseLeases", "queueStats"]) {
  const original = store[name]?.bind(daemon.store);
  if (!original) continue;
  const phase: Phase = { calls: 0, ms: 0, items: 0 };
  phases[name] = phase;
  store[name] = async (...args: unknown[]) => {
    const t0 = performance.now();
    try {
      const result = await original(...args);
      if (Array.isArray(result)) phase.items += result.length;
      else if (Array.isArray(args[0])) phase.items += args[0].length;
      return result;
    } finally {
      phase.ms += performance.now() - t0;
      phase.calls++;
    }
  };
}

try {
  const { url } = await daemon.start();
  const api = createApi(url);
  const ports = await receiver.addOrigins(subscriptions, { kind: "hold" });
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
  const cpu = process.cpuUsage(cpu0);
  const line = (name: string, p: Phase) =>
    `${name.padEnd(14)} ${String(p.calls).padStart(6)} calls ${p.ms.toFixed(0).padStart(6)} ms ` +
    `${((100 * p.ms) / wall).toFixed(1).padStart(5)}% of wall  ${(p.ms / Math.max(1, p.calls)).toFixed(3)} ms/call  ` +
    `${(p.items / Math.max(1, p.calls)).toFixed(1)} items/call`;
  const inStore = Object.values(phases).reduce((n, p) => n + p.ms, 0);
  const report = [
    `drain: ${stats.unique} deliveries in ${wall.toFixed(0)} ms = ${Math.round((stats.unique * 1000) / wall)} dlv/s ` +
      `(${subscriptions} subscription(s), ${held} held before the release, ${stats.duplicates} duplicates)`,
    `process CPU during the drain: user ${(cpu.user / 1000).toFixed(0)} ms + system ${(cpu.system / 1000).toFixed(0)} ms ` +
      `= ${((100 * (cpu.user + cpu.system)) / 1000 / wall).toFixed(0)}% of one core`,
    ...Object.entries(phases).map(([name, p]) => line(name, p)),
    `${"rest".padEnd(14)} ${(wall - inStore).toFixed(0).padStart(18)} ms ${((100 * (wall - inStore)) / wall).toFixed(1).padStart(5)}% of wall  (HTTP client, signing, metrics, event loop, idle)`,
  ];
  process.stdout.write(`${report.join("\n")}\n`);
} finally {
  await daemon.stop();
  await receiver.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
