// One or more hookd processes over one database, as the scenarios run them. On SQLite: one
// process on a database file of its own. On PostgreSQL: a fresh database (CREATE DATABASE) and N
// processes over it (the first one migrates it, the others start once it is ready); the load is
// spread over them round-robin, as a load balancer would; stop() ends every process and drops the
// database (DROP DATABASE … WITH (FORCE)). Also a sampler of PostgreSQL wait events
// (pg_stat_activity) to say what hookd's sessions wait on while a figure is measured.
import { SQL } from "bun";
import type { Context } from "./context.ts";
import {
  createApi,
  type Hookd,
  type HookdApi,
  type HookdOptions,
  processCpuSeconds,
  startHookd,
} from "./hookd.ts";
import { type BenchDatabase, createDatabase } from "./postgres.ts";
import { row, type Target } from "./report.ts";
import { sleep } from "./stats.ts";

export type Driver = "sqlite" | "postgres";

export const DRIVER_LABEL: Record<Driver, string> = { sqlite: "SQLite", postgres: "PostgreSQL" };

export interface Cluster {
  driver: Driver;
  instances: Hookd[];
  /** The first instance's API (subscriptions, one-off calls). */
  api: HookdApi;
  /** Round-robin over the instances. */
  publish: HookdApi["publish"];
  publishBatch: HookdApi["publishBatch"];
  database: BenchDatabase | null;
  /** CPU seconds of all instances together. */
  cpuSeconds(): number;
  /** Summed RSS and peak RSS of all instances. */
  memory(): { rss: number; hwm: number };
  stop(): Promise<void>;
}

/** "1 instance", "3 instances". */
export const instancesLabel = (n: number) => `${n} instance${n === 1 ? "" : "s"}`;

export async function startCluster(
  ctx: Context,
  driver: Driver,
  count: number,
  tag: string,
  options: Omit<HookdOptions, "dir" | "postgresUrl"> = { synchronous: "full" },
): Promise<Cluster> {
  if (driver === "sqlite" && count !== 1) throw new Error("SQLite runs one instance");
  let database: BenchDatabase | null = null;
  const instances: Hookd[] = [];
  const stop = async () => {
    await Promise.all(instances.map((h) => h.stop().catch(() => {})));
    await database?.drop();
  };
  try {
    if (driver === "postgres") {
      if (!ctx.postgresUrl) throw new Error("no PostgreSQL for this run");
      database = await createDatabase(ctx.postgresUrl, ctx.runId, tag);
    }
    const start = () =>
      startHookd({
        ...options,
        dir: ctx.newDir(`${tag}-${instances.length}`),
        ...(database ? { postgresUrl: database.url } : {}),
      });
    // The first instance migrates the new database; the others start on a migrated one.
    instances.push(await start());
    while (instances.length < count) instances.push(await start());
  } catch (error) {
    await stop();
    throw error;
  }
  const apis = instances.map((h) => createApi(h.url));
  let next = 0;
  const pick = () => apis[next++ % apis.length] as HookdApi;
  return {
    driver,
    instances,
    api: apis[0] as HookdApi,
    publish: (type, data) => pick().publish(type, data),
    publishBatch: (events) => pick().publishBatch(events),
    database,
    cpuSeconds: () => instances.reduce((s, h) => s + h.cpuSeconds(), 0),
    memory: () =>
      instances.reduce(
        (m, h) => {
          const x = h.memory();
          return { rss: m.rss + x.rss, hwm: m.hwm + x.hwm };
        },
        { rss: 0, hwm: 0 },
      ),
    stop,
  };
}

export interface WaitSample {
  /** Samples taken (every `everyMs`). */
  samples: number;
  /** Active hookd sessions seen per sample, on average. */
  activeMean: number;
  /**
   * Sessions idle inside a transaction per sample, on average: a transaction open while hookd
   * works between its statements (or the next statement is on its way).
   */
  idleInTransactionMean: number;
  /**
   * CPU of the PostgreSQL backends serving hookd in this database while sampled, in % of one core
   * (from /proc/<pid>/stat of each backend, first to last sight; NaN when /proc does not show them).
   */
  backendCpuPercent: number;
  /**
   * "wait_event_type:wait_event  statement" (or "Client:idle in transaction, after  statement")
   * → share of the samples of sessions active or idle in a transaction, largest first.
   */
  top: { what: string; share: number }[];
}

/**
 * Samples pg_stat_activity of `database` every `everyMs` until stopped: what hookd's sessions
 * inside a statement wait on ("CPU" when not waiting), and after which statement they sit idle in
 * a transaction (hookd working between two statements of one transaction). One extra connection
 * and one small query per sample; `stop()` answers the summary.
 */
