// `bun run bench [--quick] [--only a,b] [--receiver process|in-process]`: measures the compiled
// dist/hookd against this machine's ceiling in the same run. Progress goes to stderr; the markdown
// table to stdout; everything (rows, raw figures, machine) to bench/results/<timestamp>.json.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { makeContext, type Scenario } from "./context.ts";
import { BINARY, ensureBinary, profileHookdInto, ROOT, useBinary } from "./hookd.ts";
import { closeAdmin, POSTGRES_URL, POSTGRES_URL_SOURCE, reachable, serverInfo } from "./postgres.ts";
import { createReceiver, type Receiver, spawnReceiver } from "./receiver.ts";
import { markdownTable, type Row, row } from "./report.ts";
import { backlog } from "./scenarios/backlog.ts";
import { ceiling } from "./scenarios/ceiling.ts";
import { delivery } from "./scenarios/delivery.ts";
import { fanOut } from "./scenarios/fan-out.ts";
import { fifo } from "./scenarios/fifo.ts";
import { footprint } from "./scenarios/footprint.ts";
import { ingest } from "./scenarios/ingest.ts";
import { isolation } from "./scenarios/isolation.ts";
import { latency } from "./scenarios/latency.ts";
import { shipped } from "./scenarios/shipped.ts";
import { sleep } from "./stats.ts";

const SCENARIOS: Scenario[] = [
  shipped,
  ceiling,
  ingest,
  delivery,
  fifo,
  latency,
  fanOut,
  isolation,
  backlog,
  footprint,
];

