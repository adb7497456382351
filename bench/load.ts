// The load generator: a closed loop (C requests always outstanding) and an open loop (a fixed
// arrival rate, whatever the server does), both bounded in operations and in time, plus the two
// keep-alive POST clients the ceiling compares: Bun's fetch and node:http with a keep-alive Agent
// configured like hookd's delivery client.
import http from "node:http";
import { type Percentiles, percentiles, Samples, sleep, wallMs } from "./stats.ts";

/** One operation: resolves with the units it completed (events accepted, requests answered 2xx). */
export type Send = (seq: number) => Promise<number>;

export interface ClosedLoopResult {
  /** Units completed (events for ingest, requests for POST loops). */
  units: number;
  ops: number;
  failed: number;
  elapsedMs: number;
  unitsPerSecond: number;
  opLatency: Percentiles;
}

/** Runs `concurrency` workers, each sending back to back, until `durationMs` or `maxOps` is reached. */
export async function closedLoop(options: {
  concurrency: number;
  durationMs: number;
  maxOps: number;
  send: Send;
  warmupMs?: number;
}): Promise<ClosedLoopResult> {
  const { concurrency, send } = options;
  // Warm-up: connections opened, JIT warmed; not counted.
  if (options.warmupMs) {
    const warmEnd = performance.now() + options.warmupMs;
    let seq = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < warmEnd && seq < options.maxOps) await send(seq++).catch(() => 0);
      }),
    );
  }
  const latency = new Samples(1_000_000);
  let seq = 0;
  let units = 0;
  let failed = 0;
  const started = performance.now();
  const end = started + options.durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end && seq < options.maxOps) {
        const t0 = performance.now();
        try {
          const n = await send(seq++);
          if (n > 0) units += n;
          else failed++;
        } catch {
          failed++;
        }
        latency.push(performance.now() - t0);
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  return {
    units,
    ops: seq,
    failed,
    elapsedMs,
    unitsPerSecond: (units * 1000) / elapsedMs,
    opLatency: percentiles([latency.values()]),
  };
}

export interface OpenLoopResult {
  sent: number;
  ok: number;
  failed: number;
  /** Arrivals skipped because `maxInFlight` requests were already outstanding (the server fell behind). */
  dropped: number;
  elapsedMs: number;
  achievedRate: number;
  opLatency: Percentiles;
}

/** Sends at `rate` per second for `durationMs` (at most `maxInFlight` outstanding), then waits for answers. */
export async function openLoop(options: {
  rate: number;
  durationMs: number;
  maxInFlight: number;
  send: Send;
  drainMs?: number;
}): Promise<OpenLoopResult> {
  const latency = new Samples(1_000_000);
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let dropped = 0;
  let inFlight = 0;
  const started = performance.now();
  const total = Math.floor((options.rate * options.durationMs) / 1000);
  while (sent < total) {
    const elapsed = performance.now() - started;
    if (elapsed > options.durationMs * 1.5) break; // the event loop fell badly behind: stop anyway
    const due = Math.min(total, Math.floor((options.rate * elapsed) / 1000));
    while (sent < due) {
      const seq = sent++;
      if (inFlight >= options.maxInFlight) {
        dropped++;
        continue;
      }
      inFlight++;
      const t0 = performance.now();
      options.send(seq).then(
        (n) => {
          inFlight--;
          if (n > 0) ok++;
          else failed++;
          latency.push(performance.now() - t0);
        },
        () => {
          inFlight--;
          failed++;
        },
      );
    }
    await sleep(1);
  }
  const sendEnd = performance.now();
  const drainEnd = sendEnd + (options.drainMs ?? 10_000);
  while (inFlight > 0 && performance.now() < drainEnd) await sleep(2);
  return {
    sent,
    ok,
    failed,
    dropped,
    elapsedMs: sendEnd - started,
    achievedRate: ((sent - dropped) * 1000) / (sendEnd - started),
    opLatency: percentiles([latency.values()]),
  };
}

/** A POST client: resolves with the status code. */
export type Poster = (path: string, body: string, headers: Record<string, string>) => Promise<number>;

export function fetchPoster(base: string): Poster {
  return async (path, body, headers) => {
    const response = await fetch(base + path, { method: "POST", body, headers, keepalive: true });
    await response.arrayBuffer();
    return response.status;
  };
}

/** node:http with a dedicated keep-alive Agent, the options hookd's delivery client uses. */
export function nodeHttpPoster(base: string, maxSockets: number): Poster & { close(): void } {
  const url = new URL(base);
  const agent = new http.Agent({
    keepAlive: true,
    keepAliveMsecs: 30_000,
    maxSockets,
    maxFreeSockets: Math.max(32, maxSockets),
    timeout: 60_000,
  });
  const post = ((path: string, body: string, headers: Record<string, string>) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          path,
          method: "POST",
          agent,
          headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        },
        (res) => {
          res.on("data", () => {});
          res.on("end", () => resolve(res.statusCode ?? 0));
          res.on("error", reject);
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.end(body);
    })) as Poster & { close(): void };
  post.close = () => agent.destroy();
  return post;
}

/** A delivery-shaped body and headers (what hookd would POST for event `seq`), for the ceiling loops. */
export function deliveryLike(seq: number, runId: string): { body: string; headers: Record<string, string> } {
  const id = `evt_${runId}${String(seq).padStart(12, "0")}`;
  const body = `{"id":"${id}","type":"bench.event","timestamp":"${new Date().toISOString()}","data":${JSON.stringify(eventData(seq))}}`;
  return {
    body,
    headers: {
      "content-type": "application/json",
      "user-agent": "hookd-bench",
      "webhook-id": id,
      "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
      "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    },
  };
}

/** The `data` of a bench event: the send time (for end-to-end latency) and a few ordinary fields. */
export function eventData(seq: number): Record<string, unknown> {
  return {
    sent_at: wallMs(),
    seq,
    order_id: `ord_${seq.toString(36).padStart(8, "0")}`,
    amount: 1999 + (seq % 1000),
    currency: "eur",
  };
}
