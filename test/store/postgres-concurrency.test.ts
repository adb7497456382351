// PostgreSQL only: the store under concurrent writers, as several instances over one schema are.
// - The due-time hint: ingests lower a subscription's next_due_at without locking its row while
//   claims on other "instances" (stores over the same schema) drain it and raise the hint; a raise
//   that missed a delivery committed meanwhile would leave it stranded (never due again to any
//   claim). Every accepted delivery must be claimed. And, without a race: while a writer holds a
//   subscription's due lock, a claim that drains it leaves its hint low; after, the next one raises it.
// - Grouped ingest: concurrent requests share transactions; each gets its own events back, fanned
//   out against the subscriptions as they are in the database (not an older cached copy).
// - hookd_ingest() (migration 7) takes the same locks as the code that changes subscriptions and
//   raises hints: its lock keys are the ones the TypeScript side uses.
// - Wake-ups: an ingest's notification reaches the other instances, not the one that sent it (its
//   routes wake its own dispatcher; an echo would cost a claim), nor one that just found every
//   subscription it names at its cap; anything else ends that instance's quiet at once. An instance
//   that just found a subscription at its cap sends none for work it queues there.
// - Maintenance (withMaintenanceLock) runs on one instance at a time.
// - Fan-out freshness: a keyed ingest on a store with an old copy of the subscriptions fans out as
//   the database has them; a subscription change waits for the fan-out lock ingests hold shared.
// - A claim skips delivery rows another transaction holds; the reaper's recount corrects in_flight.
// - After a quiet runs out, the first claim asks the database whether a due subscription has a
//   place (a cheap statement instead of the claim): a place another instance gave back is taken.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { SQL } from "bun";
import { createManualClock } from "../../src/runtime/clock.ts";
import { createIdGenerator } from "../../src/runtime/ids.ts";
import { cryptoRandom } from "../../src/runtime/random.ts";
import { DUE_LOCK_KEY } from "../../src/store/postgres/deliveries.ts";
import { WORK_CHANNEL_NAME } from "../../src/store/postgres/dispatch.ts";
import { FANOUT_LOCK, FANOUT_LOCK_SHARED } from "../../src/store/postgres/fanout.ts";
import type { ClaimedDelivery, Store } from "../../src/store/store.ts";
import { createTestDatabase, skipWithoutPostgres } from "../support/postgres.ts";
import { attemptResult, newWebhook, T0 } from "../support/stores.ts";
import { waitFor } from "../support/wait-for.ts";

const SKIP = skipWithoutPostgres("PostgreSQL concurrency");
const INSTANCES = 3;
const INGESTERS_PER_INSTANCE = 4;
const EVENTS_PER_INGESTER = 60;
const HEALTH = { disableAfterFailures: 1000, disableAfterMs: 0 };