interface Args {
  quick: boolean;
  only: string[] | null;
  inProcessReceiver: boolean;
  profile: boolean;
  binary: string | null;
  driver: "sqlite" | "postgres" | "both" | null;
  instances: number[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    quick: false,
    only: null,
    inProcessReceiver: false,
    profile: false,
    binary: null,
    driver: null,
    instances: [1, 3],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--quick") args.quick = true;
    else if (arg === "--profile") args.profile = true;
    else if (arg === "--binary" || arg.startsWith("--binary=")) {
      const value = arg.includes("=") ? arg.slice(9) : argv[++i];
      if (!value) throw new Error("--binary needs a path");
      args.binary = resolve(value);
    } else if (arg === "--only" || arg.startsWith("--only=")) {
      const value = arg.includes("=") ? arg.slice(7) : argv[++i];
      if (!value) throw new Error("--only needs a scenario name");
      args.only = value.split(",").map((s) => s.trim());
    } else if (arg === "--receiver" || arg.startsWith("--receiver=")) {
      const value = arg.includes("=") ? arg.slice(11) : argv[++i];
      if (value !== "process" && value !== "in-process")
        throw new Error("--receiver is process or in-process");
      args.inProcessReceiver = value === "in-process";
    } else if (arg === "--driver" || arg.startsWith("--driver=")) {
      const value = arg.includes("=") ? arg.slice(9) : argv[++i];
      if (value !== "sqlite" && value !== "postgres" && value !== "both")
        throw new Error("--driver is sqlite, postgres or both");
      args.driver = value;
    } else if (arg === "--instances" || arg.startsWith("--instances=")) {
      const value = arg.includes("=") ? arg.slice(12) : argv[++i];
      const counts = (value ?? "").split(",").map((s) => Number(s.trim()));
      if (counts.length === 0 || counts.some((n) => !Number.isInteger(n) || n < 1 || n > 8))
        throw new Error("--instances is a list of instance counts from 1 to 8, e.g. 1,3");
      args.instances = [...new Set(counts)].sort((a, b) => a - b);
    } else if (arg === "--help" || arg === "-h") {
      process.stdout.write(
        `usage: bun run bench [--quick] [--only ${SCENARIOS.map((s) => s.name).join("|")}[,...]] [--driver sqlite|postgres|both] [--instances 1,3] [--receiver process|in-process] [--profile] [--binary PATH]\n`,
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  for (const name of args.only ?? []) {
    if (!SCENARIOS.some((s) => s.name === name)) throw new Error(`no scenario named ${name}`);
  }
  return args;
}

/** The chosen scenarios and what they compare against, in the canonical order. */
function selection(only: string[] | null): Scenario[] {
  if (!only) return SCENARIOS;
  const wanted = new Set<string>();
  const add = (name: string) => {
    if (wanted.has(name)) return;
    wanted.add(name);
    for (const need of SCENARIOS.find((s) => s.name === name)?.needs ?? []) add(need);
  };
  for (const name of only) add(name);
  return SCENARIOS.filter((s) => wanted.has(s.name));
}

export function machine(): Record<string, unknown> {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  let commit = "";
  try {
    commit = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: ROOT }).stdout.toString().trim();
  } catch {}
  return {
    nproc: cpus().length,
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    bun: Bun.version,
    commit,
    loadavg_at_start: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/**
 * --driver, or by default both when a PostgreSQL answers at HOOKD_BENCH_POSTGRES_URL (else
 * HOOKD_TEST_POSTGRES_URL) and SQLite alone, with a printed line, when none does.
 */
async function chooseDrivers(
  wanted: Args["driver"],
  log: (line: string) => void,
): Promise<{ drivers: ("sqlite" | "postgres")[]; postgresUrl: string | null }> {
  if (wanted === "sqlite") return { drivers: ["sqlite"], postgresUrl: null };
  const check = POSTGRES_URL ? await reachable(POSTGRES_URL) : { ok: false, why: "neither is set" };
  if (!check.ok || !POSTGRES_URL) {
    const why = `no PostgreSQL at HOOKD_BENCH_POSTGRES_URL or HOOKD_TEST_POSTGRES_URL (${check.why})`;
    if (wanted) throw new Error(`--driver ${wanted}: ${why}`);
    log(
      `${why}: SQLite only (set HOOKD_BENCH_POSTGRES_URL=postgres://user@127.0.0.1:5432/db to add PostgreSQL rows)`,
    );
    return { drivers: ["sqlite"], postgresUrl: null };
  }
  log(
    `PostgreSQL from ${POSTGRES_URL_SOURCE}: ${new URL(POSTGRES_URL).host}; a new database per scenario run`,
  );
  return {
    drivers: wanted === "postgres" ? ["postgres"] : ["sqlite", "postgres"],
    postgresUrl: POSTGRES_URL,
  };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  const started = performance.now();
  const startedAt = new Date();
  if (args.binary) useBinary(args.binary);
  else await ensureBinary(log);
  if (args.profile) {
    const dir = join(ROOT, "bench", "results", `profiles-${startedAt.toISOString().replace(/[:.]/g, "-")}`);
    mkdirSync(dir, { recursive: true });
    profileHookdInto(dir);
    log(`--profile: hookd runs from src/ under bun --cpu-prof-md; profiles in ${dir}`);
  }
  const tmp = mkdtempSync(join(tmpdir(), "hookd-bench-"));
  const runId = Math.random().toString(36).slice(2, 8);
  let receiver: Receiver | null = null;
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  const shared = new Map<string, number>();
  const info = machine();
  const { drivers, postgresUrl } = await chooseDrivers(args.driver, log);
  if (postgresUrl) info.postgres = await serverInfo(postgresUrl).catch(() => ({}));
  try {
    receiver = args.inProcessReceiver ? createReceiver() : await spawnReceiver();
    log(
      `${args.quick ? "quick" : "full"} run; receiver ${args.inProcessReceiver ? "in-process" : `pid ${(receiver as { pid?: number }).pid}`}; temp ${tmp}`,
    );
    for (const scenario of selection(args.only)) {
      const pgCap = postgresUrl ? scenario.postgresCapMs : undefined;
      const capMs =
        (args.quick ? scenario.capMs.quick : scenario.capMs.full) +
        (pgCap ? (args.quick ? pgCap.quick : pgCap.full) : 0);
      const ctx = makeContext(
        {
          quick: args.quick,
          drivers,
          postgresUrl,
          pgInstances: args.instances,
          receiver,
          tmp,
          runId,
          shared,
          rows,
          details,
          log: (l) => log(`${scenario.name}: ${l}`),
        },
        capMs,
      );
      const t0 = performance.now();
      log(`${scenario.name}: start (cap ${capMs / 1000} s)`);
      const running = scenario.run(ctx);
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          running,
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`hard cap of ${capMs / 1000} s reached`)), capMs);
          }),
        ]);
      } catch (error) {
        const message = (error as Error).message ?? String(error);
        log(`${scenario.name}: FAILED: ${message}`);
        rows.push(
          row({
            scenario: scenario.name,
            figure: "error",
            value: Number.NaN,
            unit: "",
            note: message.slice(0, 300),
          }),
        );
        // Let the scenario's own finally blocks stop what it started (its loops are bounded too).
        await Promise.race([running.catch(() => {}), sleep(15_000)]);
      } finally {
        clearTimeout(timer);
      }
      log(`${scenario.name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    await receiver?.close().catch(() => {});
    await closeAdmin();
    rmSync(tmp, { recursive: true, force: true });
  }
  const elapsedS = (performance.now() - started) / 1000;
  const table = markdownTable(rows);
  process.stdout.write(`\n${table}\n\n`);
  const resultsDir = join(ROOT, "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  await Bun.write(
    file,
    `${JSON.stringify(
      {
        started_at: startedAt.toISOString(),
        mode: args.quick ? "quick" : "full",
        only: args.only,
        drivers,
        postgres_instances: postgresUrl ? args.instances : [],
        elapsed_seconds: Math.round(elapsedS * 10) / 10,
        binary: BINARY,
        machine: { ...info, loadavg_at_end: loadavg().map((l) => Math.round(l * 100) / 100) },
        rows,
        details,
        table,
      },
      (_key, value) => (typeof value === "number" && !Number.isFinite(value) ? null : value),
      2,
    )}\n`,
  );
  log(`finished in ${elapsedS.toFixed(1)} s; results in ${file}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`[bench] fatal: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
