// What only the SQLite store has, and the contract suite cannot see: the file another connection
// opens. (The contract suite counts rows through exportRows, on the store's own connection.)
import { Database } from "bun:sqlite";
import { afterEach, beforeEach, expect, test } from "bun:test";
import { join } from "node:path";
import { createManualClock, type ManualClock } from "../../../src/runtime/clock.ts";
import { createIdGenerator, type IdGenerator } from "../../../src/runtime/ids.ts";
import { cryptoRandom } from "../../../src/runtime/random.ts";
import { createSqliteStore, type SqliteStore } from "../../../src/store/sqlite/index.ts";
import type { ClaimedDelivery, NewWebhook } from "../../../src/store/store.ts";
import { tempDir } from "../../support/temp.ts";

let clock: ManualClock;
let ids: IdGenerator;
let store: SqliteStore;

beforeEach(() => {
  clock = createManualClock();
  ids = createIdGenerator(clock, cryptoRandom);
  store = createSqliteStore({
    path: join(tempDir(), "hookd.db"),
    synchronous: "normal",
    ids,
  });
});
afterEach(async () => {
  await store.close();
});

const newWebhook = (events: string[]): NewWebhook => ({
  id: ids.next("wh"),
  tenantId: "t1",
  name: "w",
  description: null,
  url: "https://example.com/hooks",
  events,
  accountIds: null,
  enabled: true,
  disabledReason: null,
  timeoutSeconds: 1,
  headers: {},
  metadata: {},
  maxInFlight: 8,
  secret: `whsec_${Buffer.alloc(32, 1).toString("base64")}`,
  createdAt: clock.now(),
});

const publish = (n: number) =>
  store.ingest({
    tenantId: "t1",
    now: clock.now(),
    events: Array.from({ length: n }, () => ({
      id: ids.next("evt"),
      type: "a.b",
      accountId: null,
      payload: "{}",
      createdAt: clock.now(),
    })),
  });

test("200 concurrent ingests are on disk: another connection to the file sees every one", async () => {
  await store.insertWebhook(newWebhook(["*"]));
  const results = await Promise.all(Array.from({ length: 200 }, () => publish(1)));
  expect(results.every((r) => r.kind === "accepted")).toBe(true);
  const reopened = new Database(store.db.filename, { readonly: true });
  try {
    expect(reopened.query<{ n: number }, []>("SELECT count(*) AS n FROM events").get()?.n).toBe(200);
    expect(reopened.query<{ n: number }, []>("SELECT count(*) AS n FROM deliveries").get()?.n).toBe(200);
  } finally {
    reopened.close();
  }
});

// settleAndClaim (SQLite's one-transaction settle + claim), the claim's memory of caps, and the
// wake-up an ingest commit gives before its sync.
const HEALTH = { disableAfterFailures: 10, disableAfterMs: 5 * 86_400_000 };
let owners = 0;
const claim = (limit: number) =>
  store.claimDue({ now: clock.now(), owner: `o${++owners}`, leaseMs: 30_000, limit, retryLimit: limit });
const claimRequest = (limit: number) => ({
  now: clock.now(),
  owner: `o${++owners}`,
  leaseMs: 30_000,
  limit,
  retryLimit: limit,
});
const success = (
  d: { id: string; leaseOwner: string; webhook: { id: string } },
  attemptId = ids.next("atm"),
) => ({
  deliveryId: d.id,
  leaseOwner: d.leaseOwner,
  webhookId: d.webhook.id,
  signature: "v1,x",
  settlement: { action: "succeed" as const },
  attempt: {
    id: attemptId,
    startedAt: clock.now(),
    durationMs: 1,
    responseStatusCode: 200,
    responseHeaders: {},
    responseBody: "ok",
    error: null,
  },
});

test("settleAndClaim settles and claims the place it freed in one call, within the cap", async () => {
  await store.insertWebhook({ ...newWebhook(["*"]), maxInFlight: 2 });
  await publish(5);
  const first = await claim(10);
  expect(first).toHaveLength(2);
  const { outcome, claimed } = await store.settleAndClaim(
    [success(first[0] as (typeof first)[number])],
    clock.now(),
    HEALTH,
    () => ids.next("evt"),
    claimRequest(10),
  );
  expect(outcome.applied).toEqual([true]);
  expect(outcome.finals).toEqual([{ status: "success", mode: "live", count: 1 }]);
  // One place freed, one taken: the cap of 2 holds with the other attempt still leased.
  expect(claimed).toHaveLength(1);
  expect(await claim(10)).toHaveLength(0);
});

