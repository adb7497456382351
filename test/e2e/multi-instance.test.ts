// SPEC §6 "Every guarantee of §2 and §3 holds across instances": several compiled dist/hookd
// processes over one PostgreSQL database, real receivers on 127.0.0.1. Every accepted event is
// delivered and a webhook's max_in_flight holds for all instances together; a SIGKILLed instance
// loses nothing and its leases are taken over without two attempts of one delivery overlapping; an
// idempotency key raced on two instances makes one event; a delete on one instance is what the next
// event on another is fanned out against; an instance whose clock is five minutes ahead, from its
// start or stepped while it runs, steals no lease (the binary under libfaketime, whose effect is
// checked in the instance's log lines; the same two cases at the store level with manual clocks); a
// key's rate limit holds for two instances together within 10%; and the crash loop of
// test/reliability on PostgreSQL (SIGKILLs of one instance under load).
//
// Needs HOOKD_TEST_POSTGRES_URL (skipped with one line without it). HOOKD_RELIABILITY=full: more kills.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createManualClock } from "../../src/runtime/clock.ts";
import { createIdGenerator } from "../../src/runtime/ids.ts";
import { cryptoRandom } from "../../src/runtime/random.ts";
import { createPostgresStore, type PostgresStore } from "../../src/store/postgres/index.ts";
import type { NewWebhook } from "../../src/store/store.ts";
import { ensureBinary, killStarted } from "../support/hookd-process.ts";
import {
  api,
  type Instance,
  type InstanceConfigOptions,
  type IntervalReceiver,
  metricSum,
  openDatabase,
  queuedAndLeased,
  runPool,
  startInstance,
  startIntervalReceiver,
  writeInstanceConfig,
} from "../support/multi-instance.ts";
import { createTestDatabase, skipWithoutPostgres } from "../support/postgres.ts";
import { tempDir } from "../support/temp.ts";
import { waitFor } from "../support/wait-for.ts";

const SKIP = skipWithoutPostgres("multi-instance");
const FULL = process.env.HOOKD_RELIABILITY === "full";
/** A delivery leased by a dead instance comes due when its lease ends: max(lease, timeout + 5 s) = 6 s here. */
const SETTLE_TIMEOUT_MS = 30_000;
const FIVE_MINUTES = 5 * 60_000;
const FAKETIME_LIB =
  [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
  ].find((path) => existsSync(path)) ?? null;
if (!SKIP && !FAKETIME_LIB)
  console.log("multi-instance: libfaketime not found (apt-get install faketime); clock tests skipped");

let receiver: IntervalReceiver | undefined;
let database: ReturnType<typeof openDatabase> | undefined;
const stores: PostgresStore[] = [];
/** Publishers run while this is set; cleared after each test, however it ended. */
let publishing = false;

async function cleanUp() {
  publishing = false;
  await killStarted();
  await receiver?.close();
  receiver = undefined;
  await database?.close();
  database = undefined;
  for (const store of stores.splice(0)) await store.close().catch(() => {});
}
afterEach(cleanUp);
afterAll(cleanUp);

interface Cluster {
  instances: Instance[];
  urls: string[];
  configPath: string;
  dir: string;
  databaseUrl: string;
}

/** `n` instances over one fresh database, started together (so they race to migrate it). */
async function startCluster(n: number, options: Omit<InstanceConfigOptions, "databaseUrl"> = {}) {
  const databaseUrl = await createTestDatabase();
  const dir = tempDir("hookd-multi-");
  const configPath = writeInstanceConfig(dir, "hookd", { ...options, databaseUrl });
  const instances = await Promise.all(Array.from({ length: n }, () => startInstance(configPath, dir)));
  database = openDatabase(databaseUrl);
  return { instances, urls: instances.map((i) => i.url), configPath, dir, databaseUrl } satisfies Cluster;
}

async function createWebhook(url: string, body: Record<string, unknown>): Promise<string> {
  const created = await api(url, "POST", "/v1/webhooks", { body: { name: "receiver", ...body } });
  if (created.status !== 201) throw new Error(`cannot create the webhook: ${JSON.stringify(created.body)}`);
  return created.body.id as string;
}

