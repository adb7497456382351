// hookd as a child process, from source (`bun src/main.ts`) or as the compiled dist/hookd (built on
// demand): its output captured line by line, its address read from the "hookd listening" log line,
// and stopped by its own PID only. Its storage follows the pass (driver.ts): a SQLite file in its
// directory, or a fresh PostgreSQL database named in its config.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { parse } from "yaml";
import { chooseStorage, type TestDriver, type TestStorage } from "./driver.ts";
import { waitFor } from "./wait-for.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export const BINARY = join(ROOT, "dist", "hookd");

const BUILD_TIMEOUT_MS = 120_000;
const START_TIMEOUT_MS = 15_000;
export const EXIT_TIMEOUT_MS = 15_000;

/** Builds dist/hookd when it is missing or older than a source file, so the test runs today's code. */
export async function ensureBinary(): Promise<void> {
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= newestSourceMtime()) return;
  const build = Bun.spawn([process.execPath, join(ROOT, "scripts", "build.ts")], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
    timeout: BUILD_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  const [stderr, code] = await Promise.all([new Response(build.stderr).text(), build.exited]);
  if (code !== 0 || !existsSync(BINARY)) throw new Error(`bun scripts/build.ts failed (${code}): ${stderr}`);
}

/** The newest file of the server's source and of the console's (web/src, embedded in the binary). */
function newestSourceMtime(): number {
  let newest = 0;
  for (const src of [join(ROOT, "src"), join(ROOT, "web", "src")]) {
    for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
    }
  }
  return newest;
}

/**
 * Storage for a child hookd whose files live in `dir`: `dir/hookd.db`, or in the PostgreSQL pass (or
 * with `driver: "postgres"`) a fresh database, or `databaseUrl` for a second instance over one.
 * Write it into the child's config with driver.ts `storageYaml()`.
 */
export function childStorage(
  dir: string,
  options: { driver?: TestDriver; databaseUrl?: string } = {},
): Promise<TestStorage> {
  return chooseStorage({ sqlitePath: join(dir, "hookd.db"), ...options });
}

/**
 * The storage a child's config file names, as the file is now (after any edit by the test); a
 * relative SQLite path is the child's working directory's business.
 */
export function storageOfConfig(configPath: string): TestStorage {
  const config = (parse(readFileSync(configPath, "utf8")) ?? {}) as {
    storage?: { driver?: TestDriver; sqlite?: { path?: string }; postgres?: { url?: string } };
  };
  return {
    driver: config.storage?.driver ?? "sqlite",
    sqlitePath: config.storage?.sqlite?.path ?? "./data/hookd.db",
    databaseUrl: config.storage?.postgres?.url ?? null,
  };
}

export interface HookdProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** stdout, one JSON log line per entry. */
  lines: string[];
  stderr(): string;
  hasExited(): boolean;
  /** Waits for the "hookd listening" log line and returns its `url`; fails at once if hookd exits. */
  listening(): Promise<string>;
  /** Waits (bounded) for the exit and returns the exit code (null when killed by a signal). */
  exited(timeoutMs?: number): Promise<number | null>;
  /** Sends a signal and waits (bounded) for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<HookdProcess>();

/**
 * Starts hookd with `args`, from `src/main.ts` (run by this Bun) or as dist/hookd, with only PATH and
 * HOME (plus `env`) in its environment.
 */
export function startHookd(
  from: "source" | "binary",
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): HookdProcess {
  const command = from === "source" ? [process.execPath, join(ROOT, "src", "main.ts")] : [BINARY];
  const proc = Bun.spawn([...command, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...options.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const lines: string[] = [];
  let stderrText = "";
  collect(proc.stdout, (text) => {
    lines.push(...text.split("\n").filter(Boolean));
  });
  collect(proc.stderr, (text) => {
    stderrText += text;
  });
  const hasExited = () => proc.exitCode !== null || proc.signalCode !== null;

  const handle: HookdProcess = {
    proc,
    lines,
    stderr: () => stderrText,
    hasExited,
    async listening() {
      const found = await waitFor(
        () => (hasExited() ? "exited" : lines.find((line) => line.includes('"msg":"hookd listening"'))),
        { timeoutMs: START_TIMEOUT_MS, what: "the 'hookd listening' log line" },
      );
      if (found === "exited") {
        throw new Error(`hookd exited (${proc.exitCode ?? proc.signalCode}) before listening: ${stderrText}`);
      }
      return (JSON.parse(found) as { url: string }).url;
    },
    async exited(timeoutMs = EXIT_TIMEOUT_MS) {
      await waitFor(hasExited, { timeoutMs, what: `hookd (pid ${proc.pid}) to exit` });
      running.delete(handle);
      return proc.exitCode;
    },
    async stop(signal = "SIGTERM") {
      if (!hasExited()) proc.kill(signal);
      return handle.exited();
    },
  };
  running.add(handle);
  return handle;
}

/** `hookd serve --config <configPath>` from source: what the crash, shutdown and reliability tests run. */
export function serveFromSource(configPath: string, cwd: string): HookdProcess {
  return startHookd("source", ["serve", "--config", configPath], { cwd });
}

/** For afterEach/finally: SIGKILLs, by PID, every process started here that still runs. */
export async function killStarted(): Promise<void> {
  for (const handle of [...running]) {
    if (!handle.hasExited()) handle.proc.kill("SIGKILL");
    await Promise.race([handle.proc.exited, Bun.sleep(EXIT_TIMEOUT_MS)]);
    running.delete(handle);
  }
}

function collect(stream: ReadableStream<Uint8Array>, onText: (text: string) => void): void {
  const decoder = new TextDecoder();
  let partial = "";
  void (async () => {
    for await (const chunk of stream) {
      const text = partial + decoder.decode(chunk, { stream: true });
      const end = text.lastIndexOf("\n") + 1;
      partial = text.slice(end);
      if (end > 0) onText(text.slice(0, end));
    }
    if (partial) onText(partial);
  })();
}
