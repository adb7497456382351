// Running the compiled dist/hookd for the bench: a temp directory and database, a bench config,
// the bound port (the config says port 0), readiness, /proc figures (RSS), the API calls the
// scenarios need, and a stop that always ends in SIGKILL if SIGTERM is not enough.
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { pollUntil, sleep } from "./stats.ts";

export const ROOT = join(import.meta.dir, "..");
export const DEFAULT_BINARY = join(ROOT, "dist", "hookd");
/** The executable under test: dist/hookd unless run.ts was given --binary. */
export let BINARY = DEFAULT_BINARY;

export function useBinary(path: string): void {
  BINARY = path;
}
export const API_KEY = "bench-admin-key-0123456789abcdef";

/** Builds dist/hookd when it is missing; warns when a source file is newer than it. */
export async function ensureBinary(log: (line: string) => void): Promise<void> {
  let built: number | null = null;
  try {
    built = statSync(BINARY).mtimeMs;
  } catch {}
  if (built === null) {
    log("dist/hookd is missing: building it (bun scripts/build.ts)");
    const build = Bun.spawn([process.execPath, join(ROOT, "scripts", "build.ts")], {
      cwd: ROOT,
      stdout: "inherit",
      stderr: "inherit",
    });
    const code = await Promise.race([build.exited, sleep(300_000).then(() => -1)]);
    if (code !== 0) {
      build.kill("SIGKILL");
      throw new Error(`the build failed (exit ${code})`);
    }
    return;
  }
  const newer = newestMtime(join(ROOT, "src"));
  if (newer > built)
    log("note: src/ has changes newer than dist/hookd; run `npm run build` to bench the current code");
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

export interface HookdOptions {
  dir: string;
  synchronous: "full" | "normal";
  /** Extra keys for the `delivery:` section. */
  delivery?: Record<string, string | number | boolean>;
  /** A database to open instead of `<dir>/hookd.db`. */
  dbPath?: string;
  /** Run on PostgreSQL at this URL instead of SQLite (`synchronous` and `dbPath` then do not apply). */
  postgresUrl?: string;
  readyTimeoutMs?: number;
}

export interface Hookd extends SpawnedServer {
  dbPath: string;
  api: HookdApi;
}

export function benchConfig(options: HookdOptions): string {
  const delivery = {
    allow_http: true,
    allow_private_networks: true,
    ...options.delivery,
  };
  return [
    "server:",
    "  host: 127.0.0.1",
    "  port: 0",
    "storage:",
    ...(options.postgresUrl
      ? ["  driver: postgres", "  postgres:", `    url: ${options.postgresUrl}`]
      : [
          "  sqlite:",
          `    path: ${options.dbPath ?? join(options.dir, "hookd.db")}`,
          `    synchronous: ${options.synchronous}`,
        ]),
    "auth:",
    "  keys:",
    `    - { name: bench, key: ${API_KEY}, scopes: ["*"] }`,
    "rate_limits:",
    "  read: 1000000",
    "  write: 1000000",
    "  ingest: 10000000",
    "delivery:",
    ...Object.entries(delivery).map(([k, v]) => `  ${k}: ${v}`),
    "shutdown_grace: 1s",
    "log:",
    "  level: warn",
    "",
  ].join("\n");
}

let profileDir: string | null = null;
let configSerial = 0;

/**
 * --profile: run hookd from source under `bun --cpu-prof-md` instead of the binary, writing one
 * markdown CPU profile per daemon into `dir` when it exits (start-up figures then mean little).
 */
export function profileHookdInto(dir: string): void {
  profileDir = dir;
}

export async function startHookd(options: HookdOptions): Promise<Hookd> {
  const configPath = join(options.dir, `hookd-${Date.now()}-${++configSerial}.yaml`);
  await Bun.write(configPath, benchConfig(options));
  const command = profileDir
    ? [process.execPath, "--cpu-prof-md", `--cpu-prof-dir=${profileDir}`, join(ROOT, "src", "main.ts")]
    : [BINARY];
  const server = await spawnServer(
    [...command, "serve", "--config", configPath],
    options.dir,
    options.readyTimeoutMs ?? 60_000,
  );
  return {
    ...server,
    dbPath: options.dbPath ?? join(options.dir, "hookd.db"),
    api: createApi(server.url),
  };
}

export interface SpawnedServer {
  url: string;
  pid: number;
  /** Spawn until /readyz answered 200, in ms. */
  startToReadyMs: number;
  memory(): { rss: number; hwm: number };
  /** CPU time (user + system, all threads) the process has used, in seconds. */
  cpuSeconds(): number;
  logTail(): string[];
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
}

/**
 * Spawns a server that listens on one TCP port of its choosing and answers GET /readyz; resolves
 * once /readyz answered 200. The port is read from /proc (log.level warn hides hookd's
 * "hookd listening" line), polled every millisecond, so start-to-ready is within ~1 ms.
 */
export async function spawnServer(argv: string[], cwd: string, timeoutMs: number): Promise<SpawnedServer> {
  const spawned = performance.now();
  const child = Bun.spawn(argv, { cwd, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const tail: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      const lines = (rest + decoder.decode(chunk)).split("\n");
      rest = lines.pop() ?? "";
      tail.push(...lines.filter(Boolean));
      if (tail.length > 200) tail.splice(0, tail.length - 200);
    }
  };
  void collect(child.stdout).catch(() => {});
  void collect(child.stderr).catch(() => {});

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const exited = await Promise.race([child.exited, sleep(5000).then(() => null)]);
    if (exited === null) {
      child.kill("SIGKILL");
      await Promise.race([child.exited, sleep(2000)]);
    }
  };

  try {
    const port = await pollUntil(
      `${argv[0]} to listen`,
      () => {
        if (child.exitCode !== null)
          throw new Error(`${argv[0]} exited (${child.exitCode}): ${tail.join("\n")}`);
        return listeningPort(child.pid);
      },
      timeoutMs,
      1,
    );
    const url = `http://127.0.0.1:${port}`;
    await pollUntil(
      `${url}/readyz`,
      async () => {
        const response = await fetch(`${url}/readyz`).catch(() => null);
        if (!response) return undefined;
        await response.arrayBuffer();
        return response.status === 200 ? true : undefined;
      },
      timeoutMs,
      1,
    );
    return {
      url,
      pid: child.pid,
      startToReadyMs: performance.now() - spawned,
      memory: () => processMemory(child.pid),
      cpuSeconds: () => processCpuSeconds(child.pid),
      logTail: () => [...tail],
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The TCP port process `pid` listens on (IPv4 or IPv6), or undefined while it has none. */
export function listeningPort(pid: number): number | undefined {
  let inodes: Set<string>;
  try {
    inodes = new Set(
      readdirSync(`/proc/${pid}/fd`)
        .map((fd) => {
          try {
            return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
          } catch {
            return undefined;
          }
        })
        .filter((inode): inode is string => inode !== undefined),
    );
  } catch {
    return undefined;
  }
  for (const table of ["tcp", "tcp6"]) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is "HEXIP:HEXPORT"; st 0A is LISTEN; the inode is column 9.
      if (cols[3] === "0A" && cols[9] && inodes.has(cols[9]))
        return Number.parseInt(cols[1]?.split(":")[1] ?? "", 16);
    }
  }
  return undefined;
}

/** utime + stime from /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s). */
export function processCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** utime + stime of a stat file of /proc (a process's, or a thread's under /proc/<pid>/task). */
export function statCpuSeconds(path: string): number {
  try {
    const stat = readFileSync(path, "utf8");
    // The command name (field 2) may contain spaces; count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds of every PostgreSQL process on this machine (the benched server is local). */
export function postgresServerCpuSeconds(): number {
  let total = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "postgres") continue;
    } catch {
      continue;
    }
    const cpu = processCpuSeconds(Number(pid));
    if (Number.isFinite(cpu)) total += cpu;
  }
  return total;
}

