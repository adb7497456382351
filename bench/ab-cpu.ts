// `bun bench/ab-cpu.ts BINARY_A BINARY_B [--rounds N] [--events N] [--cap 8|64] [--rate R] [--profile DIR] [--postgres URL]`
// (--postgres URL: each run on a new database of that server instead of a SQLite file; the
// server's CPU per event is reported apart: every process named postgres on this machine)
// (--rate R: an open loop at R ev/s for 5 s instead, reporting the receiver's p50/p99 as well)
// (with --profile, hookd runs from src/ under `bun --cpu-prof-md`, profiles into DIR): hookd's CPU per
// delivered event for two builds, alternated, on a fixed amount of work (N single POSTs at C=64
// while delivering to one fast origin through a webhook created with defaults, or with the given
// cap; then the tail until all arrived). A fixed amount of work makes CPU time per event far less
// sensitive to other load on the machine than rates are. A profiling aid, not part of `bun run bench`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { API_KEY, postgresServerCpuSeconds, profileHookdInto, startHookd, useBinary } from "./hookd.ts";
import { closedLoop, eventData, openLoop } from "./load.ts";
import { createDatabase } from "./postgres.ts";
import { spawnReceiver } from "./receiver.ts";
import { median, sleep } from "./stats.ts";

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const profileAt = args.indexOf("--profile");
const postgresAt = args.indexOf("--postgres");
const postgresUrl = postgresAt >= 0 ? (args[postgresAt + 1] as string) : null;
if (profileAt >= 0) profileHookdInto(args[profileAt + 1] as string);
const binaries =
  profileAt >= 0 ? ["src"] : args.filter((a, i) => !a.startsWith("--") && !args[i - 1]?.startsWith("--"));
const rounds = flag("rounds", 3);
const events = flag("events", 20_000);
const cap = flag("cap", 8);
const rate = flag("rate", 0);
const receiver = await spawnReceiver();
const results = new Map<
  string,
  { cpu: number[]; server: number[]; rate: number[]; p50: number[]; p99: number[] }
>(binaries.map((b) => [b, { cpu: [], server: [], rate: [], p50: [], p99: [] }]));
try {
  for (let round = 0; round < rounds; round++) {
    for (const binary of binaries) {
      if (profileAt < 0) useBinary(binary);
      const dir = mkdtempSync(join(tmpdir(), "hookd-ab-"));
      const [port] = (await receiver.addOrigins(1, { kind: "fast" })) as [number];
      const database = postgresUrl
        ? await createDatabase(postgresUrl, String(process.pid), `abcpu_${round}`)
        : null;
      const hookd = await startHookd({
        dir,
        synchronous: "full",
        ...(database ? { postgresUrl: database.url } : {}),
      });
      try {
        const response = await fetch(`${hookd.url}/v1/webhooks`, {
          method: "POST",
          headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
          body: JSON.stringify({
            url: `http://127.0.0.1:${port}/w/0`,
            events: ["*"],
            ...(cap === 8 ? {} : { max_in_flight: cap }),
          }),
        });
        if (response.status !== 201) throw new Error(await response.text());
        await closedLoop({
          concurrency: 64,
          durationMs: 500,
          maxOps: 2000,
          send: (seq) => hookd.api.publish("bench.event", eventData(seq)),
        });
        await sleep(1000);
        await receiver.reset([port]);
        const cpu0 = hookd.cpuSeconds();
        const server0 = postgresUrl ? postgresServerCpuSeconds() : 0;
        const t0 = performance.now();
        const send = (seq: number) => hookd.api.publish("bench.event", eventData(seq));
        const load =
          rate > 0
            ? await openLoop({ rate, durationMs: 5000, maxInFlight: 1024, send }).then((r) => ({
                units: r.ok,
                unitsPerSecond: (r.ok * 1000) / r.elapsedMs,
              }))
            : await closedLoop({ concurrency: 64, durationMs: 60_000, maxOps: events, send });
        const end = performance.now() + 60_000;
        while ((await receiver.stats([port])).unique < load.units && performance.now() < end) await sleep(20);
        const cpu = hookd.cpuSeconds() - cpu0;
        const server = postgresUrl ? postgresServerCpuSeconds() - server0 : 0;
        const stats = await receiver.stats([port]);
        const delivered = stats.unique;
        results.get(binary)?.p50.push(stats.latency.p50);
        results.get(binary)?.p99.push(stats.latency.p99);
        const seconds = (performance.now() - t0) / 1000;
        results.get(binary)?.cpu.push((1e6 * cpu) / delivered);
        results.get(binary)?.server.push((1e6 * server) / delivered);
        results.get(binary)?.rate.push(load.unitsPerSecond);
        process.stdout.write(
          `${binary}: ${((1e6 * cpu) / delivered).toFixed(0)} µs/event${postgresUrl ? ` (server ${((1e6 * server) / delivered).toFixed(0)})` : ""}, ${Math.round(load.unitsPerSecond)} accepted/s, ${delivered}/${load.units} in ${seconds.toFixed(1)} s, p50 ${stats.latency.p50.toFixed(2)} ms, p99 ${stats.latency.p99.toFixed(2)} ms\n`,
        );
      } finally {
        await hookd.stop();
        await database?.drop();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  for (const [binary, r] of results)
    process.stdout.write(
      `${binary.padEnd(30)} median ${median(r.cpu).toFixed(0)} µs/event${postgresUrl ? ` (server ${median(r.server).toFixed(0)})` : ""}, ${Math.round(median(r.rate))} accepted/s, p50 ${median(r.p50).toFixed(2)} ms, p99 ${median(r.p99).toFixed(2)} ms\n`,
    );
} finally {
  await receiver.close();
}
process.exit(0);
