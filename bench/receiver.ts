// The bench receiver: many Bun.serve listeners on 127.0.0.1, one port per subscriber origin, each
// with its own behaviour (fast 200, fixed latency, failure rate, or hold/hang). Every request is
// counted by (path, webhook-id): unique ids and duplicates; when the body carries `"sent_at":<ms>`
// (the load generator's wall clock), the end-to-end latency is recorded at arrival.
//
// It runs as a separate process by default (`bun bench/receiver.ts` prints {"control": port} and
// answers a small JSON control API), so receiving never shares the runner's event loop or the
// daemon's. `createReceiver()` is the same thing in-process (run.ts --receiver in-process).
import { processCpuSeconds } from "./hookd.ts";
import { percentiles, Samples, wallMs } from "./stats.ts";

export type Behaviour =
  | { kind: "fast" }
  | { kind: "latency"; ms: number }
  | { kind: "fail"; rate: number }
  /** Read the request and never answer, until the behaviour changes (then answer as the new one). */
  | { kind: "hold" };

export interface ReceiverStats {
  received: number;
  unique: number;
  duplicates: number;
  ok: number;
  failed: number;
  held: number;
  /** Wall-clock ms of the first and last arrival (NaN when none). */
  firstAt: number;
  lastAt: number;
  latency: { count: number; p50: number; p95: number; p99: number; max: number; mean: number };
}

export interface Receiver {
  /** Opens `count` new origins; returns their ports. */
  addOrigins(count: number, behaviour: Behaviour): Promise<number[]>;
  /** Changes the behaviour of `ports` (all when null); held requests are answered as the new one. */
  setBehaviour(ports: number[] | null, behaviour: Behaviour): Promise<void>;
  /** Forgets counts, ids and samples of `ports` (all when null). */
  reset(ports: number[] | null): Promise<void>;
  stats(ports: number[] | null): Promise<ReceiverStats>;
  /** CPU seconds the receiver process has used (NaN in-process, where it shares the runner's). */
  cpuSeconds(): number;
  close(): Promise<void>;
}

interface Origin {
  port: number;
  server: ReturnType<typeof Bun.serve>;
  behaviour: Behaviour;
  seen: Set<string>;
  received: number;
  duplicates: number;
  ok: number;
  failed: number;
  firstAt: number;
  lastAt: number;
  latency: Samples;
  held: ((response: Response) => void)[];
}

const SENT_AT = /"sent_at":(\d+(?:\.\d+)?)/;
const MAX_IDS_PER_ORIGIN = 3_000_000;

function answer(behaviour: Behaviour): Response | Promise<Response> | null {
  switch (behaviour.kind) {
    case "fast":
      return new Response("ok");
    case "latency":
      return new Promise((resolve) => setTimeout(() => resolve(new Response("ok")), behaviour.ms));
    case "fail":
      return Math.random() < behaviour.rate ? new Response("fail", { status: 500 }) : new Response("ok");
    case "hold":
      return null;
  }
}

export function createReceiver(): Receiver {
  const origins = new Map<number, Origin>();
  const select = (ports: number[] | null) =>
    ports === null ? [...origins.values()] : ports.map((p) => origins.get(p)).filter((o): o is Origin => !!o);

  const count = (origin: Origin, response: Response) => {
    if (response.status < 300) origin.ok++;
    else origin.failed++;
    return response;
  };

  const open = (behaviour: Behaviour): Origin => {
    const origin = {
      behaviour,
      seen: new Set<string>(),
      received: 0,
      duplicates: 0,
      ok: 0,
      failed: 0,
      firstAt: Number.NaN,
      lastAt: Number.NaN,
      latency: new Samples(),
      held: [],
    } as unknown as Origin;
    origin.server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0, // a held request must stay open as long as the client waits
      async fetch(request) {
        const body = await request.text();
        const now = wallMs();
        const id = request.headers.get("webhook-id") ?? "";
        const key = `${new URL(request.url).pathname} ${id}`;
        origin.received++;
        if (Number.isNaN(origin.firstAt)) origin.firstAt = now;
        origin.lastAt = now;
        if (origin.seen.has(key)) origin.duplicates++;
        else if (origin.seen.size < MAX_IDS_PER_ORIGIN) origin.seen.add(key);
        const sent = SENT_AT.exec(body);
        if (sent) origin.latency.push(now - Number(sent[1]));
        const reply = answer(origin.behaviour);
        if (reply === null) {
          return new Promise<Response>((resolve) => origin.held.push(resolve)).then((r) => count(origin, r));
        }
        return reply instanceof Promise ? reply.then((r) => count(origin, r)) : count(origin, reply);
      },
    });
    origin.port = origin.server.port as number;
    origins.set(origin.port, origin);
    return origin;
  };

  return {
    async addOrigins(n, behaviour) {
      return Array.from({ length: n }, () => open(behaviour).port);
    },
    async setBehaviour(ports, behaviour) {
      for (const origin of select(ports)) {
        origin.behaviour = behaviour;
        if (behaviour.kind === "hold") continue;
        for (const resolve of origin.held.splice(0)) {
          const reply = answer(behaviour);
          if (reply instanceof Promise) reply.then(resolve);
          else if (reply) resolve(reply);
        }
      }
    },
    async reset(ports) {
      for (const origin of select(ports)) {
        origin.seen.clear();
        origin.received = origin.duplicates = origin.ok = origin.failed = 0;
        origin.firstAt = origin.lastAt = Number.NaN;
        origin.latency.clear();
      }
    },
    async stats(ports) {
      const chosen = select(ports);
      const sum = (f: (o: Origin) => number) => chosen.reduce((n, o) => n + f(o), 0);
      const firsts = chosen.map((o) => o.firstAt).filter((t) => !Number.isNaN(t));
      const lasts = chosen.map((o) => o.lastAt).filter((t) => !Number.isNaN(t));
      return {
        received: sum((o) => o.received),
        unique: sum((o) => o.seen.size),
        duplicates: sum((o) => o.duplicates),
        ok: sum((o) => o.ok),
        failed: sum((o) => o.failed),
        held: sum((o) => o.held.length),
        firstAt: firsts.length ? Math.min(...firsts) : Number.NaN,
        lastAt: lasts.length ? Math.max(...lasts) : Number.NaN,
        latency: percentiles(chosen.map((o) => o.latency.values())),
      };
    },
    cpuSeconds: () => Number.NaN,
    async close() {
      for (const origin of origins.values()) origin.server.stop(true);
      origins.clear();
    },
  };
}

