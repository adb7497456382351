// hookd from source (`bun src/main.ts serve`) as a child process for the crash and shutdown tests,
// plus a receiver on 127.0.0.1 that counts deliveries by webhook-id. Children are stopped by their
// own PID only; the receiver's hanging requests are let go when it closes.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Server, Subprocess } from "bun";
import { waitFor } from "../support/wait-for.ts";
import { ROOT } from "./hookd-process.ts";

export const CHILD_ADMIN_KEY = "child-admin-key-0123456789";
const START_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 15_000;

/** A config for a test child: port 0, its database in `dir`, plain http to 127.0.0.1 allowed. */
export function writeChildConfig(
  dir: string,
  options: {
    retrySchedule?: string[];
    lease?: string;
    timeout?: string;
    shutdownGrace?: string;
    maxInFlightPerWebhook?: number;
  } = {},
): string {
  const path = join(dir, "hookd.yaml");
  const schedule = (options.retrySchedule ?? ["100ms", "200ms", "500ms"]).join(", ");
  writeFileSync(
    path,
    [
      "server:",
      "  host: 127.0.0.1",
      "  port: 0",
      "storage:",
      "  sqlite:",
      `    path: ${join(dir, "hookd.db")}`,
      "auth:",
      "  keys:",
      "    - name: admin",
      `      key: ${CHILD_ADMIN_KEY}`,
      '      scopes: ["*"]',
      "rate_limits:",
      "  ingest: 100000",
      "  write: 100000",
      "  read: 100000",
      "delivery:",
      `  timeout: ${options.timeout ?? "1s"}`,
      `  retry_schedule: [${schedule}]`,
      `  lease: ${options.lease ?? "1s"}`,
      `  max_in_flight_per_webhook: ${options.maxInFlightPerWebhook ?? 16}`,
      "  allow_http: true",
      "  allow_private_networks: true",
      `shutdown_grace: ${options.shutdownGrace ?? "1s"}`,
      "log:",
      "  level: info",
      "",
    ].join("\n"),
  );
  return path;
}

export interface Child {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  lines: string[];
  stderr(): string;
  hasExited(): boolean;
  /** The `url` of the "hookd listening" log line; fails at once if the child exits first. */
  listening(): Promise<string>;
  /** Waits (bounded) for the exit and returns the exit code (null when killed by a signal). */
  exited(timeoutMs?: number): Promise<number | null>;
}

const started = new Set<Child>();

export function startChild(configPath: string, cwd: string): Child {
  const proc = Bun.spawn([process.execPath, join(ROOT, "src", "main.ts"), "serve", "--config", configPath], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const lines: string[] = [];
  let stderrText = "";
  collect(proc.stdout, (text) => lines.push(...text.split("\n").filter(Boolean)));
  collect(proc.stderr, (text) => {
    stderrText += text;
  });
  const hasExited = () => proc.exitCode !== null || proc.signalCode !== null;
  const child: Child = {
    proc,
    lines,
    stderr: () => stderrText,
    hasExited,
    async listening() {
      const found = await waitFor(
        () => (hasExited() ? "exited" : lines.find((line) => line.includes('"msg":"hookd listening"'))),
        { timeoutMs: START_TIMEOUT_MS, what: "the 'hookd listening' log line" },
      );
      if (found === "exited")
        throw new Error(`hookd exited (${proc.exitCode ?? proc.signalCode}) before listening: ${stderrText}`);
      return (JSON.parse(found) as { url: string }).url;
    },
    async exited(timeoutMs = EXIT_TIMEOUT_MS) {
      await waitFor(hasExited, { timeoutMs, what: `hookd (pid ${proc.pid}) to exit` });
      started.delete(child);
      return proc.exitCode;
    },
  };
  started.add(child);
  return child;
}

/** For afterEach/finally: SIGKILLs, by PID, every child started here that still runs. */
export async function killChildren(): Promise<void> {
  for (const child of [...started]) {
    if (!child.hasExited()) child.proc.kill("SIGKILL");
    await Promise.race([child.proc.exited, Bun.sleep(EXIT_TIMEOUT_MS)]);
    started.delete(child);
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

/** A call to the child's API with the admin key, bounded in time. */
export async function callApi(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 5_000,
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected freely
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${CHILD_ADMIN_KEY}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

export async function createWebhook(url: string, target: string, events: string[]): Promise<string> {
  const created = await callApi(url, "POST", "/v1/webhooks", { name: "receiver", url: target, events });
  if (created.status !== 201) throw new Error(`cannot create the webhook: ${JSON.stringify(created)}`);
  return created.body.id as string;
}

export type ReceiverMode = "ok" | "hang" | { delayMs: number };

export interface Receiver {
  url: string;
  /** Requests seen per webhook-id. */
  seen: Map<string, number>;
  /** webhook-ids answered with a 2xx. */
  delivered: Set<string>;
  /** Requests received and not yet answered. */
  open(): number;
  /** Requests answered with a 2xx beyond the first per webhook-id. */
  duplicates(): number;
  setMode(mode: ReceiverMode): void;
  close(): Promise<void>;
}

/**
 * A webhook receiver on 127.0.0.1, port 0. `failFirst(id)` makes the first request for that id
 * answer 500, so some deliveries go through `retrying`.
 */
export function startReceiver(
  options: { mode?: ReceiverMode; failFirst?: (id: string) => boolean } = {},
): Receiver {
  let mode: ReceiverMode = options.mode ?? "ok";
  const seen = new Map<string, number>();
  const delivered = new Set<string>();
  const hanging = new Set<() => void>();
  let open = 0;
  let okAnswers = 0;

  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 60,
    async fetch(request) {
      const id = request.headers.get("webhook-id") ?? "";
      await request.text();
      const n = (seen.get(id) ?? 0) + 1;
      seen.set(id, n);
      open++;
      try {
        const current = mode;
        if (current === "hang") {
          await new Promise<void>((resolve) => hanging.add(resolve));
          return new Response("released", { status: 503 });
        }
        if (typeof current === "object") await Bun.sleep(current.delayMs);
        if (n === 1 && options.failFirst?.(id)) return new Response("try again", { status: 500 });
        okAnswers++;
        delivered.add(id);
        return new Response("ok");
      } finally {
        open--;
      }
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}/hook`,
    seen,
    delivered,
    open: () => open,
    duplicates: () => okAnswers - delivered.size,
    setMode(next) {
      mode = next;
    },
    async close() {
      for (const release of hanging) release();
      hanging.clear();
      await server.stop(true);
    },
  };
}