async function publish(url: string, type: string, data: Record<string, unknown> = {}) {
  const answer = await api(url, "POST", "/v1/events", { body: { type, data } });
  if (answer.status !== 202)
    throw new Error(`publish on ${url}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body as { id: string; deliveries_count: number };
}

// Some events are refused once (500), so their deliveries are retried, by whichever instance.
const failsFirst = (id: string) => [...id].reduce((sum, c) => sum + c.charCodeAt(0), 0) % 5 === 0;

describe.skipIf(SKIP)("several dist/hookd over one PostgreSQL database", () => {
  beforeAll(ensureBinary, 150_000);

  test("three instances: every accepted event is delivered, and max_in_flight holds across them", async () => {
    const cluster = await startCluster(3);
    receiver = startIntervalReceiver({ delayMs: { "/slow": 50 } });
    const rx = receiver;
    const [a, b] = cluster.urls as [string, string, string];
    await createWebhook(a, { url: rx.url("/all"), events: ["order.*"] });
    await createWebhook(b, { url: rx.url("/slow"), events: ["order.slow"], max_in_flight: 2 });

    const all: string[] = [];
    const slow: string[] = [];
    const refusals: string[] = [];
    await runPool(300, 12, async (i) => {
      const type = i % 3 === 0 ? "order.slow" : "order.created";
      const answer = await api(cluster.urls[i % 3] as string, "POST", "/v1/events", {
        body: { type, data: { n: i } },
      });
      if (answer.status !== 202) refusals.push(`${answer.status} ${JSON.stringify(answer.body)}`);
      else {
        all.push(answer.body.id);
        if (type === "order.slow") slow.push(answer.body.id);
      }
    });
    expect(refusals).toEqual([]);
    const missing = () =>
      all.filter((id) => !rx.delivered("/all").has(id)).length +
      slow.filter((id) => !rx.delivered("/slow").has(id)).length;
    await waitFor(() => missing() === 0, {
      timeoutMs: SETTLE_TIMEOUT_MS,
      intervalMs: 50,
      what: `every accepted event at both receivers (${missing()} missing)`,
    });
    const perInstance = await Promise.all(
      cluster.urls.map((url) => metricSum(url, "hookd_deliveries_total", 'status="success"')),
    );
    console.log(
      `three instances: ${all.length} events, /slow at most ${rx.maxOpen("/slow")} at once, successes per instance ${perInstance.join("/")}`,
    );
    expect(rx.maxOpen("/slow")).toBeLessThanOrEqual(2);
    // The cap was reached (the check above means something), and more than one instance delivered.
    expect(rx.maxOpen("/slow")).toBe(2);
    expect(perInstance.filter((n) => (n ?? 0) > 0).length).toBeGreaterThan(1);
  }, 60_000);

  test("one of three SIGKILLed mid-load: nothing accepted is lost, no two attempts of a delivery overlap", async () => {
    const cluster = await startCluster(3, { lease: "2s", timeout: "1s" });
    receiver = startIntervalReceiver({ delayMs: { "/hook": 100 }, failFirst: failsFirst });
    const rx = receiver;
    const db = database as NonNullable<typeof database>;
    await createWebhook(cluster.urls[0] as string, { url: rx.url("/hook"), events: ["order.*"] });
    const victim = cluster.instances[1] as Instance;
    let live = [...cluster.urls];

    const accepted: string[] = [];
    let sent = 0;
    publishing = true;
    const publisher = async () => {
      while (publishing && sent < 600) {
        const url = live[sent % live.length] as string;
        sent++;
        try {
          const answer = await api(url, "POST", "/v1/events", {
            body: { type: "order.created", data: { sent } },
          });
          if (answer.status === 202) accepted.push(answer.body.id);
        } catch {
          // The victim died under us: only 202s are promised.
        }
        await Bun.sleep(20);
      }
    };
    const publishers = Array.from({ length: 6 }, publisher);

    await waitFor(() => accepted.length >= 60, { timeoutMs: 10_000, what: "events to be accepted" });
    // Kill it while it holds leases, so the others must take them over when they end.
    let victimLeases: string[] = [];
    await waitFor(
      async () => {
        victimLeases = (await db.deliveries())
          .filter((row) => row.lease_owner?.startsWith(`${victim.id}.`) && row.status !== "success")
          .map((row) => row.event_id);
        return victimLeases.length > 0;
      },
      { timeoutMs: 10_000, intervalMs: 5, what: "the victim to hold leases" },
    );
    victim.hookd.proc.kill("SIGKILL");
    live = live.filter((url) => url !== victim.url);
    expect(await victim.hookd.exited()).toBeNull();
    const atKill = accepted.length;
    await waitFor(() => accepted.length >= atKill + 60, { timeoutMs: 10_000, what: "events after the kill" });
    publishing = false;
    await Promise.all(publishers);

    const missing = () => accepted.filter((id) => !rx.delivered("/hook").has(id));
    await waitFor(() => missing().length === 0, {
      timeoutMs: SETTLE_TIMEOUT_MS,
      intervalMs: 100,
      what: `every accepted event delivered (${missing().length} of ${accepted.length} missing)`,
    });
    let left = { queued: -1, leased: -1 };
    await waitFor(
      async () => {
        left = queuedAndLeased(await db.deliveries());
        return left.queued === 0 && left.leased === 0;
      },
      { timeoutMs: SETTLE_TIMEOUT_MS, intervalMs: 100, what: "nothing queued or leased" },
    );
    console.log(
      `kill one of three: ${accepted.length} accepted, ${victimLeases.length} leased by the victim at its death, ` +
        `${rx.intervals.length} requests, at most ${rx.maxOpen("/hook")} at once`,
    );
    expect(rx.overlaps()).toEqual([]);
    expect(victimLeases.every((id) => rx.delivered("/hook").has(id))).toBe(true);
    // max_in_flight_per_webhook (16) held for the three, then the two, together.
    expect(rx.maxOpen("/hook")).toBeLessThanOrEqual(16);
  }, 60_000);

  test("one idempotency key on two instances at the same instant makes one event", async () => {
    const cluster = await startCluster(2);
    const [a, b] = cluster.urls as [string, string];
    const post = (url: string, key: string, data: Record<string, unknown>) =>
      api(url, "POST", "/v1/events", {
        body: { type: "order.created", data },
        headers: { "idempotency-key": key },
      });
    const run = `${Date.now()}`;
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const key = `same-${run}-${i}`;
      const [fromA, fromB] = await Promise.all([post(a, key, { i }), post(b, key, { i })]);
      expect([fromA.status, fromB.status]).toEqual([202, 202]);
      expect(fromB.body.id).toBe(fromA.body.id);
      ids.push(fromA.body.id);
      // Afterwards, the same key with another body is a conflict on either instance.
      const [conflictA, conflictB] = await Promise.all([
        post(a, key, { i, other: 1 }),
        post(b, key, { x: i }),
      ]);
      expect([conflictA.status, conflictB.status]).toEqual([409, 409]);
      expect(conflictA.body.error.code).toBe("conflict");
    }
    // Two different bodies raced with one key: one is accepted, the other is a 409.
    for (let i = 0; i < 10; i++) {
      const key = `differ-${run}-${i}`;
      const answers = await Promise.all([post(a, key, { i, side: "a" }), post(b, key, { i, side: "b" })]);
      expect(answers.map((x) => x.status).sort()).toEqual([202, 409]);
      ids.push((answers.find((x) => x.status === 202) as { body: { id: string } }).body.id);
    }
    const listed = await api(a, "GET", "/v1/events?limit=100");
    expect(listed.status).toBe(200);
    expect((listed.body.data as { id: string }[]).map((e) => e.id).sort()).toEqual([...ids].sort());
  }, 60_000);

  test("a webhook deleted (or disabled) through one instance gets nothing of the next event accepted by another", async () => {
    const cluster = await startCluster(2);
    receiver = startIntervalReceiver();
    const rx = receiver;
    const [a, b] = cluster.urls as [string, string];
    const afterChange: string[] = [];
    for (let round = 0; round < 10; round++) {
      const type = `round${round}.ping`;
      const webhook = await createWebhook(a, { url: rx.url(`/round${round}`), events: [type] });
      // Created through A, seen by B at once (and B's fan-out has now seen this webhook).
      expect((await publish(b, type)).deliveries_count).toBe(1);
      const change =
        round % 2 === 0
          ? await api(a, "DELETE", `/v1/webhooks/${webhook}`)
          : await api(a, "PATCH", `/v1/webhooks/${webhook}`, { body: { enabled: false } });
      expect(change.status).toBe(round % 2 === 0 ? 204 : 200);
      const event = await publish(b, type);
      expect(event.deliveries_count).toBe(0);
      afterChange.push(event.id);
    }
    // A marker through a live webhook, so "nothing received" is checked after the instances had time.
    await createWebhook(a, { url: rx.url("/marker"), events: ["marker.ping"] });
    const marker = await publish(b, "marker.ping");
    await waitFor(() => rx.delivered("/marker").has(marker.id), { timeoutMs: 10_000, what: "the marker" });
    for (const id of afterChange) {
      const deliveries = await api(a, "GET", `/v1/deliveries?event_id=${id}`);
      expect(deliveries.body.data).toEqual([]);
    }
    expect(rx.intervals.filter((i) => afterChange.includes(i.id))).toEqual([]);
  }, 60_000);

  /**
   * A (true clock) leases a delivery for 60 s and its receiver holds the attempt; B, whose clock
   * runs five minutes ahead (from its start, or stepped while it runs), serves events of the same
   * webhook meanwhile. B must not take the held delivery while A's lease lives.
   */
  async function clockSkewCase(step: "at-start" | "while-running") {
    const databaseUrl = await createTestDatabase();
    const dir = tempDir("hookd-skew-");
    const configPath = writeInstanceConfig(dir, "hookd", { databaseUrl, lease: "60s", timeout: "20s" });
    database = openDatabase(databaseUrl);
    const db = database;
    let held: string | null = null;
    // The first request to arrive is held (and any later one for the same webhook-id).
    const hold = (id: string) => {
      held ??= id;
      return held === id;
    };
    receiver = startIntervalReceiver({ hold });
    const rx = receiver;
    const a = await startInstance(configPath, dir);
    await createWebhook(a.url, { url: rx.url("/held"), events: ["clock.*"], timeout_seconds: 20 });
    const first = await publish(a.url, "clock.tick", { n: 0 });
    await waitFor(() => rx.open("/held") === 1, { timeoutMs: 10_000, what: "the held attempt" });
    expect(held as string | null).toBe(first.id);
    const [leased] = (await db.deliveries()).filter((row) => row.event_id === first.id);
    expect(leased?.lease_owner?.startsWith(`${a.id}.`)).toBe(true);

    const offsetFile = join(dir, "faketime-offset");
    writeFileSync(offsetFile, step === "at-start" ? "+5m\n" : "+0\n");
    const b = await startInstance(configPath, dir, {
      LD_PRELOAD: FAKETIME_LIB as string,
      FAKETIME_TIMESTAMP_FILE: offsetFile,
      FAKETIME_CACHE_DURATION: "1",
      DONT_FAKE_MONOTONIC: "1",
    });
    if (step === "while-running") writeFileSync(offsetFile, "+5m\n");
    // libfaketime does reach the compiled binary: B's log lines carry its skewed time.
    await waitFor(
      async () => {
        await api(b.url, "GET", "/healthz");
        const last = JSON.parse(b.hookd.lines.at(-1) as string) as { time: string };
        return new Date(last.time).getTime() - Date.now() > FIVE_MINUTES - 30_000;
      },
      { timeoutMs: 10_000, intervalMs: 200, what: "B's log lines to show its clock five minutes ahead" },
    );

    // B claims work of the same webhook (the held delivery is the oldest due one, were its lease over).
    const more: string[] = [];
    await waitFor(
      async () => {
        for (let i = 0; i < 3; i++) more.push((await publish(b.url, "clock.tick", { n: more.length })).id);
        await waitFor(() => more.every((id) => rx.delivered("/held").has(id)), {
          timeoutMs: 10_000,
          what: "the events published through B",
        });
        return ((await metricSum(b.url, "hookd_deliveries_total", 'status="success"')) ?? 0) > 0;
      },
      { timeoutMs: 12_000, intervalMs: 100, what: "B to deliver some of them itself" },
    );
    // Still one request for it, and the lease still A's (a steal shows as B's lease and a second request).
    const holder = (await db.deliveries()).find((row) => row.event_id === first.id)?.lease_owner ?? "";
    expect({
      requests: rx.intervals.filter((i) => i.id === first.id).length,
      leaseHolder: holder.startsWith(`${a.id}.`) ? "A" : holder.startsWith(`${b.id}.`) ? "B" : holder,
    }).toEqual({ requests: 1, leaseHolder: "A" });

    rx.release();
    await waitFor(() => rx.delivered("/held").has(first.id), {
      timeoutMs: 10_000,
      what: "the held delivery",
    });
    await waitFor(
      async () => (await db.deliveries()).find((row) => row.event_id === first.id)?.status === "success",
      { timeoutMs: 10_000, what: "the held delivery settled" },
    );
    const [done] = (await db.deliveries()).filter((row) => row.event_id === first.id);
    expect(done?.attempts).toBe(1);
    expect(rx.intervals.filter((i) => i.id === first.id)).toHaveLength(1);
    expect(rx.overlaps()).toEqual([]);
  }

  test.skipIf(!FAKETIME_LIB)(
    "an instance started with its clock five minutes ahead steals no lease",
    () => clockSkewCase("at-start"),
    45_000,
  );
  test.skipIf(!FAKETIME_LIB)(
    "an instance whose clock steps five minutes ahead while it runs steals no lease",
    () => clockSkewCase("while-running"),
    45_000,
  );

  // The same property without processes: store A (true clock) leases a delivery for 60 s; a second
  // store over the same database, whose clock reads five minutes ahead from its opening or steps
  // five minutes ahead after opening, must not claim it. The stores tell database time as the
  // daemon on the system clock does (timeBase monotonic): a manual clock stands in for a wall
  // clock that can be stepped.
  async function storeSkewCase(step: "at-open" | "after-open") {
    const databaseUrl = await createTestDatabase();
    const open = async (clock: ReturnType<typeof createManualClock>) => {
      const store = await createPostgresStore({
        url: databaseUrl,
        poolSize: 2,
        statementTimeoutMs: 5_000,
        ids: createIdGenerator(clock, cryptoRandom),
        clock,
        timeBase: "monotonic",
      });
      stores.push(store);
      return store;
    };
    const clockA = createManualClock(Date.now());
    const a = await open(clockA);
    const clockB = createManualClock(step === "at-open" ? Date.now() + FIVE_MINUTES : Date.now());
    const b = await open(clockB);
    if (step === "after-open") clockB.advance(FIVE_MINUTES);

    const ids = createIdGenerator(clockA, cryptoRandom);
    // (Not stores.ts newWebhook(): importing it prints the store contract's own skip line.)
    const webhook: NewWebhook = {
      id: ids.next("wh"),
      tenantId: "default",
      name: "w",
      description: null,
      url: "https://example.com/hooks",
      events: ["*"],
      accountIds: null,
      enabled: true,
      disabledReason: null,
      timeoutSeconds: 1,
      headers: {},
      metadata: {},
      maxInFlight: 8,
      secret: `whsec_${Buffer.alloc(32, 1).toString("base64")}`,
      createdAt: clockA.now(),
    };
    await a.insertWebhook(webhook);
    const event = {
      id: ids.next("evt"),
      type: "a.b",
      accountId: null,
      payload: "{}",
      createdAt: clockA.now(),
    };
    const ingested = await a.ingest({ tenantId: "default", events: [event], now: clockA.now() });
    expect(ingested.kind).toBe("accepted");
    const claim = (store: PostgresStore, now: number, owner: string) =>
      store.claimDue({ now, owner, leaseMs: 60_000, limit: 10, retryLimit: 10 });
    expect(await claim(a, clockA.now(), "a.1")).toHaveLength(1);
    expect(await claim(b, clockB.now(), "b.1")).toHaveLength(0);
  }

  test("store level: a store opened with its clock five minutes ahead claims nothing under another's lease", () =>
    storeSkewCase("at-open"));
  test("store level: a store whose clock steps five minutes ahead after opening claims nothing under another's lease", () =>
    storeSkewCase("after-open"));

  test("a key's write limit holds for two instances together, within 10%", async () => {
    const cluster = await startCluster(2, { rateLimits: { write: 60 } });
    // Each enforces its share once it has seen the other (a heartbeat at start and every 5 s).
    await waitFor(
      async () => {
        const seen = await Promise.all(cluster.urls.map((url) => metricSum(url, "hookd_instances")));
        return seen.every((n) => n === 2);
      },
      { timeoutMs: 15_000, intervalMs: 200, what: "both instances to see hookd_instances 2" },
    );
    const started = performance.now();
    const statuses: number[] = [];
    await runPool(200, 8, async (i) => {
      const answer = await api(cluster.urls[i % 2] as string, "POST", "/v1/webhooks", {
        body: { name: `limited-${i}`, url: "http://127.0.0.1:9/hook", events: ["rate.test"] },
      });
      statuses.push(answer.status);
    });
    const elapsed = performance.now() - started;
    const accepted = statuses.filter((s) => s !== 429);
    console.log(
      `rate limit: ${accepted.length} of 200 writes accepted in ${Math.round(elapsed)} ms (limit 60/min)`,
    );
    expect(elapsed).toBeLessThan(60_000);
    expect(accepted.every((s) => s === 201)).toBe(true);
    expect(accepted.length).toBeGreaterThanOrEqual(54);
    expect(accepted.length).toBeLessThanOrEqual(66);
  }, 60_000);

  test(
    `crash loop on PostgreSQL: ${FULL ? 12 : 3} SIGKILLs under load lose nothing, duplicates bounded by leases at kills`,
    async () => {
      const kills = FULL ? 12 : 3;
      const databaseUrl = await createTestDatabase();
      const dir = tempDir("hookd-pg-crash-");
      const configPath = writeInstanceConfig(dir, "hookd", { databaseUrl, lease: "2s", timeout: "1s" });
      database = openDatabase(databaseUrl);
      const db = database;
      receiver = startIntervalReceiver({ delayMs: { "/hook": 40 }, failFirst: failsFirst });
      const rx = receiver;
      let instance = await startInstance(configPath, dir);
      let target: string | null = instance.url;
      await createWebhook(target, { url: rx.url("/hook"), events: ["order.*"] });

      const accepted: string[] = [];
      let sent = 0;
      publishing = true;
      const publisher = async () => {
        while (publishing && sent < 3_000) {
          const url = target;
          if (url === null) {
            await Bun.sleep(30);
            continue;
          }
          sent++;
          try {
            const answer = await api(url, "POST", "/v1/events", {
              body: { type: "order.created", data: { sent } },
              timeoutMs: 3_000,
            });
            if (answer.status === 202) accepted.push(answer.body.id);
          } catch {
            // Killed under us: only 202s are promised.
          }
          await Bun.sleep(30);
        }
      };
      const publishers = Array.from({ length: 3 }, publisher);

      const leasedAtKills = new Map<string, number>();
      let inFlightAtKills = 0;
      for (let k = 0; k < kills; k++) {
        const before = accepted.length;
        await waitFor(() => accepted.length >= before + 25, {
          timeoutMs: 10_000,
          what: "events to be accepted",
        });
        // After a restart the killed instance's leases may hold every place of the webhook until
        // they end (the 1 s timeout plus the 5 s margin): the bound covers that.
        await waitFor(() => rx.open() > 0, {
          timeoutMs: 15_000,
          intervalMs: 1,
          what: "an attempt in flight",
        });
        inFlightAtKills += rx.open();
        instance.hookd.proc.kill("SIGKILL");
        target = null;
        expect(await instance.hookd.exited()).toBeNull();
        for (const row of await db.deliveries()) {
          if (row.lease_owner !== null && (row.status === "pending" || row.status === "retrying"))
            leasedAtKills.set(row.event_id, (leasedAtKills.get(row.event_id) ?? 0) + 1);
        }
        instance = await startInstance(configPath, dir);
        target = instance.url;
      }
      const last = accepted.length;
      await waitFor(() => accepted.length >= last + 25, {
        timeoutMs: 10_000,
        what: "events after the last restart",
      });
      publishing = false;
      await Promise.all(publishers);

      const missing = () => accepted.filter((id) => !rx.delivered("/hook").has(id));
      await waitFor(() => missing().length === 0, {
        timeoutMs: SETTLE_TIMEOUT_MS,
        intervalMs: 100,
        what: `every accepted event delivered (${missing().length} of ${accepted.length} missing)`,
      });
      let left = { queued: -1, leased: -1 };
      await waitFor(
        async () => {
          left = queuedAndLeased(await db.deliveries());
          return left.queued === 0 && left.leased === 0;
        },
        { timeoutMs: SETTLE_TIMEOUT_MS, intervalMs: 100, what: "nothing queued or leased" },
      );
      expect(await instance.hookd.stop("SIGTERM")).toBe(0);

      // A delivery answered 2xx more than once was leased at a kill at least that many times less one.
      const okCount = new Map<string, number>();
      for (const i of rx.intervals) if (i.status === 200) okCount.set(i.id, (okCount.get(i.id) ?? 0) + 1);
      let duplicates = 0;
      const unexplained: string[] = [];
      for (const [id, ok] of okCount) {
        if (ok <= 1) continue;
        duplicates += ok - 1;
        if (ok - 1 > (leasedAtKills.get(id) ?? 0)) unexplained.push(`${id}: ${ok} deliveries`);
      }
      const sumLeased = [...leasedAtKills.values()].reduce((a, b) => a + b, 0);
      console.log(
        `pg crash loop: ${kills} kills, ${accepted.length} accepted, ${duplicates} duplicates ≤ ${sumLeased} leased at kills ` +
          `(${inFlightAtKills} requests in flight at kills)`,
      );
      expect(accepted.length).toBeGreaterThan(80);
      expect(unexplained).toEqual([]);
      expect(sumLeased).toBeGreaterThan(0);
      expect(rx.overlaps()).toEqual([]);
    },
    FULL ? 240_000 : 60_000,
  );
});
