// Whole rows in and out (the ground of `storage copy`), on every store driver, and the small
// operations of a running instance: hasData, exportRows/importRows round trips (within a driver and
// between drivers), settings, heartbeat and the maintenance lock.
import { describe, expect, test } from "bun:test";
import { createManualClock } from "../../../src/runtime/clock.ts";
import { createIdGenerator, type IdGenerator } from "../../../src/runtime/ids.ts";
import { cryptoRandom } from "../../../src/runtime/random.ts";
import { type Store, type StoredRow, TABLES, type TableName } from "../../../src/store/store.ts";
import {
  allRows,
  attemptResult,
  newWebhook,
  STORE_DRIVERS,
  type StoreDriver,
  T0,
  useStore,
} from "../../support/stores.ts";

type Dump = Record<TableName, StoredRow[]>;

async function dump(store: Store, pageSize = 2): Promise<Dump> {
  const out = {} as Dump;
  for (const table of TABLES) out[table] = await allRows(store, table, pageSize);
  return out;
}

async function load(store: Store, rows: Dump): Promise<void> {
  for (const table of TABLES) if (rows[table].length > 0) await store.importRows(table, rows[table]);
}

/**
 * A store with a row in every table and a delivery in each interesting state: leased, retrying,
 * succeeded (with its attempt and response headers), pending; a rotated secret; idempotency keys.
 */
interface Made {
  a: string;
  b: string;
  leased: string;
  succeeded: string;
  retrying: string;
}

async function populate(store: Store, ids: IdGenerator, now: () => number): Promise<Made> {
  await store.insertSettingIfAbsent("admin_key_hash", "sha256:abc");
  await store.checkWritable(now());
  const a = await store.insertWebhook(
    newWebhook(ids, now(), {
      name: "Alpha ü",
      description: "with \"quotes\" and 'ticks'",
      events: ["invoice.*", "user.created"],
      accountIds: ["acct_1", "acct_2"],
      headers: { "X-Team": "billing" },
      metadata: { owner: "ops", note: "ü ✓" },
      maxInFlight: 4,
      timeoutSeconds: 7,
    }),
  );
  const b = await store.insertWebhook(
    newWebhook(ids, now(), { name: "beta", enabled: false, disabledReason: "manual", tenantId: "t2" }),
  );
  await store.rotateWebhookSecret(
    a.id,
    undefined,
    `whsec_${Buffer.alloc(32, 2).toString("base64")}`,
    now(),
    now() + 86_400_000,
  );
  const published = await store.ingest({
    tenantId: "t1",
    now: now(),
    idempotency: { key: "batch-1", requestHash: "h1", expiresAt: now() + 86_400_000 },
    eventKeys: [{ key: "client-id-1", requestHash: "e1", expiresAt: now() + 86_400_000 }, null, null, null],
    events: ["invoice.paid", "invoice.sent", "user.created", "invoice.void"].map((type, i) => {
      const id = ids.next("evt");
      return {
        id,
        type,
        accountId: i === 0 ? "acct_1" : "acct_2",
        payload: `{"id":"${id}","n":${i},"s":"ü"}`,
        createdAt: now(),
      };
    }),
  });
  expect(published.kind).toBe("accepted");
  await store.ingest({
    tenantId: "t2",
    now: now(),
    events: [{ id: ids.next("evt"), type: "none.x", accountId: null, payload: "{}", createdAt: now() }],
  });
  const claimed = await store.claimDue({
    now: now(),
    owner: "owner-1",
    leaseMs: 30_000,
    limit: 3,
    retryLimit: 3,
  });
  expect(claimed.length).toBe(3);
  const [ok, retry] = claimed;
  const okResult = attemptResult(ids, ok!, { action: "succeed" }, now());
  okResult.attempt.responseHeaders = { "content-type": "text/plain" };
  okResult.attempt.responseBody = "thanks";
  okResult.signature = "v1,abc";
  const outcome = await store.settle(
    [okResult, attemptResult(ids, retry!, { action: "retry", at: now() + 60_000 }, now())],
    now(),
    { disableAfterFailures: 100, disableAfterMs: 0 },
    () => ids.next("evt"),
  );
  expect(outcome.applied).toEqual([true, true]);
  // The third stays leased; the fourth (subscription a's cap is 4, the claim's limit 3) pending.
  return { a: a.id, b: b.id, leased: claimed[2]!.id, succeeded: ok!.id, retrying: retry!.id };
}