describe.skipIf(SKIP)("postgres under concurrent writers", () => {
  const clock = createManualClock(T0);
  const ids = createIdGenerator(clock, cryptoRandom);
  let stores: Store[] = [];

  beforeAll(async () => {
    if (SKIP) return;
    url = await createTestDatabase();
    const { createPostgresStore } = await import("../../src/store/postgres/index.ts");
    // One first (it migrates), then the others on the migrated schema.
    const open = () => createPostgresStore({ url, poolSize: 6, statementTimeoutMs: 10_000, ids, clock });
    stores = [await open()];
    for (let i = 1; i < INSTANCES; i++) stores.push(await open());
  });

  let url = "";

  // The quiet tests: each on a database of its own (what earlier tests left due would end a quiet
  // early, rightly), with stores opened on it as instances.
  const ownDatabase = async () => {
    const { createPostgresStore } = await import("../../src/store/postgres/index.ts");
    const own = await createTestDatabase();
    return {
      url: own,
      open: () => createPostgresStore({ url: own, poolSize: 4, statementTimeoutMs: 10_000, ids, clock }),
    };
  };
  // Created a second ago: due for a whatever offset to the database's clock each store measured
  // (they measured it at different moments while this manual clock stood still).
  const eventIn = (tenantId: string, type: string) => ({
    tenantId,
    events: [{ id: ids.next("evt"), type, accountId: null, payload: "{}", createdAt: clock.now() - 1_000 }],
    now: clock.now(),
  });
  const claimOn = (store: Store) =>
    store.claimDue({
      now: clock.now(),
      owner: `q-${ids.next("evt")}`,
      leaseMs: 60_000,
      limit: 10,
      retryLimit: 10,
    });

  /**
   * Runs `take` in a transaction on a connection of its own and keeps that transaction open, with
   * whatever locks it took, until `end()` (which commits it and closes the connection; calling it
   * again does nothing). Answers once `take` is done, with its value.
   */
  const holdOpen = async <T>(on: string, take: (tx: SQL) => Promise<T>) => {
    const { SQL } = await import("bun");
    const sql = new SQL({ url: on, max: 1 });
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let taken: (value: T) => void = () => {};
    const value = new Promise<T>((resolve) => (taken = resolve));
    const done = sql.begin(async (tx) => {
      taken(await take(tx));
      await held;
    });
    let ended: Promise<void> | null = null;
    const end = () => {
      release();
      ended ??= done.finally(() => sql.close());
      return ended;
    };
    try {
      return { value: await Promise.race([value, done.then(() => value)]), end };
    } catch (error) {
      await end().catch(() => {});
      throw error;
    }
  };

  afterAll(async () => {
    for (const store of stores) await store.close();
  });

  test("ingests racing claims that drain and raise the hint strand no delivery", async () => {
    const first = stores[0]!;
    // One subscription per round of events: once a round's ingests are done, no later ingest lowers
    // that subscription's hint again, so a delivery a raise hid stays stranded and the test sees it.
    const webhooks = [];
    for (let round = 0; round < EVENTS_PER_INGESTER; round++) {
      webhooks.push(
        await first.insertWebhook(
          newWebhook(ids, clock.now(), { maxInFlight: 1000, events: [`r.${round}`] }),
        ),
      );
    }
    let ingesting = INSTANCES * INGESTERS_PER_INSTANCE;
    let accepted = 0;
    const claimed = new Map<string, ClaimedDelivery>();

    const ingester = async (store: Store) => {
      try {
        for (let i = 0; i < EVENTS_PER_INGESTER; i++) {
          const id = ids.next("evt");
          const result = await store.ingest({
            tenantId: "t1",
            events: [{ id, type: `r.${i}`, accountId: null, payload: "{}", createdAt: clock.now() }],
            now: clock.now(),
          });
          expect(result.kind).toBe("accepted");
          accepted++;
        }
      } finally {
        ingesting--;
      }
    };

    let owners = 0;
    const claimOnce = async (store: Store): Promise<ClaimedDelivery[]> => {
      const got = await store.claimDue({
        now: clock.now(),
        owner: `o${++owners}`,
        leaseMs: 60_000,
        limit: 500,
        retryLimit: 500,
      });
      // Leased, never settled: a settlement locks the subscription's row, and a raise skips rows
      // another transaction holds (leaving the hint low), so settlements overlapping the raises
      // would hide one that ignored the due lock. A leased row keeps the hint no later than its
      // lease's end, a minute away: the sweep below finds only what a raise did not hide.
      for (const d of got) {
        expect(claimed.has(d.id)).toBe(false);
        claimed.set(d.id, d);
      }
      return got;
    };

    // Claimers drain as fast as they can while ingests run, so the hint is raised (to "nothing
    // due") over and over while other ingests are between their insert and their commit.
    const claimer = async (store: Store) => {
      for (let rounds = 0; ingesting > 0 && rounds < 100_000; rounds++) {
        if ((await claimOnce(store)).length === 0) await Bun.sleep(0);
      }
    };

    await Promise.all(
      stores.flatMap((store) => [
        ...Array.from({ length: INGESTERS_PER_INSTANCE }, () => ingester(store)),
        claimer(store),
      ]),
    );
    // Writers are done: whatever is queued must be claimable now, by any instance. (A second on,
    // past the few milliseconds by which the stores' measures of the database clock differ; well
    // before the 60 s leases end, so nothing is claimed twice.)
    clock.advance(1000);
    for (let rounds = 0; rounds < 10_000; rounds++) {
      if ((await claimOnce(stores[rounds % INSTANCES]!)).length === 0) break;
    }
    expect(accepted).toBe(INSTANCES * INGESTERS_PER_INSTANCE * EVENTS_PER_INGESTER);
    expect(claimed.size).toBe(accepted);
    const outcome = await first.settle(
      [...claimed.values()].map((d) => attemptResult(ids, d, { action: "succeed" }, clock.now())),
      clock.now(),
      HEALTH,
      () => ids.next("evt"),
    );
    expect(outcome.applied.every(Boolean)).toBe(true);
    expect((await first.queueStats(clock.now())).depth).toBe(0);
  }, 120_000);

  test("a drained subscription's hint stays low while a writer holds its due lock, and is raised after", async () => {
    const { url: own, open } = await ownDatabase();
    const store = await open();
    const { SQL } = await import("bun");
    const reader = new SQL({ url: own, max: 1 });
    const hint = async (id: string) => {
      const [row] = (await reader.unsafe("SELECT next_due_at FROM webhooks WHERE id = $1", [id])) as {
        next_due_at: string | null;
      }[];
      return row?.next_due_at === null || row?.next_due_at === undefined ? null : Number(row.next_due_at);
    };
    let writer: Awaited<ReturnType<typeof holdOpen>> | null = null;
    try {
      const webhook = await store.insertWebhook({
        ...newWebhook(ids, clock.now(), { events: ["h.due"] }),
        tenantId: "th",
      });
      await store.ingest(eventIn("th", "h.due"));
      const lowered = await hint(webhook.id);
      expect(lowered).not.toBeNull();
      // A writer between its due lock and its commit, as an ingest whose delivery the claim below
      // cannot see yet: the claim drains the subscription, and its raise must leave the hint low.
      writer = await holdOpen(own, (tx) =>
        tx.unsafe(`SELECT pg_advisory_xact_lock_shared(${DUE_LOCK_KEY("$1::text")})`, [webhook.id]),
      );
      expect((await claimOn(store)).length).toBe(1);
      await store.nextDueAt([]); // after the claim's deferred housekeeping: its raise
      expect(await hint(webhook.id)).toBe(lowered);
      await writer.end();
      // With the lock free, a claim that finds the subscription drained raises its hint: to its
      // lease's end, a minute away.
      expect((await claimOn(store)).length).toBe(0);
      await store.nextDueAt([]);
      expect(await hint(webhook.id)).toBeGreaterThan(lowered! + 30_000);
    } finally {
      await writer?.end();
      await reader.close();
      await store.close();
    }
  }, 30_000);

  test("maintenance runs on one instance at a time: another's call answers null until the first ends", async () => {
    const [a, b] = [stores[0]!, stores[1]!];
    let release = () => {};
    const barrier = new Promise<void>((resolve) => (release = resolve));
    let entered = () => {};
    const inside = new Promise<void>((resolve) => (entered = resolve));
    let runs = 0;
    const first = a.withMaintenanceLock(async () => {
      runs++;
      entered();
      await barrier;
      return "a";
    });
    try {
      await inside;
      expect(await b.withMaintenanceLock(async () => ++runs)).toBeNull();
      expect(await a.withMaintenanceLock(async () => ++runs)).toBeNull();
      expect(runs).toBe(1);
    } finally {
      release();
    }
    expect(await first).toBe("a");
    expect(await b.withMaintenanceLock(async () => "b")).toBe("b");
  });

  test("an ingest with idempotency keys on a store with an old copy of the subscriptions fans out as the database has them", async () => {
    const [a, b] = [stores[0]!, stores[1]!];
    const webhook = await a.insertWebhook({
      ...newWebhook(ids, clock.now(), { events: ["k.*"] }),
      tenantId: "tk",
    });
    const keyed = (key: string, perEvent: boolean) => {
      const request = eventIn("tk", "k.x");
      const held = { key, requestHash: `h-${key}`, expiresAt: clock.now() + 60_000 };
      return perEvent ? { ...request, eventKeys: [held] } : { ...request, idempotency: held };
    };
    // b copies the tenant's subscriptions (this event is fanned out to the webhook) ...
    const warm = await b.ingest(eventIn("tk", "k.x"));
    expect(warm.kind === "accepted" && warm.events[0]!.deliveriesCount).toBe(1);
    // ... then the webhook is deleted through a: b's copy is old, and its keyed ingests must see it.
    expect(await a.deleteWebhook(webhook.id, "tk", clock.now())).toBe(true);
    for (const [key, perEvent] of [
      [ids.next("evt"), false],
      [ids.next("evt"), true],
    ] as const) {
      const result = await b.ingest(keyed(key, perEvent));
      expect(result.kind).toBe("accepted");
      expect(result.kind === "accepted" && result.events[0]!.deliveriesCount).toBe(0);
    }
  });

  test("a subscription change waits for the exclusive fan-out lock that ingests hold shared", async () => {
    const store = stores[0]!;
    const webhook = await store.insertWebhook({
      ...newWebhook(ids, clock.now(), { events: ["f.*"] }),
      tenantId: "tf",
    });
    const { SQL } = await import("bun");
    const watcher = new SQL({ url, max: 1 });
    let ingesting: Awaited<ReturnType<typeof holdOpen>> | null = null;
    try {
      ingesting = await holdOpen(url, (tx) => tx.unsafe(`SELECT ${FANOUT_LOCK_SHARED}`));
      let changed = false;
      const change = store
        .updateWebhook(
          webhook.id,
          "tf",
          { description: "changed while an ingest held the lock" },
          clock.now(),
        )
        .then((result) => {
          changed = true;
          return result;
        });
      // The change asks for the lock exclusively and waits: its request is in pg_locks, not granted.
      await waitFor(
        async () => {
          const [row] = (await watcher.unsafe(
            `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
           WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.mode = 'ExclusiveLock'
             AND NOT l.granted`,
          )) as { n: number }[];
          return row!.n > 0;
        },
        { what: "the change's request for the fan-out lock" },
      );
      expect(changed).toBe(false);
      await ingesting.end();
      expect(await change).not.toBeNull();
      expect(changed).toBe(true);
    } finally {
      await ingesting?.end();
      await watcher.close();
    }
  }, 30_000);

  test("a claim skips a due delivery another transaction holds, and takes the others at once", async () => {
    // statement_timeout (and lock_timeout) 2 s: a claim that waited for the held row would fail.
    const { createPostgresStore } = await import("../../src/store/postgres/index.ts");
    const own = await createTestDatabase();
    const store = await createPostgresStore({ url: own, poolSize: 4, statementTimeoutMs: 2_000, ids, clock });
    let holder: Awaited<ReturnType<typeof holdOpen<string>>> | null = null;
    try {
      const webhook = await store.insertWebhook({
        ...newWebhook(ids, clock.now(), { events: ["s.x"], maxInFlight: 10 }),
        tenantId: "ts",
      });
      for (let i = 0; i < 3; i++) await store.ingest(eventIn("ts", "s.x"));
      holder = await holdOpen(own, async (tx) => {
        const [row] = (await tx.unsafe(
          "SELECT id FROM deliveries WHERE webhook_id = $1 ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE",
          [webhook.id],
        )) as { id: string }[];
        return row!.id;
      });
      const heldId = holder.value;
      const claimed = await claimOn(store);
      expect(claimed.map((d) => d.id)).not.toContain(heldId);
      expect(claimed.length).toBe(2);
      await holder.end();
      const rest = await claimOn(store);
      expect(rest.map((d) => d.id)).toEqual([heldId]);
    } finally {
      await holder?.end();
      await store.close();
    }
  }, 30_000);

  test("the recount corrects a subscription's in_flight from its leases, and claims follow it", async () => {
    const { url: own, open } = await ownDatabase();
    const store = await open();
    const { SQL } = await import("bun");
    const sql = new SQL({ url: own, max: 1 });
    try {
      const webhook = await store.insertWebhook({
        ...newWebhook(ids, clock.now(), { events: ["c.x"], maxInFlight: 2 }),
        tenantId: "tc",
      });
      for (let i = 0; i < 3; i++) await store.ingest(eventIn("tc", "c.x"));
      const [first, second] = await claimOn(store);
      expect(second).toBeDefined();
      await store.settle(
        [attemptResult(ids, first!, { action: "succeed" }, clock.now())],
        clock.now(),
        HEALTH,
        () => ids.next("evt"),
      );
      // A count one too high (one lease is live): the place the settlement gave back is lost.
      await sql.unsafe("UPDATE webhooks SET in_flight = 2 WHERE id = $1", [webhook.id]);
      expect((await claimOn(store)).length).toBe(0);
      expect(await store.reconcileInFlight(clock.now())).toBe(1);
      const [row] = (await sql.unsafe("SELECT in_flight FROM webhooks WHERE id = $1", [webhook.id])) as {
        in_flight: number;
      }[];
      expect(row!.in_flight).toBe(1);
      expect((await claimOn(store)).length).toBe(1);
      expect(await store.reconcileInFlight(clock.now())).toBe(0); // counts that are right are left alone
    } finally {
      await sql.close();
      await store.close();
    }
  }, 30_000);

  test("concurrent ingests grouped into shared transactions each answer their own events", async () => {
    const [a, b] = [stores[0]!, stores[1]!];
    const tenants = ["ta", "tb", "tc"];
    const hooks = new Map<string, string>();
    for (const tenant of tenants) {
      const webhook = await a.insertWebhook({
        ...newWebhook(ids, clock.now(), { events: ["g.*"] }),
        tenantId: tenant,
      });
      hooks.set(tenant, webhook.id);
    }
    // A subscription made through one store after another cached its copy: the next events on the
    // other one are fanned out to it too (the grouped write reads the fan-out version).
    const warm = {
      id: ids.next("evt"),
      type: "z.none",
      accountId: null,
      payload: "{}",
      createdAt: clock.now(),
    };
    await b.ingest({ tenantId: "ta", events: [warm], now: clock.now() });
    const late = await a.insertWebhook({
      ...newWebhook(ids, clock.now(), { events: ["g.*"] }),
      tenantId: "ta",
    });
    const requests = Array.from({ length: 60 }, (_, i) => {
      const tenantId = tenants[i % tenants.length]!;
      const events = Array.from({ length: 1 + (i % 3) }, () => ({
        id: ids.next("evt"),
        type: "g.x",
        accountId: null,
        payload: `{"n":${i}}`,
        createdAt: clock.now(),
      }));
      return { tenantId, events, now: clock.now() };
    });
    const results = await Promise.all(requests.map((r) => b.ingest(r)));
    for (const [i, result] of results.entries()) {
      const request = requests[i]!;
      expect(result.kind).toBe("accepted");
      if (result.kind !== "accepted") continue;
      expect(result.events.map((e) => e.id)).toEqual(request.events.map((e) => e.id));
      for (const event of result.events) {
        expect(event.tenantId).toBe(request.tenantId);
        expect(event.deliveriesCount).toBe(request.tenantId === "ta" ? 2 : 1);
        const page = await a.listDeliveries({ eventId: event.id }, { order: "-created_at", limit: 10 });
        const targets = page.items.map((d) => d.webhookId).sort();
        const expected =
          request.tenantId === "ta" ? [hooks.get("ta")!, late.id] : [hooks.get(request.tenantId)!];
        expect(targets).toEqual(expected.sort());
      }
    }
  }, 60_000);

  test("an ingest's work notification wakes the other instances, never its own", async () => {
    const [a, b, c] = [stores[0]!, stores[1]!, stores[2]!];
    await a.insertWebhook({ ...newWebhook(ids, clock.now(), { events: ["n.*"] }), tenantId: "tn" });
    const heard = { a: 0, b: 0, c: 0 };
    const stops = await Promise.all([
      a.onWork(() => heard.a++),
      b.onWork(() => heard.b++),
      c.onWork(() => heard.c++),
    ]);
    const ingest = (store: Store) =>
      store.ingest({
        tenantId: "tn",
        events: [
          { id: ids.next("evt"), type: "n.x", accountId: null, payload: "{}", createdAt: clock.now() },
        ],
        now: clock.now(),
      });
    try {
      // A fence: once a's and b's listeners heard c, every earlier notification has reached them
      // (each listener gets notifications in commit order).
      await ingest(c);
      await waitFor(() => heard.a > 0 && heard.b > 0, { what: "c's notification at a and b" });
      heard.a = heard.b = heard.c = 0;
      // Five notifications of a's own, each heard by b before the next ingest (so none is folded
      // into another), then c's: a hears c's alone.
      for (let i = 1; i <= 5; i++) {
        await ingest(a);
        await waitFor(() => heard.b >= i && heard.c >= i, { what: `a's notification ${i} at b and c` });
      }
      await ingest(c);
      await waitFor(() => heard.a > 0, { what: "c's notification at a" });
      expect(heard.a).toBe(1);
    } finally {
      for (const stop of stops) stop();
    }
  }, 30_000);

  test("hookd_ingest() takes the fan-out and due locks by the keys the rest of the store uses", async () => {
    const { SQL } = await import("bun");
    const sql = new SQL(url);
    try {
      const [row] = (await sql.unsafe("SELECT pg_get_functiondef('hookd_ingest'::regproc) AS def")) as {
        def: string;
      }[];
      const def = row!.def.replace(/\s+/g, " ");
      expect(def).toContain(`pg_advisory_xact_lock_shared(${FANOUT_LOCK})`);
      expect(def).toContain(`pg_advisory_xact_lock_shared(${DUE_LOCK_KEY("u.id")})`);
    } finally {
      await sql.close();
    }
  });

  test("an instance that found every due subscription at its cap hears only of work it can take", async () => {
    const { open } = await ownDatabase();
    const [a, b, c] = [await open(), await open(), await open()];
    try {
      const full = await a.insertWebhook({
        ...newWebhook(ids, clock.now(), { events: ["q.full"], maxInFlight: 1 }),
        tenantId: "tq",
      });
      await a.insertWebhook({ ...newWebhook(ids, clock.now(), { events: ["q.open"] }), tenantId: "tq" });
      const event = (type: string) => eventIn("tq", type);
      await b.ingest(event("q.full"));
      await b.ingest(event("q.full"));
      // q.full's one place taken, the rest of it due: a is quiet.
      expect((await claimOn(a)).length).toBe(1);
      expect((await claimOn(a)).length).toBe(0);
      let heard = 0;
      let heardAtC = 0;
      const stop = await a.onWork(() => heard++);
      const stopC = await c.onWork(() => heardAtC++);
      try {
        // Three notifications naming only the subscription a found full (each heard by c before the
        // next, so none is folded into another): a is not woken by them.
        for (let i = 1; i <= 3; i++) {
          await b.ingest(event("q.full"));
          await waitFor(() => heardAtC >= i, { what: `b's notification ${i} at c` });
        }
        await b.ingest(event("q.open"));
        await waitFor(() => heard > 0, { what: "the notification of q.open at a" });
        expect(heard).toBe(1);
        // That notification ended a's quiet (it would last 25 ms): a claim at once takes q.open's.
        const taken = await claimOn(a);
        expect(taken.map((d) => d.eventType)).toEqual(["q.open"]);
        expect(taken.every((d) => d.webhook.id !== full.id)).toBe(true);
      } finally {
        stop();
        stopC();
      }
    } finally {
      for (const store of [a, b, c]) await store.close();
    }
  }, 30_000);
  test("a quiet instance sends no notification for work it queues where it found no place", async () => {
    const { SQL } = await import("bun");
    const own = await ownDatabase();
    const a = await own.open();
    const listener = new SQL(own.url);
    try {
      const full = await a.insertWebhook({
        ...newWebhook(ids, clock.now(), { events: ["s.full"], maxInFlight: 1 }),
        tenantId: "ts",
      });
      const other = await a.insertWebhook({
        ...newWebhook(ids, clock.now(), { events: ["s.open"] }),
        tenantId: "ts",
      });
      const event = (type: string) => eventIn("ts", type);
      await a.ingest(event("s.full"));
      await a.ingest(event("s.full"));
      expect((await claimOn(a)).length).toBe(1);
      expect((await claimOn(a)).length).toBe(0); // a is quiet: s.full is at its cap
      // What a sends, as another instance's connection hears it (a sends one at a time, in order).
      const [row] = (await listener.unsafe(WORK_CHANNEL_NAME)) as { channel: string }[];
      const payloads: string[] = [];
      const stop = await listener.listen(row!.channel, (payload) => payloads.push(payload ?? ""));
      try {
        await a.ingest(event("s.full")); // nobody can take it: no notification
        await a.ingest(event("s.open")); // another subscription's: one
        await waitFor(() => payloads.some((p) => p.includes(other.id)), {
          what: "the notification of s.open",
        });
        expect(payloads.filter((p) => p.includes(full.id))).toEqual([]);
      } finally {
        await stop.unlisten();
      }
    } finally {
      await listener.close();
      await a.close();
    }
  }, 30_000);

  test("after its quiet runs out, a claim takes the place another instance gave back", async () => {
    const { open } = await ownDatabase();
    const [a, b] = [await open(), await open()];
    try {
      await a.insertWebhook({
        ...newWebhook(ids, clock.now(), { events: ["l.full"], maxInFlight: 1 }),
        tenantId: "tl",
      });
      for (let i = 0; i < 3; i++) await b.ingest(eventIn("tl", "l.full"));
      const [first] = await claimOn(a);
      expect(first).toBeDefined();
      expect((await claimOn(a)).length).toBe(0); // quiet: its one place is taken
      clock.advance(100); // the quiet ran out, and nothing happened at a: the database is asked
      expect((await claimOn(a)).length).toBe(0); // still no place
      // b settles a's lease (as the instance that took over a connection would): a place is free,
      // and a does not know of it.
      await b.settle(
        [attemptResult(ids, first!, { action: "succeed" }, clock.now())],
        clock.now(),
        HEALTH,
        () => ids.next("evt"),
      );
      clock.advance(100);
      const taken = await claimOn(a);
      expect(taken.length).toBe(1);
      expect(taken[0]!.id).not.toBe(first!.id);
    } finally {
      for (const store of [a, b]) await store.close();
    }
  }, 30_000);
});