/** Starts the receiver as a child process and talks to it over its control port. */
export async function spawnReceiver(): Promise<Receiver & { pid: number }> {
  const child = Bun.spawn([process.execPath, import.meta.path], {
    stdout: "pipe",
    stderr: "inherit",
    stdin: "ignore",
  });
  try {
    const reader = child.stdout.getReader();
    let text = "";
    const deadline = Date.now() + 10_000;
    while (!text.includes("\n")) {
      if (Date.now() > deadline) throw new Error("the receiver did not start within 10 s");
      const { value, done } = await reader.read();
      if (done) throw new Error("the receiver exited before it started");
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    const { control } = JSON.parse(text.slice(0, text.indexOf("\n"))) as { control: number };
    // Drain anything else it prints so the pipe never fills.
    void child.stdout.pipeTo(new WritableStream()).catch(() => {});
    const call = async <T>(path: string, body: unknown): Promise<T> => {
      const response = await fetch(`http://127.0.0.1:${control}${path}`, {
        method: "POST",
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      if (!response.ok) throw new Error(`receiver ${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as T;
    };
    return {
      pid: child.pid,
      cpuSeconds: () => processCpuSeconds(child.pid),
      addOrigins: (count, behaviour) => call("/origins", { count, behaviour }),
      setBehaviour: (ports, behaviour) => call("/behaviour", { ports, behaviour }),
      reset: (ports) => call("/reset", { ports }),
      async stats(ports) {
        // NaN travels as null in JSON.
        const s = await call<ReceiverStats>("/stats", { ports });
        const nan = (v: number | null) => v ?? Number.NaN;
        const l = s.latency;
        return {
          ...s,
          firstAt: nan(s.firstAt),
          lastAt: nan(s.lastAt),
          latency: {
            ...l,
            p50: nan(l.p50),
            p95: nan(l.p95),
            p99: nan(l.p99),
            max: nan(l.max),
            mean: nan(l.mean),
          },
        };
      },
      async close() {
        child.kill("SIGTERM");
        const exited = await Promise.race([child.exited, Bun.sleep(3000).then(() => null)]);
        if (exited === null) child.kill("SIGKILL");
      },
    };
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
}

if (import.meta.main) {
  const receiver = createReceiver();
  const control = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const body = (await request.json().catch(() => ({}))) as {
        count: number;
        behaviour: Behaviour;
        ports: number[] | null;
      };
      const path = new URL(request.url).pathname;
      const json = (value: unknown) => Response.json(value ?? {});
      switch (path) {
        case "/origins":
          return json(await receiver.addOrigins(body.count, body.behaviour));
        case "/behaviour":
          return json(await receiver.setBehaviour(body.ports, body.behaviour));
        case "/reset":
          return json(await receiver.reset(body.ports));
        case "/stats":
          return json(await receiver.stats(body.ports));
        default:
          return new Response("not found", { status: 404 });
      }
    },
  });
  const shutdown = () => {
    receiver.close().finally(() => {
      control.stop(true);
      process.exit(0);
    });
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  // Never outlive the runner: when it dies, this process is re-parented.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) shutdown();
  }, 1000).unref();
  process.stdout.write(`${JSON.stringify({ control: control.port })}\n`);
}
