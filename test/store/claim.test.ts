// Claiming in the SQLite store: the share of capacity kept for first attempts, per-subscription
// caps, and the lease that makes a claimed delivery due again only when it ends.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { join } from "node:path";
import { createManualClock, type ManualClock } from "../../src/runtime/clock.ts";
import { createIdGenerator } from "../../src/runtime/ids.ts";
import { cryptoRandom } from "../../src/runtime/random.ts";
import { createSqliteStore, type SqliteStore } from "../../src/store/sqlite/index.ts";
import type { ClaimRequest } from "../../src/store/store.ts";
import { tempDir } from "../support/temp.ts";

let store: SqliteStore;
let clock: ManualClock;
let ids: ReturnType<typeof createIdGenerator>;

beforeEach(() => {
  clock = createManualClock(Date.UTC(2026, 0, 1));
  ids = createIdGenerator(clock, cryptoRandom);
  store = createSqliteStore({ path: join(tempDir(), "claim.db"), synchronous: "normal", ids });
});
afterEach(async () => {
  await store.close();
});

async function webhook(maxInFlight = 8) {
  return store.insertWebhook({
    id: ids.next("wh"),
    tenantId: "t",
    name: "w",
    description: null,
    url: "https://example.com/h",
    events: ["*"],
    accountIds: null,
    enabled: true,
    disabledReason: null,
    timeoutSeconds: 1,
    headers: {},
    metadata: {},
    maxInFlight,
    secret: `whsec_${Buffer.alloc(32, 1).toString("base64")}`,
    createdAt: clock.now(),
  });
}

async function publish(n: number) {
  const events = Array.from({ length: n }, () => {
    const id = ids.next("evt");
    return { id, type: "a.b", accountId: null, payload: `{"id":"${id}"}`, createdAt: clock.now() };
  });
  await store.ingest({ tenantId: "t", events, now: clock.now() });
}

const claim = (request: Partial<ClaimRequest> = {}) =>
  store.claimDue({
    now: clock.now(),
    owner: `o${Math.random()}`,
    leaseMs: 10_000,
    limit: 100,
    retryLimit: 100,
    ...request,
  });

test("with no retry capacity left, only first attempts are claimed", async () => {
  await webhook();
  await publish(2);
  const first = await claim();
  expect(first.length).toBe(2);
  // Both fail and are due again at once: they are now retries.
  await store.settle(
    first.map((d) => ({
      deliveryId: d.id,
      leaseOwner: d.leaseOwner,
      webhookId: d.webhook.id,
      signature: null,
      settlement: { action: "retry", at: clock.now() } as const,
      attempt: {
        id: ids.next("atm"),
        startedAt: clock.now(),
        durationMs: 1,
        responseStatusCode: 500,
        responseHeaders: {},
        responseBody: "",
        error: "http_status",
      },
    })),
    clock.now(),
    { disableAfterFailures: 100, disableAfterMs: 0 },
    () => ids.next("evt"),
  );
  await publish(1);
  const fresh = await claim({ retryLimit: 0 });
  expect(fresh.map((d) => d.status)).toEqual(["pending"]);
  const retries = await claim({ retryLimit: 1 });
  expect(retries.map((d) => d.status)).toEqual(["retrying"]);
});

test("a subscription's cap counts the live leases of every claim; a lease makes a delivery due again when it ends", async () => {
  await webhook(3);
  await publish(5);
  const first = await claim();
  expect(first.length).toBe(3);
  expect((await claim()).length).toBe(0); // the cap holds across claims, not only within one
  const done = first[0]!;
  await store.settle(
    [
      {
        deliveryId: done.id,
        leaseOwner: done.leaseOwner,
        webhookId: done.webhook.id,
        signature: null,
        settlement: { action: "succeed" },
        attempt: {
          id: ids.next("atm"),
          startedAt: clock.now(),
          durationMs: 1,
          responseStatusCode: 200,
          responseHeaders: {},
          responseBody: "",
          error: null,
        },
      },
    ],
    clock.now(),
    { disableAfterFailures: 10, disableAfterMs: 1000 },
    () => ids.next("evt"),
  );
  expect((await claim()).length).toBe(1); // a settled attempt frees its place
  expect((await claim()).length).toBe(0);
  clock.advance(10_000 + 1_000 + 5_000); // past max(lease, timeout + margin)
  expect((await claim()).length).toBe(3); // the expired leases no longer count
});
