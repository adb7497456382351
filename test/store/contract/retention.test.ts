// Retention, on every store driver: sweepRetention removes final deliveries created before the
// cutoff, their attempts, and events before the cutoff with no delivery left — nothing queued,
// nothing newer — in batches of at most `limit` rows per table; sweepIdempotencyKeys removes
// expired keys only. Old rows are made on the manual clock, not backdated.
import { describe, expect, test } from "bun:test";
import type { ClaimedDelivery, Settlement, TableName } from "../../../src/store/store.ts";
import { allRows, attemptResult, newWebhook, STORE_DRIVERS, T0, useStore } from "../../support/stores.ts";

const HEALTH = { disableAfterFailures: 1000, disableAfterMs: 0 };

for (const driver of STORE_DRIVERS) {
  describe(driver.name, () => {
    const t = useStore(driver);

    const webhook = (events: string[]) =>
      t.store.insertWebhook(newWebhook(t.ids, t.clock.now(), { events, maxInFlight: 100 }));

    async function publish(
      type: string,
      idempotency?: { key: string; requestHash: string; expiresAt: number },
    ) {
      const id = t.ids.next("evt");
      const result = await t.store.ingest({
        tenantId: "t1",
        now: t.clock.now(),
        events: [{ id, type, accountId: null, payload: "{}", createdAt: t.clock.now() }],
        ...(idempotency ? { idempotency } : {}),
      });
      if (result.kind === "conflict") throw new Error("conflict");
      return result.events[0]!.id;
    }

    const claimAll = () =>
      t.store.claimDue({
        now: t.clock.now(),
        owner: t.ids.next("msg"),
        leaseMs: 10_000,
        limit: 100,
        retryLimit: 100,
      });

    async function settle(d: ClaimedDelivery, settlement: Settlement) {
      const outcome = await t.store.settle(
        [attemptResult(t.ids, d, settlement, t.clock.now())],
        t.clock.now(),
        HEALTH,
        () => t.ids.next("evt"),
      );
      expect(outcome.applied).toEqual([true]);
    }

    const ids = async (table: TableName, column = "id") =>
      (await allRows(t.store, table)).map((row) => row[column] as string).sort();
    const counts = async () => ({
      deliveries: (await allRows(t.store, "deliveries")).length,
      attempts: (await allRows(t.store, "attempts")).length,
      events: (await allRows(t.store, "events")).length,
    });

    test("removes only final deliveries older than the cutoff, their attempts, and events with no deliveries left", async () => {
      const w = await webhook(["*"]);
      const v = await webhook(["shared.*"]);
      const doomed = await webhook(["cancel.*"]);
      // Old (at T0): one event per fate.
      const success = await publish("success.x");
      const failed = await publish("failed.x");
      const exhausted = await publish("exhausted.x");
      const retrying = await publish("retrying.x");
      const leased = await publish("leased.x");
      const pending = await publish("pending.x");
      const shared = await publish("shared.x"); // to w (succeeds) and v (stays pending)
      const cancelled = await publish("cancel.x"); // to w (succeeds) and doomed (cancelled by the delete)
      const single = await publish("single.x"); // to w alone (succeeds)
      const claimed = await claimAll();
      const of = (eventId: string, webhookId = w.id) =>
        claimed.find((d) => d.eventId === eventId && d.webhook.id === webhookId)!;
      await settle(of(success), { action: "succeed" });
      await settle(of(failed), { action: "fail", reason: "blocked_address" });
      await settle(of(exhausted), { action: "exhaust" });
      await settle(of(retrying), { action: "retry", at: t.clock.now() + 3_600_000 });
      await settle(of(shared), { action: "succeed" });
      await settle(of(cancelled), { action: "succeed" });
      await settle(of(single), { action: "succeed" });
      // Given back, queued again: pending's and shared's second delivery.
      const back = [of(pending), of(shared, v.id)];
      await t.store.releaseLeases(
        back.map((d) => ({ deliveryId: d.id, leaseOwner: d.leaseOwner })),
        t.clock.now(),
      );
      expect(await t.store.deleteWebhook(doomed.id, undefined, t.clock.now())).toBe(true);
      // `leased` stays under its lease. An event nobody subscribed to:
      await t.store.updateWebhook(w.id, undefined, { events: ["nothing"] }, t.clock.now());
      const orphan = await publish("orphan.none");

      // New (after the cutoff): a final delivery and an event with none.
      t.clock.set(T0 + 10_000);
      await t.store.updateWebhook(w.id, undefined, { events: ["*"] }, t.clock.now());
      const recent = await publish("recent.x");
      await settle((await claimAll()).find((d) => d.eventId === recent)!, { action: "succeed" });
      await t.store.updateWebhook(w.id, undefined, { events: ["nothing"] }, t.clock.now());
      const recentOrphan = await publish("recent.none");

      const deliveriesBefore = await allRows(t.store, "deliveries");
      const attemptsBefore = await allRows(t.store, "attempts");
      const eventsBefore = await ids("events");
      const removable = deliveriesBefore.filter(
        (d) =>
          ["success", "failed", "exhausted", "cancelled"].includes(d.status as string) &&
          (d.created_at as number) < T0 + 5_000,
      );
      // success, failed, exhausted, shared→w, cancel→w, cancel→doomed, single→w
      expect(removable.length).toBe(7);
      const removableIds = new Set(removable.map((d) => d.id as string));
      const goneAttempts = attemptsBefore.filter((a) => removableIds.has(a.delivery_id as string));
      expect(goneAttempts.length).toBe(6); // the cancelled one was never attempted
      const goneEvents = [success, failed, exhausted, cancelled, single, orphan].sort();

      const removed = await t.store.sweepRetention(T0 + 5_000, 100);
      expect(removed).toBe(removable.length + goneAttempts.length + goneEvents.length);
      expect(await ids("deliveries")).toEqual(
        deliveriesBefore
          .filter((d) => !removableIds.has(d.id as string))
          .map((d) => d.id as string)
          .sort(),
      );
      expect(await ids("attempts")).toEqual(
        attemptsBefore
          .filter((a) => !removableIds.has(a.delivery_id as string))
          .map((a) => a.id as string)
          .sort(),
      );
      expect(await ids("events")).toEqual(eventsBefore.filter((id) => !goneEvents.includes(id)));
      expect((await ids("events")).sort()).toEqual(
        [retrying, leased, pending, shared, recent, recentOrphan].sort(),
      );
      for (const id of goneEvents) expect(await t.store.findEvent(id)).toBeNull();
      for (const id of removableIds) expect(await t.store.findDelivery(id)).toBeNull();
      // The event that kept a delivery is still whole from the API's side.
      expect(await t.store.findEvent(shared)).toMatchObject({ id: shared, status: "pending" });
      // Nothing more to remove: the maintenance loop stops on a zero.
      expect(await t.store.sweepRetention(T0 + 5_000, 100)).toBe(0);
      // Subscriptions are not the sweep's business.
      expect(await ids("webhooks")).toEqual([w.id, v.id].sort());
    });

    test("a sweep removes at most `limit` rows of each table, and repeated sweeps remove everything", async () => {
      await webhook(["*"]);
      for (let i = 0; i < 5; i++) await publish("a.x");
      for (const d of await claimAll()) await settle(d, { action: "succeed" });
      t.clock.advance(1_000);
      let before = await counts();
      expect(before).toEqual({ deliveries: 5, attempts: 5, events: 5 });
      let total = 0;
      for (let round = 0; round < 20; round++) {
        const n = await t.store.sweepRetention(t.clock.now(), 2);
        const after = await counts();
        expect(before.deliveries - after.deliveries).toBeLessThanOrEqual(2);
        expect(before.attempts - after.attempts).toBeLessThanOrEqual(2);
        expect(before.events - after.events).toBeLessThanOrEqual(2);
        expect(n).toBe(
          before.deliveries -
            after.deliveries +
            before.attempts -
            after.attempts +
            before.events -
            after.events,
        );
        before = after;
        total += n;
        if (n === 0) break;
      }
      expect(before).toEqual({ deliveries: 0, attempts: 0, events: 0 });
      expect(total).toBe(15);
    });

    test("an idempotency key whose events retention removed is free again", async () => {
      const key = { key: "k", requestHash: "h", expiresAt: T0 + 3_600_000 };
      const first = await publish("nobody.x", key);
      expect(await publish("nobody.x", key)).toBe(first); // a replay while the event exists
      t.clock.advance(1_000);
      expect(await t.store.sweepRetention(t.clock.now(), 100)).toBe(1);
      const second = await publish("nobody.x", key);
      expect(second).not.toBe(first);
      expect(await ids("events")).toEqual([second]);
    });

    test("sweepIdempotencyKeys removes keys expired by now, at most `limit` at a time", async () => {
      const key = (k: string, expiresAt: number) => ({ key: k, requestHash: "h", expiresAt });
      for (const k of ["a", "b", "c"]) await publish("x.y", key(k, T0 + 1_000));
      await publish("x.y", key("later", T0 + 2_000));
      expect(await t.store.sweepIdempotencyKeys(T0 + 999, 100)).toBe(0);
      // Still live a millisecond before it expires: a replay. At its expiry: free.
      t.clock.set(T0 + 999);
      const kept = (await allRows(t.store, "idempotency_keys")).find((row) => row.key === "a")!;
      expect(await publish("x.y", key("a", T0 + 1_000))).toBe(JSON.parse(kept.event_ids as string)[0]);
      expect(await t.store.sweepIdempotencyKeys(T0 + 1_000, 2)).toBe(2);
      expect(await t.store.sweepIdempotencyKeys(T0 + 1_000, 2)).toBe(1);
      expect(await t.store.sweepIdempotencyKeys(T0 + 1_000, 2)).toBe(0);
      expect(await ids("idempotency_keys", "key")).toEqual(["later"]);
      expect(await t.store.sweepIdempotencyKeys(T0 + 2_000, 2)).toBe(1);
      expect(await allRows(t.store, "idempotency_keys")).toEqual([]);
    });
  });
}
