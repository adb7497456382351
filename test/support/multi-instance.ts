// Several compiled hookd instances over one PostgreSQL database (SPEC §6), for
// test/e2e/multi-instance.test.ts: each instance's YAML config (postgres storage, port 0, one admin
// key, plain http to 127.0.0.1 allowed, a short retry schedule), calls to their API, a direct read of
// the shared database, and a receiver that records when each request started and ended per
// webhook-id and how many were open at once per path, so tests can check caps and overlaps.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Server, SQL } from "bun";
import { type HookdProcess, startHookd } from "./hookd-process.ts";

export const MI_ADMIN_KEY = "multi-instance-admin-key-0123456789";

export interface InstanceConfigOptions {
  databaseUrl: string;
  lease?: string;
  timeout?: string;
  retrySchedule?: string[];
  maxInFlightPerWebhook?: number;
  rateLimits?: { read?: number; write?: number; ingest?: number };
}

/** Writes `dir/<name>.yaml` for instances over `databaseUrl` and answers its path. */
export function writeInstanceConfig(dir: string, name: string, options: InstanceConfigOptions): string {
  const path = join(dir, `${name}.yaml`);
  const limits = options.rateLimits ?? {};
  writeFileSync(
    path,
    [
      "server:",
      "  host: 127.0.0.1",
      "  port: 0",
      "storage:",
      "  driver: postgres",
      "  postgres:",
      `    url: ${JSON.stringify(options.databaseUrl)}`,
      "    pool_size: 8",
      "auth:",
      "  keys:",
      "    - name: admin",
      `      key: ${MI_ADMIN_KEY}`,
      '      scopes: ["*"]',
      "rate_limits:",
      `  read: ${limits.read ?? 100_000}`,
      `  write: ${limits.write ?? 100_000}`,
      `  ingest: ${limits.ingest ?? 1_000_000}`,
      "delivery:",
      `  timeout: ${options.timeout ?? "1s"}`,
      `  retry_schedule: [${(options.retrySchedule ?? ["100ms", "200ms", "300ms", "500ms"]).join(", ")}]`,
      `  lease: ${options.lease ?? "2s"}`,
      `  max_in_flight_per_webhook: ${options.maxInFlightPerWebhook ?? 16}`,
      "  allow_http: true",
      "  allow_private_networks: true",
      "shutdown_grace: 1s",
      "log:",
      "  level: info",
      "",
    ].join("\n"),
  );
  return path;
}

/** A started instance: its process, its URL and its instance id (the prefix of its lease owners). */
export interface Instance {
  hookd: HookdProcess;
  url: string;
  id: string;
  /** The `time` of its "hookd listening" log line, as this process's clock reads it (ms). */
  listenedAt: number;
}

/** `dist/hookd serve --config <configPath>` (extra environment in `env`), once it listens. */
export async function startInstance(
  configPath: string,
  dir: string,
  env: Record<string, string> = {},
): Promise<Instance> {
  const hookd = startHookd("binary", ["serve", "--config", configPath], { cwd: dir, env });
  const url = await hookd.listening();
  const line = hookd.lines.find((l) => l.includes('"msg":"hookd listening"')) as string;
  const parsed = JSON.parse(line) as { instance: string; time: string | number };
  return { hookd, url, id: parsed.instance, listenedAt: new Date(parsed.time).getTime() };
}

export interface ApiAnswer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected freely
  body: any;
  headers: Headers;
}

/** A call to an instance's API with the admin key, bounded in time. */
export async function api(
  url: string,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ApiAnswer> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${MI_ADMIN_KEY}`,
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
      ...options.headers,
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // /metrics and the like: kept as text.
  }
  return { status: response.status, body, headers: response.headers };
}

/** The sum of a Prometheus family's samples on `url`/metrics whose labels contain `labels`. */
export async function metricSum(url: string, family: string, labels = ""): Promise<number | null> {
  const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const text = await response.text();
  let sum: number | null = null;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${family}{`) && !line.startsWith(`${family} `)) continue;
    if (labels && !line.includes(labels)) continue;
    sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** Runs `count` tasks, `concurrency` at a time; task i gets its index. */
