// What disabling and deleting a subscription does to its queue, on every store driver: queued
// deliveries (leased ones included) end failed or cancelled at once, final ones stay, the lease
// holders' settlements are no longer applied, and the onFinal metrics hook hears the counts.
import { describe, expect, test } from "bun:test";
import type { ClaimedDelivery } from "../../../src/store/store.ts";
import {
  allRows,
  attemptResult,
  drainFinals,
  newWebhook,
  STORE_DRIVERS,
  useStore,
} from "../../support/stores.ts";

const HEALTH = { disableAfterFailures: 1000, disableAfterMs: 0 };

for (const driver of STORE_DRIVERS) {
  describe(driver.name, () => {
    const t = useStore(driver);

    const publish = (n: number) =>
      t.store.ingest({
        tenantId: "t1",
        now: t.clock.now(),
        events: Array.from({ length: n }, () => ({
          id: t.ids.next("evt"),
          type: "a.b",
          accountId: null,
          payload: "{}",
          createdAt: t.clock.now(),
        })),
      });

    const claim = (limit: number) =>
      t.store.claimDue({
        now: t.clock.now(),
        owner: t.ids.next("msg"),
        leaseMs: 10_000,
        limit,
        retryLimit: limit,
      });

    const statuses = async (webhookId: string) =>
      (await allRows(t.store, "deliveries"))
        .filter((row) => row.webhook_id === webhookId)
        .map((row) => [row.status, row.next_attempt_at, row.lease_owner])
        .sort();

    const settle = (d: ClaimedDelivery) =>
      t.store.settle(
        [attemptResult(t.ids, d, { action: "succeed" }, t.clock.now())],
        t.clock.now(),
        HEALTH,
        () => t.ids.next("evt"),
      );

    test("a disable fails every queued delivery, leased ones included, and onFinal hears how many", async () => {
      const w = await t.store.insertWebhook(newWebhook(t.ids, t.clock.now()));
      await publish(4);
      const [done, leased] = (await claim(2)) as [ClaimedDelivery, ClaimedDelivery];
      await settle(done);
      t.finals.splice(0);
      await t.store.updateWebhook(
        w.id,
        undefined,
        { enabled: false, disabledReason: "manual" },
        t.clock.now(),
      );
      expect(drainFinals(t.finals)).toEqual([{ status: "failed", count: 3 }]);
      expect(await statuses(w.id)).toEqual([
        ["failed", null, null],
        ["failed", null, null],
        ["failed", null, null],
        ["success", null, null],
      ]);
      // The holder of the lease it had comes back too late.
      expect((await settle(leased)).applied).toEqual([false]);
      expect(await claim(10)).toEqual([]);
      expect(await t.store.queueStats(t.clock.now())).toEqual({ depth: 0, oldestDueAt: null });
      // Enabled again, nothing comes back by itself; new events are delivered.
      await t.store.updateWebhook(
        w.id,
        undefined,
        { enabled: true, disabledReason: null, resetHealthAt: t.clock.now() },
        t.clock.now(),
      );
      expect(await claim(10)).toEqual([]);
      await publish(1);
      expect((await claim(10)).length).toBe(1);
    });

    test("a delete cancels every queued delivery, leased ones included; onFinal hears how many", async () => {
      const w = await t.store.insertWebhook(newWebhook(t.ids, t.clock.now()));
      await publish(3);
      const [done, leased] = (await claim(2)) as [ClaimedDelivery, ClaimedDelivery];
      await settle(done);
      t.finals.splice(0);
      expect(await t.store.deleteWebhook(w.id, undefined, t.clock.now())).toBe(true);
      expect(drainFinals(t.finals)).toEqual([{ status: "cancelled", count: 2 }]);
      expect(await statuses(w.id)).toEqual([
        ["cancelled", null, null],
        ["cancelled", null, null],
        ["success", null, null],
      ]);
      expect(await t.store.findWebhook(w.id)).toBeNull();
      expect(await t.store.deleteWebhook(w.id, undefined, t.clock.now())).toBe(false);
      expect((await settle(leased)).applied).toEqual([false]);
      expect(await t.store.requeueDelivery(leased.id, undefined, t.clock.now())).toBe("cancelled");
      expect(await t.store.requeueDelivery(done.id, undefined, t.clock.now())).toBe("webhook_deleted");

      const empty = await t.store.insertWebhook(newWebhook(t.ids, t.clock.now(), { events: ["none"] }));
      expect(await t.store.deleteWebhook(empty.id, undefined, t.clock.now())).toBe(true);
      expect(drainFinals(t.finals)).toEqual([]);
    });

    test("another tenant's subscription is neither found, changed nor deleted", async () => {
      const w = await t.store.insertWebhook(newWebhook(t.ids, t.clock.now(), { tenantId: "t1" }));
      expect(await t.store.findWebhook(w.id, "t2")).toBeNull();
      expect(await t.store.updateWebhook(w.id, "t2", { name: "x" }, t.clock.now())).toBeNull();
      expect(await t.store.deleteWebhook(w.id, "t2", t.clock.now())).toBe(false);
      expect(await t.store.findWebhook(w.id, "t1")).toMatchObject({ id: w.id, name: "w" });
    });
  });
}