test("a settleAndClaim that fails changes nothing: its leases still count and nothing is claimed", async () => {
  await store.insertWebhook({ ...newWebhook(["*"]), maxInFlight: 2 });
  await publish(5);
  const first = await claim(10);
  const [a, b] = first as [(typeof first)[number], (typeof first)[number]];
  const done = await store.settleAndClaim(
    [success(a, "atm_same")],
    clock.now(),
    HEALTH,
    () => ids.next("evt"),
    claimRequest(0),
  );
  expect(done.claimed).toHaveLength(0);
  // The same attempt id again: the settlement's insert fails, the transaction rolls back.
  await expect(
    store.settleAndClaim(
      [success(b, "atm_same")],
      clock.now(),
      HEALTH,
      () => ids.next("evt"),
      claimRequest(10),
    ),
  ).rejects.toThrow();
  // A claim that fails after b's settlement (an owner that cannot be bound) undoes it too.
  await expect(
    store.settleAndClaim([success(b)], clock.now(), HEALTH, () => ids.next("evt"), {
      ...claimRequest(10),
      owner: {} as string,
    }),
  ).rejects.toThrow();
  // b's lease still counts (one place free, a's): exactly one more is claimable.
  expect(await claim(10)).toHaveLength(1);
  expect(await claim(10)).toHaveLength(0);
  // b was not settled: settling it for real still applies.
  const retried = await store.settle([success(b)], clock.now(), HEALTH, () => ids.next("evt"));
  expect(retried.applied).toEqual([true]);
});

test("a raised max_in_flight counts at the next claim (the claim's memory of caps is forgotten on change)", async () => {
  const webhook = { ...newWebhook(["*"]), maxInFlight: 2 };
  await store.insertWebhook(webhook);
  await publish(6);
  expect(await claim(10)).toHaveLength(2);
  expect(await claim(10)).toHaveLength(0);
  await store.updateWebhook(webhook.id, "t1", { maxInFlight: 4 }, clock.now());
  expect(await claim(10)).toHaveLength(2);
});

test("an ingest commit tells onWork listeners before the ingest resolves (before its WAL sync)", async () => {
  await store.insertWebhook(newWebhook(["*"]));
  const seen: string[] = [];
  const stop = await store.onWork(() => seen.push("work"));
  await publish(1).then(() => seen.push("ingested"));
  expect(seen).toEqual(["work", "ingested"]);
  stop();
  await publish(1);
  expect(seen).toHaveLength(2);
});

// Store.handOff: first attempts leased by the ingest that creates them.
const handOffTo = (room: number) => {
  const taken: ClaimedDelivery[][] = [];
  let owners = 0;
  const stop = store.handOff({
    room: () => room,
    owner: () => `h${++owners}`,
    leaseMs: 30_000,
    take: (claimed) => taken.push([...claimed]),
  });
  return { taken, stop, all: () => taken.flat() };
};
const leaseOf = (id: string) =>
  store.db
    .query<{ lease_owner: string | null; next_attempt_at: number | null }, [string]>(
      "SELECT lease_owner, next_attempt_at FROM deliveries WHERE id = ?",
    )
    .get(id);

test("an ingest hands its first attempts over leased, once committed, within the cap and the taker's room", async () => {
  const webhook = { ...newWebhook(["*"]), maxInFlight: 2, timeoutSeconds: 60 };
  await store.insertWebhook(webhook);
  const taker = handOffTo(10);
  const seen: string[] = [];
  await store.onWork(() => seen.push("work"));
  const result = await publish(5);
  expect(result.kind).toBe("accepted");
  // One batch, one hand-over: the cap of 2 leased, the other three left for a claim (so a wake-up).
  expect(taker.taken).toHaveLength(1);
  const handed = taker.all();
  expect(handed).toHaveLength(2);
  expect(seen).toEqual(["work"]);
  const events = (result.kind === "accepted" ? result.events : []).map((e) => e.id);
  expect(handed.map((d) => d.eventId)).toEqual(events.slice(0, 2));
  for (const d of handed) {
    expect(d).toMatchObject({ status: "pending", seriesAttempts: 0, payload: "{}", leaseOwner: "h1" });
    expect(d.webhook.id).toBe(webhook.id);
    // The longer of the dispatcher's lease and the timeout with its margin.
    expect(d.leaseUntil).toBe(clock.now() + 65_000);
    expect(leaseOf(d.id)).toEqual({ lease_owner: "h1", next_attempt_at: d.leaseUntil });
  }
  // The hand-over counts against the cap: a claim finds no place.
  expect(await claim(10)).toHaveLength(0);
  // Settled under the hand-off's lease, the freed place goes to the oldest queued delivery.
  const [first] = handed as [ClaimedDelivery];
  const { claimed } = await store.settleAndClaim(
    [success(first)],
    clock.now(),
    HEALTH,
    () => ids.next("evt"),
    claimRequest(10),
  );
  expect(claimed.map((d) => d.eventId)).toEqual(events.slice(2, 3));
});