export async function runPool(count: number, concurrency: number, task: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

export interface DeliveryRow {
  id: string;
  event_id: string;
  webhook_id: string;
  status: string;
  attempts: number;
  lease_owner: string | null;
}

/** The shared database, read directly (never written). */
export function openDatabase(url: string) {
  const sql = new SQL({ url, max: 2, idleTimeout: 5 });
  return {
    deliveries: () =>
      sql.unsafe("SELECT id, event_id, webhook_id, status, attempts, lease_owner FROM deliveries") as Promise<
        DeliveryRow[]
      >,
    close: () => sql.close({ timeout: 1 }),
  };
}

/** Deliveries still to be attempted, and those leased: both 0 once the instances are idle. */
export function queuedAndLeased(rows: DeliveryRow[]): { queued: number; leased: number } {
  const open = rows.filter((row) => row.status === "pending" || row.status === "retrying");
  return { queued: open.length, leased: open.filter((row) => row.lease_owner !== null).length };
}

/** One request as the interval receiver saw it. */
export interface Interval {
  path: string;
  id: string;
  start: number;
  /** When its answer was handed back; null while open. */
  end: number | null;
  status: number | null;
}

export interface IntervalReceiver {
  url(path: string): string;
  readonly intervals: Interval[];
  /** webhook-ids answered 2xx on `path`. */
  delivered(path: string): Set<string>;
  /** Requests on `path` (all paths when omitted) received and not yet answered. */
  open(path?: string): number;
  /** The most requests ever open at once on `path`. */
  maxOpen(path: string): number;
  /** `path id` of every pair of requests for one webhook-id on one path whose intervals overlap. */
  overlaps(): string[];
  /** Answers every held request and holds no more. */
  release(): void;
  close(): Promise<void>;
}

/**
 * A receiver on 127.0.0.1, port 0. `delayMs[path]` slows that path's answers; `failFirst(id)` makes
 * the first request of that webhook-id answer 500; `hold(id)` keeps that id's requests open until
 * `release()`. Times come from performance.now(), so only their order is meaningful.
 */
export function startIntervalReceiver(
  options: {
    delayMs?: Record<string, number>;
    failFirst?: (id: string) => boolean;
    hold?: (id: string) => boolean;
  } = {},
): IntervalReceiver {
  const intervals: Interval[] = [];
  const openNow = new Map<string, number>();
  const maxOpen = new Map<string, number>();
  const seen = new Map<string, number>();
  const held = new Set<() => void>();
  let holding = true;

  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 120,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      const id = request.headers.get("webhook-id") ?? "";
      await request.text();
      const interval: Interval = { path, id, start: performance.now(), end: null, status: null };
      intervals.push(interval);
      const open = (openNow.get(path) ?? 0) + 1;
      openNow.set(path, open);
      maxOpen.set(path, Math.max(maxOpen.get(path) ?? 0, open));
      const n = (seen.get(`${path} ${id}`) ?? 0) + 1;
      seen.set(`${path} ${id}`, n);
      try {
        if (holding && options.hold?.(id)) await new Promise<void>((resolve) => held.add(resolve));
        const delay = options.delayMs?.[path] ?? 0;
        if (delay > 0) await Bun.sleep(delay);
        interval.status = n === 1 && options.failFirst?.(id) ? 500 : 200;
        return new Response(interval.status === 200 ? "ok" : "try again", { status: interval.status });
      } finally {
        interval.end = performance.now();
        openNow.set(path, (openNow.get(path) ?? 1) - 1);
      }
    },
  });

  return {
    url: (path) => `http://127.0.0.1:${server.port}${path}`,
    intervals,
    delivered: (path) =>
      new Set(intervals.filter((i) => i.path === path && i.status === 200).map((i) => i.id)),
    open: (path) =>
      path === undefined ? [...openNow.values()].reduce((a, b) => a + b, 0) : (openNow.get(path) ?? 0),
    maxOpen: (path) => maxOpen.get(path) ?? 0,
    overlaps() {
      const byKey = new Map<string, Interval[]>();
      for (const interval of intervals) {
        const key = `${interval.path} ${interval.id}`;
        byKey.set(key, [...(byKey.get(key) ?? []), interval]);
      }
      const found: string[] = [];
      for (const [key, list] of byKey) {
        const sorted = [...list].sort((a, b) => a.start - b.start);
        for (let i = 1; i < sorted.length; i++) {
          const previous = sorted[i - 1] as Interval;
          if (previous.end === null || (sorted[i] as Interval).start < previous.end) found.push(key);
        }
      }
      return found;
    },
    release() {
      holding = false;
      for (const resolve of held) resolve();
      held.clear();
    },
    async close() {
      holding = false;
      for (const resolve of held) resolve();
      held.clear();
      await server.stop(true);
    },
  };
}