const JSON_COLUMNS: Partial<Record<TableName, string[]>> = {
  webhooks: ["events", "account_ids", "headers", "metadata"],
  attempts: ["response_headers"],
  idempotency_keys: ["event_ids"],
};

/** Rows compared across drivers: JSON columns by value (the text may be spaced differently), any order. */
function normalized(rows: Dump): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const table of TABLES) {
    out[table] = rows[table]
      .map((row) => {
        const copy: Record<string, unknown> = { ...row };
        for (const column of JSON_COLUMNS[table] ?? [])
          if (typeof copy[column] === "string") copy[column] = JSON.parse(copy[column] as string);
        return copy;
      })
      .map((row) => ({ row, text: JSON.stringify(Object.entries(row).sort(([x], [y]) => (x < y ? -1 : 1))) }))
      .sort((x, y) => (x.text < y.text ? -1 : x.text > y.text ? 1 : 0))
      .map(({ row }) => row);
  }
  return out;
}

for (const driver of STORE_DRIVERS) {
  describe(driver.name, () => {
    const t = useStore(driver);

    test("hasData: false when fresh (a write probe is no data), true with a setting, a subscription or an event", async () => {
      expect(await t.store.hasData()).toBe(false);
      await t.store.checkWritable(t.clock.now());
      expect(await t.store.hasData()).toBe(false);
      for (const table of [
        "webhooks",
        "webhook_previous_secrets",
        "events",
        "deliveries",
        "attempts",
        "idempotency_keys",
      ] as const)
        expect(await t.store.exportRows(table, null, 10)).toEqual({ rows: [], last: null });
      await t.store.insertSettingIfAbsent("admin_key_hash", "x");
      expect(await t.store.hasData()).toBe(true);

      const other = await driver.create({ ids: t.ids, clock: t.clock });
      try {
        await other.insertWebhook(newWebhook(t.ids, t.clock.now()));
        expect(await other.hasData()).toBe(true);
      } finally {
        await other.close();
      }
      const third = await driver.create({ ids: t.ids, clock: t.clock });
      try {
        await third.ingest({
          tenantId: "t1",
          now: t.clock.now(),
          events: [
            { id: t.ids.next("evt"), type: "a.b", accountId: null, payload: "{}", createdAt: t.clock.now() },
          ],
        });
        expect(await third.hasData()).toBe(true);
      } finally {
        await third.close();
      }
    });

    test("settings: inserted once, never overwritten", async () => {
      expect(await t.store.getSetting("admin_key_hash")).toBeNull();
      expect(await t.store.insertSettingIfAbsent("admin_key_hash", "first")).toBe(true);
      expect(await t.store.insertSettingIfAbsent("admin_key_hash", "second")).toBe(false);
      expect(await t.store.getSetting("admin_key_hash")).toBe("first");
    });

    test("exportRows pages in the shared format: numbers for times and counts, JSON text, 0/1, lease end as next_attempt_at", async () => {
      const made = await populate(t.store, t.ids, () => t.clock.now());
      const rows = await dump(t.store, 1000);
      const webhook = rows.webhooks.find((w) => w.id === made.a)!;
      expect(webhook).toMatchObject({
        tenant_id: "t1",
        name: "Alpha ü",
        enabled: 1,
        max_in_flight: 4,
        timeout_seconds: 7,
        created_at: T0,
        updated_at: T0,
        disabled_reason: null,
        description: "with \"quotes\" and 'ticks'",
      });
      const found = (await t.store.findWebhook(made.a))!;
      expect([webhook.consecutive_failures, webhook.health_since, webhook.secret]).toEqual([
        found.consecutiveFailures,
        found.healthSince,
        found.secret,
      ]);
      expect(JSON.parse(webhook.events as string)).toEqual(["invoice.*", "user.created"]);
      expect(JSON.parse(webhook.account_ids as string)).toEqual(["acct_1", "acct_2"]);
      expect(JSON.parse(webhook.headers as string)).toEqual({ "X-Team": "billing" });
      expect(JSON.parse(webhook.metadata as string)).toEqual({ owner: "ops", note: "ü ✓" });
      expect(rows.webhooks.find((w) => w.id === made.b)).toMatchObject({
        enabled: 0,
        disabled_reason: "manual",
      });
      expect(rows.webhook_previous_secrets).toEqual([
        {
          webhook_id: made.a,
          secret: `whsec_${Buffer.alloc(32, 1).toString("base64")}`,
          expires_at: T0 + 86_400_000,
        },
      ]);
      const byId = new Map(rows.deliveries.map((d) => [d.id, d]));
      expect(byId.get(made.leased)).toMatchObject({ status: "pending", lease_owner: "owner-1", attempts: 0 });
      expect(byId.get(made.leased)!.next_attempt_at).toBe(
        (await t.store.findDelivery(made.leased))!.nextAttemptAt as number,
      );
      expect(byId.get(made.leased)!.next_attempt_at as number).toBeGreaterThanOrEqual(T0 + 30_000);
      expect(byId.get(made.succeeded)).toMatchObject({
        status: "success",
        attempts: 1,
        series_attempts: 1,
        response_status_code: 200,
        last_attempt_at: T0,
        next_attempt_at: null,
        lease_owner: null,
        signature: "v1,abc",
      });
      expect(byId.get(made.retrying)).toMatchObject({
        status: "retrying",
        next_attempt_at: T0 + 60_000,
        lease_owner: null,
      });
      const attempt = rows.attempts.find((a) => a.delivery_id === made.succeeded)!;
      expect(attempt).toMatchObject({
        started_at: T0,
        duration_ms: 1,
        response_status_code: 200,
        response_body: "thanks",
        error: null,
      });
      expect(JSON.parse(attempt.response_headers as string)).toEqual({ "content-type": "text/plain" });
      expect(rows.events.map((e) => typeof e.created_at)).toEqual(rows.events.map(() => "number"));
      const first = rows.events.find((e) => e.type === "invoice.paid")!;
      expect(first).toMatchObject({ tenant_id: "t1", account_id: "acct_1", deliveries_count: 1 });
      expect(first.payload).toBe(`{"id":"${first.id}","n":0,"s":"ü"}`); // the exact body, not reformatted
      const keys = new Map(rows.idempotency_keys.map((k) => [k.key, k]));
      expect(keys.get("batch-1")).toMatchObject({
        tenant_id: "t1",
        request_hash: "h1",
        expires_at: T0 + 86_400_000,
      });
      expect(JSON.parse(keys.get("batch-1")!.event_ids as string)).toHaveLength(4);
      expect(JSON.parse(keys.get("client-id-1")!.event_ids as string)).toEqual([first.id]);
      expect(rows.settings.find((s) => s.key === "admin_key_hash")).toEqual({
        key: "admin_key_hash",
        value: "sha256:abc",
      });
      // Every page, whatever its size, gives the same rows in the same order.
      expect(await dump(t.store, 1)).toEqual(rows);
      expect(await dump(t.store, 3)).toEqual(rows);
    });

    test("heartbeat counts this instance live (at least 1), the same on a repeat; removeInstance resolves", async () => {
      const n = await t.store.heartbeat("instance-a", 15_000);
      expect(n).toBeGreaterThanOrEqual(1);
      expect(await t.store.heartbeat("instance-a", 15_000)).toBe(n);
      await t.store.removeInstance("instance-a");
      expect(await t.store.heartbeat("instance-a", 15_000)).toBeGreaterThanOrEqual(1);
    });

    test("withMaintenanceLock runs the function and answers its value; a failure propagates and frees the lock", async () => {
      let runs = 0;
      expect(await t.store.withMaintenanceLock(async () => ++runs)).toBe(1);
      expect(await t.store.withMaintenanceLock(async () => ++runs)).toBe(2);
      await expect(
        t.store.withMaintenanceLock(async () => {
          runs++;
          throw new Error("sweep failed");
        }),
      ).rejects.toThrow("sweep failed");
      expect(runs).toBe(3);
      // The store still answers, from inside the lock too.
      expect(
        await t.store.withMaintenanceLock(async () => {
          runs++;
          return t.store.sweepRetention(t.clock.now(), 10);
        }),
      ).toBe(0);
      expect(runs).toBe(4);
    });

    test("export everything, import into a fresh store, export again: equal, and the copy works", async () => {
      const made = await populate(t.store, t.ids, () => t.clock.now());
      const exported = await dump(t.store);
      const copy = await driver.create({ ids: t.ids, clock: t.clock });
      try {
        expect(await copy.hasData()).toBe(false);
        await load(copy, exported);
        expect(await copy.hasData()).toBe(true);
        expect(await dump(copy)).toEqual(exported);
        await expectSameAnswers(t.store, copy, made);
      } finally {
        await copy.close();
      }
    });
  });
}