export function sampleWaits(
  database: BenchDatabase | null,
  everyMs = 25,
): { stop(): Promise<WaitSample | null> } {
  if (!database) return { stop: async () => null };
  const sql = new SQL({ url: database.url, max: 1, idleTimeout: 5, connectionTimeout: 5 });
  const counts = new Map<string, number>();
  let samples = 0;
  let active = 0;
  let idleInTx = 0;
  let running = true;
  const t0 = performance.now();
  const cpu = new Map<number, { first: number; last: number }>();
  const loop = (async () => {
    const end = performance.now() + 600_000;
    while (running && performance.now() < end) {
      try {
        const rows = (await sql.unsafe(
          `SELECT pid, state,
             CASE WHEN state = 'idle in transaction' THEN 'Client:idle in transaction, after'
               ELSE coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, '-') END || '  ' ||
             left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS w
           FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = 'hookd'`,
        )) as { pid: number; state: string; w: string }[];
        samples++;
        for (const r of rows) {
          const seconds = processCpuSeconds(Number(r.pid));
          const seen = cpu.get(Number(r.pid));
          if (Number.isFinite(seconds)) {
            if (seen) seen.last = seconds;
            else cpu.set(Number(r.pid), { first: seconds, last: seconds });
          }
          if (r.state === "idle in transaction") idleInTx++;
          else if (r.state !== "active" || r.w.includes("  LISTEN")) continue;
          else active++;
          counts.set(r.w, (counts.get(r.w) ?? 0) + 1);
        }
      } catch {
        // the database went away (the scenario ended): stop sampling
        break;
      }
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await sql.close({ timeout: 0 }).catch(() => {});
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      const elapsed = (performance.now() - t0) / 1000;
      const used = [...cpu.values()].reduce((a, c) => a + (c.last - c.first), 0);
      return {
        samples,
        activeMean: samples ? active / samples : 0,
        idleInTransactionMean: samples ? idleInTx / samples : 0,
        backendCpuPercent: cpu.size ? (100 * used) / elapsed : Number.NaN,
        top: [...counts]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 12)
          .map(([what, n]) => ({ what, share: Math.round((1000 * n) / Math.max(1, total)) / 1000 })),
      };
    },
  };
}

/** "62% Lock:tuple SELECT id FROM webhooks …; 20% IO:WALSync COMMIT" (the top `n`). */
export function describeWaits(waits: WaitSample | null, n = 3): string {
  if (!waits || waits.top.length === 0) return "";
  const cpu = Number.isFinite(waits.backendCpuPercent)
    ? `PostgreSQL backends at ${Math.round(waits.backendCpuPercent)}% CPU, `
    : "";
  return `${cpu}${waits.activeMean.toFixed(1)} active, ${waits.idleInTransactionMean.toFixed(1)} idle in transaction; ${waits.top
    .slice(0, n)
    .map((t) => `${Math.round(t.share * 100)}% ${t.what}`)
    .join("; ")}`;
}

export interface PostgresResult {
  instances: number;
  value: number;
  note?: string;
}

/**
 * The rows of one PostgreSQL figure: one per instance count, each next to the SQLite figure of
 * this run (`vsSqlite`: a target on that ratio; `valueTarget`: a target on the figure itself), and
 * for each count above 1 a row against the single instance (`scaling`: the target that N
 * instances together do at least what one does).
 */
export function postgresRows(
  ctx: Context,
  o: {
    scenario: string;
    figure: string;
    unit: string;
    results: PostgresResult[];
    sqlite: number | null | undefined;
    sqliteOf?: string;
    vsSqlite?: Target | null;
    valueTarget?: Target | null;
    scaling?: boolean;
  },
): void {
  const sqlite = o.sqlite ?? null;
  const one = o.results.find((r) => r.instances === 1);
  for (const r of o.results) {
    const notes = [r.note, sqlite === null ? "no SQLite figure in this run" : undefined].filter(Boolean);
    ctx.rows.push(
      row({
        scenario: o.scenario,
        figure: `PostgreSQL ×${r.instances}: ${o.figure}`,
        value: r.value,
        unit: o.unit,
        ceiling: sqlite,
        ceilingOf: o.sqliteOf ?? "SQLite, the same figure in this run",
        target: o.valueTarget ?? (sqlite === null ? null : (o.vsSqlite ?? null)),
        ...(notes.length ? { note: notes.join("; ") } : {}),
      }),
    );
  }
  if (!o.scaling || !one) return;
  for (const r of o.results) {
    if (r.instances === 1) continue;
    ctx.rows.push(
      row({
        scenario: o.scenario,
        figure: `PostgreSQL ×${r.instances} vs ×1: ${o.figure}`,
        value: r.value,
        unit: o.unit,
        ceiling: one.value,
        ceilingOf: `one instance on PostgreSQL, the same figure in this run (${instancesLabel(r.instances)} over one database)`,
        target: { on: "ratio", op: ">=", bound: 1 },
      }),
    );
  }
}
