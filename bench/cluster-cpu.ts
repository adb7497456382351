// `bun bench/cluster-cpu.ts --postgres URL [--instances 1,3,1,3] [--warmup-ms N] [--ms N]`: where
// the CPU of N instances over one PostgreSQL database goes, per accepted event, next to the same
// with one instance: single POSTs at C = 64 spread round-robin (as the ingest scenario's PostgreSQL
// rows), to a subscription whose origin holds every request (the dispatcher idle). For each run, on
// a new database: events/s; hookd's CPU per event by thread (the main JavaScript thread, JSC's JIT
// worker, the rest), from /proc/<pid>/task/*/stat of every instance; the server's CPU per event
// (every process named postgres on this machine); the WAL written per event and the WAL flushes
// (pg_stat_wal), i.e. events per commit flush; and how many of the machine's cores all of that
// kept busy. A profiling aid for BENCHMARKS.md, not part of `bun run bench`.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import {
  createApi,
  ensureBinary,
  type Hookd,
  postgresServerCpuSeconds,
  startHookd,
  statCpuSeconds,
} from "./hookd.ts";
import { closedLoop, eventData } from "./load.ts";
import { createDatabase } from "./postgres.ts";

const args = process.argv.slice(2);
const option = (name: string) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
};
const postgresUrl = option("postgres");
if (!postgresUrl) {
  console.error(
    "usage: bun bench/cluster-cpu.ts --postgres URL [--instances 1,3,1,3] [--warmup-ms N] [--ms N]",
  );
  process.exit(2);
}
const order = (option("instances") ?? "1,3,1,3").split(",").map(Number);
const warmupMs = Number(option("warmup-ms") ?? 3000);
const measureMs = Number(option("ms") ?? 5000);

/** CPU seconds of each thread of `pid`, the main thread as "main", others by name without digits. */
function threadCpu(pid: number, into: Map<string, number>, sign: 1 | -1): void {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let name: string;
    try {
      name = tid === String(pid) ? "main" : readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
    } catch {
      continue; // a thread that ended meanwhile
    }
    const cpu = statCpuSeconds(`/proc/${pid}/task/${tid}/stat`);
    if (!Number.isFinite(cpu)) continue;
    const key = name.replace(/[0-9]+$/, "");
    into.set(key, (into.get(key) ?? 0) + sign * cpu);
  }
}

interface WalMark {
  lsn: string;
  syncs: number;
}
const walMark = async (sql: SQL): Promise<WalMark> => {
  const [row] = (await sql.unsafe(
    "SELECT pg_current_wal_lsn()::text AS lsn, wal_sync::bigint AS syncs FROM pg_stat_wal",
  )) as { lsn: string; syncs: string }[];
  return { lsn: row!.lsn, syncs: Number(row!.syncs) };
};
const walSince = async (sql: SQL, mark: WalMark) => {
  const [row] = (await sql.unsafe(
    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint AS bytes, wal_sync::bigint AS syncs FROM pg_stat_wal",
    [mark.lsn],
  )) as { bytes: string; syncs: string }[];
  return { bytes: Number(row!.bytes), syncs: Number(row!.syncs) - mark.syncs };
};

await ensureBinary((line) => console.error(line));
// The subscriber's origin holds every request: the instances only ingest.
const hold = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise<Response>(() => {}) });
const admin = new SQL({ url: postgresUrl, max: 1 });
try {
  for (const [round, n] of order.entries()) {
    const database = await createDatabase(postgresUrl, `cpu${process.pid}`, `r${round}_x${n}`);
    const dirs: string[] = [];
    const instances: Hookd[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const dir = mkdtempSync(join(tmpdir(), "hookd-cluster-cpu-"));
        dirs.push(dir);
        instances.push(await startHookd({ dir, synchronous: "full", postgresUrl: database.url }));
      }
      const apis = instances.map((h) => createApi(h.url));
      await apis[0]!.createWebhook({ url: `http://127.0.0.1:${hold.port}/w/0`, timeout_seconds: 60 });
      let next = 0;
      const send = (seq: number) => apis[next++ % apis.length]!.publish("bench.event", eventData(seq));
      // Each instance about as warm as one alone: the warm-up is per instance.
      await closedLoop({ concurrency: 64, durationMs: warmupMs * n, maxOps: 10_000_000, send });
      const threads = new Map<string, number>();
      for (const h of instances) threadCpu(h.pid, threads, -1);
      const server0 = postgresServerCpuSeconds();
      const wal0 = await walMark(admin);
      const t0 = performance.now();
      const load = await closedLoop({ concurrency: 64, durationMs: measureMs, maxOps: 10_000_000, send });
      const seconds = (performance.now() - t0) / 1000;
      const wal = await walSince(admin, wal0);
      const server = postgresServerCpuSeconds() - server0;
      for (const h of instances) threadCpu(h.pid, threads, 1);
      const events = Math.max(1, load.units);
      const perEvent = (s: number) => `${Math.round((s / events) * 1e6)}`;
      const hookd = [...threads.values()].reduce((a, b) => a + b, 0);
      const split = [...threads]
        .filter(([, s]) => s / events >= 1e-6)
        .sort((a, b) => b[1] - a[1])
        .map(([name, s]) => `${name} ${perEvent(s)}`)
        .join(", ");
      console.log(
        `×${n}: ${Math.round(load.unitsPerSecond)} ev/s; CPU µs an event: hookd ${perEvent(hookd)} (${split}), ` +
          `server ${perEvent(server)}; WAL ${Math.round(wal.bytes / events)} B an event, ` +
          `${wal.syncs} flushes (${(events / Math.max(1, wal.syncs)).toFixed(1)} events each); ` +
          `${((hookd + server) / seconds).toFixed(2)} cores busy`,
      );
    } finally {
      await Promise.all(instances.map((h) => h.stop().catch(() => {})));
      await database.drop();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  hold.stop(true);
  await admin.close({ timeout: 1 }).catch(() => {});
}
process.exit(0);
