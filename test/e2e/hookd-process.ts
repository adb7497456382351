// The compiled executable as a child process: built on demand, its output captured line by line, its
// address read from the "hookd listening" log line, and stopped by its own PID only.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { waitFor } from "../support/wait-for.ts";

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

function newestSourceMtime(): number {
  const src = join(ROOT, "src");
  let newest = 0;
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

export interface HookdProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** stdout, one JSON log line per entry. */
  stdoutLines: string[];
  stderr(): string;
  /** Waits for the "hookd listening" log line and returns its `url`; fails at once if hookd exits. */
  listening(): Promise<string>;
  /** Sends a signal and waits (bounded) for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<HookdProcess>();

/** Starts dist/hookd with only PATH and HOME (plus `env`) in its environment. */
export function startHookd(
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): HookdProcess {
  const proc = Bun.spawn([BINARY, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...options.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const stdoutLines: string[] = [];
  let stderrText = "";
  collect(proc.stdout, (text) => {
    stdoutLines.push(...text.split("\n").filter(Boolean));
  });
  collect(proc.stderr, (text) => {
    stderrText += text;
  });
  const exited = () => proc.exitCode !== null || proc.signalCode !== null;

  const handle: HookdProcess = {
    proc,
    stdoutLines,
    stderr: () => stderrText,
    async listening() {
      const found = await waitFor(
        () => (exited() ? "exited" : stdoutLines.find((line) => line.includes('"msg":"hookd listening"'))),
        { timeoutMs: START_TIMEOUT_MS, what: "the 'hookd listening' log line" },
      );
      if (found === "exited") {
        throw new Error(`hookd exited (${proc.exitCode ?? proc.signalCode}) before listening: ${stderrText}`);
      }
      return (JSON.parse(found) as { url: string }).url;
    },
    async stop(signal = "SIGTERM") {
      if (!exited()) proc.kill(signal);
      await waitFor(exited, { timeoutMs: EXIT_TIMEOUT_MS, what: `hookd (pid ${proc.pid}) to exit` });
      running.delete(handle);
      return proc.exitCode;
    },
  };
  running.add(handle);
  return handle;
}

/** For afterEach: kills, by PID, every process started here that is still running. */
export async function killStarted(): Promise<void> {
  for (const handle of [...running]) {
    const { proc } = handle;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await Promise.race([proc.exited, Bun.sleep(EXIT_TIMEOUT_MS)]);
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
