// SPEC §6 "Database faults", against the compiled binary (dist/hookd) as users run it: hookd's
// `storage.postgres.url` goes through a TCP proxy (test/support/tcp-proxy.ts) to a fresh database,
// and the proxy injects what a network or a server does to a connection: a reset, a half-open link
// (blackhole), an unreachable server (refuse), and a restart (reset, refused for a while, back).
//
// While faulted: POST /v1/events and GET /v1/webhooks answer 503 `unavailable` in the API's error
// shape within statement_timeout plus a margin, /readyz answers 503 and names the driver, /healthz
// stays 200 at once, and the process keeps answering. Once the fault clears, hookd recovers by
// itself (/readyz 200, new events accepted and delivered), every event that got a 202 reaches the
// receiver, and no webhook-id is ever being delivered twice at the same moment.
//
// A fault can land between a COMMIT reaching the server and its answer reaching hookd: the work is
// done and hookd cannot know. The random resets hit that window now and then; the last test makes
// it certain for a settlement (a deferred trigger holds that COMMIT while the proxy resets).
//
// Needs HOOKD_TEST_POSTGRES_URL (skipped without it).
import { afterEach, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ReservedSQL, type Server, SQL } from "bun";
import { DELIVERY_STATUS } from "../../src/domain/delivery.ts";
import { CHILD_ADMIN_KEY, callApi, createWebhook, fetchApi } from "../support/child-api.ts";
import { ensureBinary, type HookdProcess, killStarted, startHookd } from "../support/hookd-process.ts";
import { createTestDatabase, POSTGRES_URL, skipWithoutPostgres } from "../support/postgres.ts";
import { createTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts";
import { tempDir } from "../support/temp.ts";
import { waitFor } from "../support/wait-for.ts";

const SKIP = skipWithoutPostgres("postgres faults");

/** storage.postgres.statement_timeout in the child's config. */
const STATEMENT_TIMEOUT_MS = 1_000;
/** The bound on any request while faulted: the deadline, plus slack for a loaded machine. */
const BOUND_MS = STATEMENT_TIMEOUT_MS + 1_500;
/** /healthz never touches the database. */
const QUICK_MS = 1_000;
/** How long recovery may take once the fault is cleared: a few deadlines and one lease. */
const RECOVERY_MS = 15_000;
/** How long every accepted event has to reach the receiver after recovery. */
const DELIVERED_MS = 30_000;
/** How long a sustained fault lasts: longer than a lease, so leases run out while it does. */
const FAULT_MS = 4_000;
const EVENTS_BEFORE = 10;
const EVENTS_AFTER = 10;
const TEST_TIMEOUT_MS = 120_000;

// ---- a receiver that sees overlapping attempts of one webhook-id ----

interface OverlapReceiver {
  url: string;
  /** webhook-ids answered 2xx. */
  delivered: Set<string>;
  /** Requests seen per webhook-id. */
  seen: Map<string, number>;
  /** 2xx answers per webhook-id (more than one: delivered again after a success). */
  succeeded: Map<string, number>;
  /** `data.n` of each webhook-id's payload: which publish it came from. */
  publishOf: Map<string, number>;
  /** webhook-ids that arrived while an earlier request with the same id was still open. */
  overlaps: string[];
  close(): Promise<void>;
}

/**
 * Bun.serve on 127.0.0.1, port 0. Each answer takes `delayMs`, so that two attempts of one
 * delivery at once would be seen open together; the first request of every third webhook-id
 * answers 500, so some deliveries are `retrying` when a fault hits.
 */
function startOverlapReceiver(delayMs = 100): OverlapReceiver {
  const delivered = new Set<string>();
  const seen = new Map<string, number>();
  const succeeded = new Map<string, number>();
  const publishOf = new Map<string, number>();
  const open = new Map<string, number>();
  const overlaps: string[] = [];
  let firstSeen = 0;
  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 30,
    async fetch(request) {
      const id = request.headers.get("webhook-id") ?? "";
      const body = await request.text();
      publishOf.set(id, (JSON.parse(body) as { data: { n: number } }).data.n);
      const n = (seen.get(id) ?? 0) + 1;
      seen.set(id, n);
      const failThis = n === 1 && ++firstSeen % 3 === 0;
      if ((open.get(id) ?? 0) > 0) overlaps.push(id);
      open.set(id, (open.get(id) ?? 0) + 1);
      try {
        await Bun.sleep(delayMs);
        if (failThis) return new Response("try again", { status: 500 });
        delivered.add(id);
        succeeded.set(id, (succeeded.get(id) ?? 0) + 1);
        return new Response("ok");
      } finally {
        open.set(id, (open.get(id) ?? 1) - 1);
      }
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/hook`,
    delivered,
    seen,
    succeeded,
    publishOf,
    overlaps,
    close: () => server.stop(true),
  };
}

// ---- the child, its proxy, and timed calls ----

let proxy: TcpProxy | undefined;
let receiver: OverlapReceiver | undefined;
/** The test's own connection to PostgreSQL, straight to the server (not through the proxy). */
let admin: { sql: SQL; held: ReservedSQL } | undefined;
/** The status each publish (by its `data.n`) was answered with. */
const answered = new Map<number, number>();
afterEach(async () => {
  answered.clear();
  await killStarted();
  await proxy?.close();
  proxy = undefined;
  await receiver?.close();
  receiver = undefined;
  if (admin) {
    admin.held.release();
    await admin.sql.close({ timeout: 0 });
    admin = undefined;
  }
});

interface Faulty {
  child: HookdProcess;
  url: string;
  proxy: TcpProxy;
  rx: OverlapReceiver;
  webhookId: string;
  /** The schema hookd's tables are in (the test database). */
  schema: string;
}

/** dist/hookd on a fresh database reached through a proxy, with a webhook to the receiver. */
async function startFaultyHookd(): Promise<Faulty> {
  await ensureBinary();
  const database = await createTestDatabase();
  const target = new URL(POSTGRES_URL as string);
  proxy = await createTcpProxy({ target: { host: target.hostname, port: Number(target.port || 5432) } });
  receiver = startOverlapReceiver();
  const dir = tempDir("hookd-pgfault-");
  const config = join(dir, "hookd.yaml");
  writeFileSync(
    config,
    [
      "server:",
      "  host: 127.0.0.1",
      "  port: 0",
      "storage:",
      "  driver: postgres",
      "  postgres:",
      `    url: ${JSON.stringify(proxy.url(database))}`,
      "    pool_size: 4",
      `    statement_timeout: ${STATEMENT_TIMEOUT_MS}ms`,
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
      "  timeout: 2s",
      // Retrying often, and long enough that no delivery is exhausted while a fault lasts.
      `  retry_schedule: [${Array(100).fill("200ms").join(", ")}]`,
      // Far longer than an attempt (100 ms), so an expired lease cannot explain an overlap.
      "  lease: 3s",
      "  disable_after_failures: 1000000",
      "  allow_http: true",
      "  allow_private_networks: true",
      "shutdown_grace: 1s",
      "log:",
      "  level: info",
      "",
    ].join("\n"),
  );
  const child = startHookd("binary", ["serve", "--config", config], { cwd: dir });
  const url = await child.listening();
  const webhookId = await createWebhook(url, receiver.url, ["order.created"]);
  const schema = new URL(database).searchParams.get("search_path") as string;
  return { child, url, proxy, rx: receiver, webhookId, schema };
}

interface Timed {
  what: string;
  status: number;
  ms: number;
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected freely
  body: any;
  headers: Headers;
}

/** One request, timed; the client gives up (status 0) well after any bound asserted here. */
async function timed(url: string, method: string, path: string, body?: unknown): Promise<Timed> {
  const what = `${method} ${path}`;
  const started = performance.now();
  try {
    const response = await fetchApi(url, method, path, body, 20_000);
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return {
      what,
      status: response.status,
      ms: performance.now() - started,
      body: parsed,
      headers: response.headers,
    };
  } catch (error) {
    return { what, status: 0, ms: performance.now() - started, body: String(error), headers: new Headers() };
  }
}

let seq = 0;
async function publish(url: string): Promise<Timed> {
  const n = ++seq;
  const res = await timed(url, "POST", "/v1/events", { type: "order.created", data: { n } });
  answered.set(n, res.status);
  return res;
}

/** 503 in the API's error shape, with Retry-After, within the bound. */
function expectUnavailable(res: Timed, when: string): void {
  expect({ when, what: res.what, status: res.status, body: res.body }).toEqual({
    when,
    what: res.what,
    status: 503,
    body: { error: { code: "unavailable", message: expect.any(String) } },
  });
  expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
  expect({ when, what: res.what, withinBound: res.ms <= BOUND_MS, ms: Math.round(res.ms) }).toMatchObject({
    withinBound: true,
  });
}

function expectNotReady(res: Timed, when: string): void {
  expect({ when, status: res.status, code: res.body?.error?.code, driver: res.body?.driver }).toEqual({
    when,
    status: 503,
    code: "unavailable",
    driver: "postgres",
  });
  expect(res.body.checks.database).not.toBe("ok");
  expect({ when, readyzWithinBound: res.ms <= BOUND_MS, ms: Math.round(res.ms) }).toMatchObject({
    readyzWithinBound: true,
  });
}

function expectHealthy(res: Timed, when: string): void {
  expect({ when, status: res.status, quick: res.ms <= QUICK_MS, ms: Math.round(res.ms) }).toMatchObject({
    status: 200,
    quick: true,
  });
}

/** Publishes `n` events one by one, each expected to be accepted; returns their ids. */
async function publishAccepted(url: string, n: number, when: string): Promise<string[]> {
  const accepted: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await publish(url);
    expect({ when, status: res.status, body: res.status === 202 ? "" : res.body }).toEqual({
      when,
      status: 202,
      body: "",
    });
    accepted.push(res.body.id);
  }
  return accepted;
}

/**
 * One round of probes at the same moment while a fault lasts: ingest, a list, readiness and
 * liveness, all of which must answer (the process neither hangs nor dies). Returns the timings.
 */
function probeRound(url: string): Promise<Timed[]> {
  return Promise.all([
    publish(url),
    timed(url, "GET", "/v1/webhooks"),
    timed(url, "GET", "/readyz"),
    timed(url, "GET", "/healthz"),
  ]);
}

function checkFaultedRound([ingest, list, ready, health]: Timed[], when: string): void {
  expectUnavailable(ingest as Timed, when);
  expectUnavailable(list as Timed, when);
  expectNotReady(ready as Timed, when);
  expectHealthy(health as Timed, when);
}

/**
 * Probe rounds, one after another, until the fault has lasted FAULT_MS (each round is itself
 * bounded); every round is checked afterwards, so that a failed check is not retried away.
 */
async function probeWhileFaulted(url: string, fault: string): Promise<Timed[]> {
  const rounds: Timed[][] = [];
  const started = performance.now();
  await waitFor(
    async () => {
      rounds.push(await probeRound(url));
      return performance.now() - started >= FAULT_MS;
    },
    { timeoutMs: FAULT_MS + 2 * BOUND_MS, intervalMs: 100, what: `${fault} to have lasted ${FAULT_MS} ms` },
  );
  rounds.forEach((round, i) => {
    checkFaultedRound(round, `${fault}, round ${i}`);
  });
  return rounds.flat();
}

/** Bounded: /readyz answers 200 again, by itself. Returns how long it took. */
async function awaitReady(url: string): Promise<number> {
  const started = performance.now();
  const ready = await waitFor(
    async () => {
      const res = await timed(url, "GET", "/readyz");
      return res.status === 200 ? res : null;
    },
    {
      timeoutMs: RECOVERY_MS,
      intervalMs: 100,
      what: "/readyz to answer 200 again after the fault cleared",
    },
  );
  const elapsed = performance.now() - started;
  expect({ status: ready.body.status, driver: ready.body.driver }).toEqual({
    status: "ready",
    driver: "postgres",
  });
  return elapsed;
}

/** Runs `wait`; when it fails, the failure carries the end of the child's log and its stderr. */
async function withLogs<T>(f: Faulty, wait: () => Promise<T>): Promise<T> {
  try {
    return await wait();
  } catch (error) {
    const tail = f.child.lines.slice(-60).join("\n");
    throw new Error(
      `${(error as Error).message}\n--- hookd log (last 60 lines) ---\n${tail}\n--- stderr ---\n${f.child.stderr()}`,
    );
  }
}

/**
 * After the fault: ready by itself, the API and ingest work, every event accepted so far is
 * delivered and every delivery succeeded, no overlap, no 500, and a clean stop.
 */
async function expectRecovered(
  f: Faulty,
  accepted: string[],
  fault: string,
): Promise<Record<string, number>> {
  const readyMs = await withLogs(f, () => awaitReady(f.url));
  const list = await timed(f.url, "GET", "/v1/webhooks");
  expect({ after: fault, status: list.status }).toEqual({ after: fault, status: 200 });
  accepted.push(...(await publishAccepted(f.url, EVENTS_AFTER, `after ${fault}`)));

  const started = performance.now();
  await withLogs(f, () =>
    waitFor(() => accepted.every((id) => f.rx.delivered.has(id)), {
      timeoutMs: DELIVERED_MS,
      intervalMs: 50,
      what: "every accepted event to be delivered",
    }),
  ).catch((error) => {
    const missing = accepted.filter((id) => !f.rx.delivered.has(id));
    throw new Error(
      `${missing.length} of ${accepted.length} missing (${missing.join(", ")}): ${error.message}`,
    );
  });
  const deliveredMs = performance.now() - started;
  const deliveries = await withLogs(f, () =>
    waitFor(
      async () => {
        const res = await callApi(f.url, "GET", `/v1/deliveries?webhook_id=${f.webhookId}&limit=100`);
        const data = (res.body?.data ?? []) as { status: string; event_id: string }[];
        return res.status === 200 &&
          data.length >= accepted.length &&
          data.every((d) => d.status === DELIVERY_STATUS.success)
          ? data
          : null;
      },
      { timeoutMs: DELIVERED_MS, intervalMs: 100, what: `every delivery of ${f.webhookId} to be success` },
    ),
  );
  // A 503 does not promise that nothing was committed: when a connection breaks after COMMIT
  // reached the server, the event exists and is delivered. Every delivery beyond the accepted
  // ones must come from a publish that was answered 503, never from nowhere.
  const acceptedIds = new Set(accepted);
  const extra = deliveries
    .map((d) => d.event_id)
    .filter((id) => !acceptedIds.has(id))
    .map((id) => ({ id, answered: answered.get(f.rx.publishOf.get(id) ?? -1) ?? "never published" }));
  expect({ after: fault, extra: extra.filter((e) => e.answered !== 503) }).toEqual({
    after: fault,
    extra: [],
  });
  expect(deliveries.length).toBe(accepted.length + extra.length);
  expect({ after: fault, overlaps: f.rx.overlaps }).toEqual({ after: fault, overlaps: [] });

  const internal = f.child.lines.filter(
    (line) => line.includes('"status":500') || line.includes("unhandled") || line.includes('"level":50'),
  );
  expect({ after: fault, internalErrors: internal }).toEqual({ after: fault, internalErrors: [] });
  expect(f.child.hasExited()).toBe(false);
  const exit = await f.child.stop("SIGTERM");
  // Bun's SQL client says on stderr, outside hookd's JSON log, that it retries a lost LISTEN
  // connection (reported; not what this test is about). Anything else there is a failure.
  const stderr = f.child
    .stderr()
    .split("\n")
    .filter((line) => line !== "" && !/^bun:sql LISTEN "[^"]+" failed, retrying: /.test(line));
  expect({ after: fault, exit, stderr }).toEqual({ after: fault, exit: 0, stderr: [] });

  // At least once, not exactly once: a success whose settlement was lost is sent again. Counted
  // for the report; overlaps, not repeats, are what the spec forbids.
  let redelivered = 0;
  for (const n of f.rx.succeeded.values()) redelivered += n - 1;
  return { readyMs, deliveredMs, redelivered, committedDespite503: extra.length };
}

function report(fault: string, numbers: Record<string, number>, faulted: Timed[]): void {
  const max = (what: string) =>
    Math.round(Math.max(0, ...faulted.filter((t) => t.what.endsWith(what)).map((t) => t.ms)));
  const fields = {
    ...numbers,
    maxIngestMs: max("/v1/events"),
    maxListMs: max("/v1/webhooks"),
    maxReadyzMs: max("/readyz"),
    maxHealthzMs: max("/healthz"),
  };
  console.log(
    `postgres-faults: ${fault}: ${Object.entries(fields)
      .map(([k, v]) => `${k}=${Math.round(v)}`)
      .join(" ")}`,
  );
}

// ---- the faults ----

test.skipIf(SKIP)(
  "connection reset: calls in flight answer 202 or 503 in the bound, never hang; hookd reconnects by itself",
  async () => {
    const f = await startFaultyHookd();
    const accepted = await publishAccepted(f.url, EVENTS_BEFORE, "before the resets");
    const answers: Timed[] = [];
    // Several resets, each while a burst of calls (and deliveries being settled) is in flight;
    // between two, hookd must have connected again through the proxy.
    for (let round = 0; round < 5; round++) {
      const sent = f.proxy.bytes().toServer;
      const burst = Promise.all([
        ...Array.from({ length: 8 }, () => publish(f.url)),
        timed(f.url, "GET", "/v1/webhooks"),
        timed(f.url, "GET", "/readyz"),
        timed(f.url, "GET", "/healthz"),
      ]);
      await waitFor(() => f.proxy.bytes().toServer > sent, {
        timeoutMs: BOUND_MS,
        what: "the burst to reach the database",
      });
      f.proxy.reset();
      const results = await burst;
      answers.push(...results);
      for (const res of results) {
        if (res.what === "GET /healthz") expectHealthy(res, `reset ${round}`);
        else if (res.status === 503) {
          if (res.what === "GET /readyz") expectNotReady(res, `reset ${round}`);
          else expectUnavailable(res, `reset ${round}`);
        } else {
          expect({ round, what: res.what, status: res.status }).toEqual({
            round,
            what: res.what,
            status: res.what === "POST /v1/events" ? 202 : 200,
          });
          expect({ round, what: res.what, ms: res.ms <= BOUND_MS }).toEqual({
            round,
            what: res.what,
            ms: true,
          });
        }
        if (res.what === "POST /v1/events" && res.status === 202) accepted.push(res.body.id);
      }
      await waitFor(() => f.proxy.connections() > 0, {
        timeoutMs: RECOVERY_MS,
        what: "hookd to connect again after the reset",
      });
    }
    const refused = answers.filter((a) => a.status === 503).length;
    const numbers = await expectRecovered(f, accepted, "connection resets");
    report("reset", { ...numbers, answered503: refused, answered: answers.length }, answers);
  },
  TEST_TIMEOUT_MS,
);

test.skipIf(SKIP)(
  "half-open connections (blackhole): 503 within statement_timeout, /readyz 503; recovery once the link is back",
  async () => {
    const f = await startFaultyHookd();
    const accepted = await publishAccepted(f.url, EVENTS_BEFORE, "before the blackhole");
    await f.proxy.mode("blackhole");
    const faulted = await probeWhileFaulted(f.url, "blackhole");
    expect(f.child.hasExited()).toBe(false);
    await f.proxy.mode("pass");
    report("blackhole", await expectRecovered(f, accepted, "the blackhole"), faulted);
  },
  TEST_TIMEOUT_MS,
);

test.skipIf(SKIP)(
  "server unreachable (connection refused): 503 within statement_timeout, /readyz 503; recovery once it listens",
  async () => {
    const f = await startFaultyHookd();
    const accepted = await publishAccepted(f.url, EVENTS_BEFORE, "before the refusal");
    await f.proxy.mode("refuse");
    const faulted = await probeWhileFaulted(f.url, "refuse");
    expect(f.child.hasExited()).toBe(false);
    await f.proxy.mode("pass");
    report("refuse", await expectRecovered(f, accepted, "the refusal"), faulted);
  },
  TEST_TIMEOUT_MS,
);

test.skipIf(SKIP)(
  "server restart (reset, refused for a while, back): 503 while down, nothing accepted lost, recovery by itself",
  async () => {
    const f = await startFaultyHookd();
    const accepted = await publishAccepted(f.url, EVENTS_BEFORE, "before the restart");
    // Calls in flight when the server goes: each answers 202 (committed) or 503, in the bound.
    const inFlight = Promise.all(Array.from({ length: 5 }, () => publish(f.url)));
    f.proxy.reset();
    await f.proxy.mode("refuse");
    for (const res of await inFlight) {
      if (res.status === 202) accepted.push(res.body.id);
      else expectUnavailable(res, "in flight at the restart");
    }
    const faulted = await probeWhileFaulted(f.url, "down");
    expect(f.child.hasExited()).toBe(false);
    await f.proxy.mode("pass");
    report("restart", await expectRecovered(f, accepted, "the restart"), faulted);
  },
  TEST_TIMEOUT_MS,
);

test.skipIf(SKIP)(
  "a connection lost after COMMIT reached the server: the committed settlement does not stall the ones after it",
  async () => {
    // What a reset or a partition does when it lands between a settlement's COMMIT reaching the
    // server and the acknowledgement reaching hookd: the attempt is committed, hookd sees a broken
    // connection. The random resets above hit that window now and then; here it is made certain.
    // A deferred trigger (in this test's schema only) makes the COMMIT of the first attempt wait
    // for an advisory lock the test holds; the test resets the proxy while it waits, then lets go,
    // so the server commits and cannot say so.
    const f = await startFaultyHookd();
    const sql = new SQL({ url: POSTGRES_URL as string, max: 1 });
    admin = { sql, held: await sql.reserve() };
    const key = 700_000_000 + Math.floor(Math.random() * 1_000_000);
    await admin.held.unsafe(
      `CREATE FUNCTION ${f.schema}.hold_commit() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN PERFORM pg_advisory_xact_lock(${key}); RETURN NULL; END $$`,
    );
    await admin.held.unsafe(
      `CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON ${f.schema}.attempts
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${f.schema}.hold_commit()`,
    );
    await admin.held.unsafe(`SELECT pg_advisory_lock(${key})`);

    const accepted = await publishAccepted(f.url, 1, "the event whose settlement is cut off");
    // The COMMIT waits on the lock (for less than hookd's lock_timeout: the poll is quick).
    await waitFor(
      async () =>
        (
          await admin!.held.unsafe(
            `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = ${key} AND NOT granted`,
          )
        ).length > 0,
      { timeoutMs: 10_000, intervalMs: 5, what: "the settlement's COMMIT to wait on the test's lock" },
    );
    f.proxy.reset();
    await admin.held.unsafe(`SELECT pg_advisory_unlock(${key})`);
    // The server committed the attempt that hookd lost the answer for.
    const committed = await waitFor(
      async () => {
        const rows = await admin!.held.unsafe(`SELECT status FROM ${f.schema}.deliveries`);
        return rows[0]?.status === DELIVERY_STATUS.success ? rows : null;
      },
      { timeoutMs: 5_000, what: "the cut-off settlement to be committed on the server" },
    );
    expect(committed.length).toBe(1);

    // From here on, the deliveries of new events must be settled as usual.
    const numbers = await expectRecovered(f, accepted, "a lost COMMIT acknowledgement");
    report("lost-commit-ack", numbers, []);
  },
  TEST_TIMEOUT_MS,
);