export function processMemory(pid: number): { rss: number; hwm: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
    return { rss: kb("VmRSS") * 1024, hwm: kb("VmHWM") * 1024 };
  } catch {
    return { rss: Number.NaN, hwm: Number.NaN };
  }
}

export interface HookdApi {
  createWebhook(fields: Record<string, unknown>): Promise<string>;
  /** POST /v1/events: 1 when accepted (202), else 0. */
  publish(type: string, data: Record<string, unknown>): Promise<number>;
  /** POST /v1/events/batch: the number of events accepted. */
  publishBatch(events: { type: string; data: Record<string, unknown> }[]): Promise<number>;
}

export function createApi(url: string): HookdApi {
  const headers = { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" };
  const post = (path: string, body: unknown) =>
    fetch(url + path, { method: "POST", headers, body: JSON.stringify(body), keepalive: true });
  return {
    async createWebhook(fields) {
      const response = await post("/v1/webhooks", { name: "bench", events: ["*"], ...fields });
      const body = (await response.json()) as { id?: string };
      if (response.status !== 201 || !body.id)
        throw new Error(`creating a webhook: ${response.status} ${JSON.stringify(body)}`);
      return body.id;
    },
    async publish(type, data) {
      const response = await post("/v1/events", { type, data });
      await response.arrayBuffer();
      return response.status === 202 ? 1 : 0;
    },
    async publishBatch(events) {
      const response = await post("/v1/events/batch", { events });
      await response.arrayBuffer();
      return response.status === 202 ? events.length : 0;
    },
  };
}