test("nothing is handed over past a queued delivery, to a FIFO or rate-limited webhook, or without room", async () => {
  const plain = { ...newWebhook(["a.b"]), maxInFlight: 1 };
  await store.insertWebhook(plain);
  const taker = handOffTo(10);
  await publish(1);
  await publish(1); // queued: the first holds the only place
  expect(taker.all()).toHaveLength(1);
  const [first] = taker.all() as [ClaimedDelivery];
  await store.settle([success(first)], clock.now(), HEALTH, () => ids.next("evt"));
  // A place is free, but the queued delivery is due first: the new one waits behind it.
  await publish(1);
  expect(taker.all()).toHaveLength(1);
  const queued = await claim(10);
  expect(queued).toHaveLength(1);
  await store.settle([success(queued[0] as ClaimedDelivery)], clock.now(), HEALTH, () => ids.next("evt"));
  taker.stop();

  await store.deleteWebhook(plain.id, "t1", clock.now());
  await store.insertWebhook({ ...newWebhook(["a.b"]), ordering: "fifo" });
  await store.insertWebhook({ ...newWebhook(["a.b"]), rateLimit: 100 });
  const controlled = handOffTo(10);
  await publish(2);
  expect(controlled.all()).toHaveLength(0);
  controlled.stop();

  const none = handOffTo(0);
  await store.insertWebhook(newWebhook(["a.b"]));
  await publish(1);
  expect(none.all()).toHaveLength(0);
  none.stop();
  // Unregistered: nothing is handed over at all.
  await publish(1);
  expect(none.all()).toHaveLength(0);
});

test("the room a taker reports bounds a batch across webhooks; a request that fails hands nothing over", async () => {
  const [a, b] = [newWebhook(["*"]), newWebhook(["*"])];
  await store.insertWebhook(a);
  await store.insertWebhook(b);
  const taker = handOffTo(3);
  // Two events, two webhooks each: four deliveries, three places.
  await publish(2);
  expect(taker.all()).toHaveLength(3);
  expect(new Set(taker.all().map((d) => d.leaseOwner)).size).toBe(1);
  // A request that fails after leasing (its second event's key conflicts, so its writes roll back)
  // in a batch with an accepted one: only the accepted one's lease is handed over.
  const event = () => ({
    id: ids.next("evt"),
    type: "a.b",
    accountId: null,
    payload: "{}",
    createdAt: clock.now(),
  });
  const key = (requestHash: string) => ({ key: "k", requestHash, expiresAt: clock.now() + 60_000 });
  const first = await store.ingest({
    tenantId: "t1",
    now: clock.now(),
    events: [event()],
    eventKeys: [key("h1")],
  });
  expect(first.kind).toBe("accepted");
  taker.taken.length = 0;
  const [refused, accepted] = await Promise.all([
    store.ingest({
      tenantId: "t1",
      now: clock.now(),
      events: [event(), event()],
      eventKeys: [null, key("h2")],
    }),
    publish(1),
  ]);
  expect(refused.kind).toBe("conflict");
  expect(accepted.kind).toBe("accepted");
  expect(taker.taken).toHaveLength(1);
  const acceptedIds = (accepted.kind === "accepted" ? accepted.events : []).map((e) => e.id);
  expect(acceptedIds).toHaveLength(1);
  expect(taker.all().map((d) => d.eventId)).toEqual(acceptedIds);
  const rows = store.db.query<{ n: number }, []>("SELECT count(*) AS n FROM deliveries").get();
  expect(rows?.n).toBe(8);
});

// FIFO across a restart (SPEC §3 "Order"): this process's lease memory starts empty, so the lease
// the last process left on the file is what keeps a re-queued older delivery behind the one in flight.
test("FIFO: after a reopen, a re-queued older delivery waits for the lease left on the file", async () => {
  await store.insertWebhook({ ...newWebhook(["*"]), ordering: "fifo" });
  await publish(2);
  clock.advance(1);
  const [first] = await claim(10);
  await store.settle([success(first!)], clock.now(), HEALTH, () => ids.next("evt"));
  const [second] = await claim(10);
  expect(second!.eventId).not.toBe(first!.eventId);
  // The process stops with the second in flight; the next one opens the same file.
  const path = store.db.filename;
  await store.close();
  store = createSqliteStore({ path, synchronous: "normal", ids });
  expect(typeof (await store.requeueDelivery(first!.id, "t1", clock.now()))).toBe("object");
  expect(await claim(10)).toEqual([]); // the older one is the head now, but the second is leased
  clock.set(second!.leaseUntil);
  expect((await claim(10)).map((d) => d.id)).toEqual([first!.id]);
});