/** The contract's own reads agree between a store and its copy, and the copy goes on working. */
async function expectSameAnswers(source: Store, copy: Store, made: Made) {
  for (const id of [made.a, made.b]) expect(await copy.findWebhook(id)).toEqual(await source.findWebhook(id));
  for (const id of [made.leased, made.succeeded, made.retrying]) {
    expect(await copy.findDelivery(id)).toEqual(await source.findDelivery(id));
    const page = { order: "started_at" as const, limit: 10 };
    expect(await copy.listAttempts(id, page)).toEqual(await source.listAttempts(id, page));
  }
  const events = { order: "-created_at" as const, limit: 100 };
  expect(await copy.listEvents({}, events)).toEqual(await source.listEvents({}, events));
  expect(await copy.listDeliveries({}, events)).toEqual(await source.listDeliveries({}, events));
  expect(await copy.getSetting("admin_key_hash")).toBe("sha256:abc");
  // The lease copied is still another owner's: nothing is due in the copy but the pending one.
  const now = T0;
  const claimed = await copy.claimDue({ now, owner: "copy", leaseMs: 30_000, limit: 10, retryLimit: 10 });
  expect(claimed.map((d) => d.webhook.id)).toEqual([made.a]);
  expect(claimed.map((d) => d.id)).not.toContain(made.leased);
  // The subscriptions copied receive new events; an idempotency key copied still replays.
  const replay = await copy.ingest({
    tenantId: "t1",
    now,
    idempotency: { key: "batch-1", requestHash: "h1", expiresAt: now + 1000 },
    events: [{ id: "evt_new", type: "invoice.paid", accountId: null, payload: "{}", createdAt: now }],
  });
  expect(replay.kind).toBe("replayed");
  const fresh = await copy.ingest({
    tenantId: "t1",
    now,
    events: [{ id: "evt_new", type: "invoice.paid", accountId: "acct_1", payload: "{}", createdAt: now }],
  });
  expect(fresh.kind === "accepted" && fresh.events[0]!.deliveriesCount).toBe(1);
}

// storage copy between drivers: every ordered pair of different drivers.
const pairs: [StoreDriver, StoreDriver][] = STORE_DRIVERS.flatMap((from) =>
  STORE_DRIVERS.filter((to) => to !== from).map((to): [StoreDriver, StoreDriver] => [from, to]),
);
for (const [from, to] of pairs) {
  describe(`${from.name} to ${to.name}`, () => {
    test("rows exported from one driver import into the other and export the same", async () => {
      const clock = createManualClock(T0);
      const ids = createIdGenerator(clock, cryptoRandom);
      const source = await from.create({ ids, clock });
      const target = await to.create({ ids, clock });
      try {
        const made = await populate(source, ids, () => clock.now());
        const exported = await dump(source);
        await load(target, exported);
        expect(normalized(await dump(target))).toEqual(normalized(exported));
        await expectSameAnswers(source, target, made);
      } finally {
        await source.close();
        await target.close();
      }
    });
  });
}
