// Leases and fencing, on every store driver: a claim's caps (its limit, each subscription's
// max_in_flight, the share kept for first attempts), a live lease is never taken by another owner,
// a settle or release by a stale owner changes nothing, and a released lease is due at once.
import { describe, expect, test } from "bun:test";
import type { ClaimedDelivery, ClaimRequest, Settlement } from "../../../src/store/store.ts";
import { attemptResult, newWebhook, STORE_DRIVERS, useStore } from "../../support/stores.ts";

const HEALTH = { disableAfterFailures: 1000, disableAfterMs: 0 };

for (const driver of STORE_DRIVERS) {
  describe(driver.name, () => {
    const t = useStore(driver);

    const webhook = (maxInFlight = 100, events = ["*"]) =>
      t.store.insertWebhook(newWebhook(t.ids, t.clock.now(), { maxInFlight, events }));

    async function publish(n: number, type = "a.b") {
      const events = Array.from({ length: n }, () => ({
        id: t.ids.next("evt"),
        type,
        accountId: null,
        payload: "{}",
        createdAt: t.clock.now(),
      }));
      const result = await t.store.ingest({ tenantId: "t1", events, now: t.clock.now() });
      expect(result.kind).toBe("accepted");
    }

    let owners = 0;
    const claim = (request: Partial<ClaimRequest> = {}) =>
      t.store.claimDue({
        now: t.clock.now(),
        owner: `owner-${++owners}`,
        leaseMs: 10_000,
        limit: 100,
        retryLimit: 100,
        ...request,
      });

    const settle = (claimed: ClaimedDelivery[], settlement: Settlement, leaseOwner?: string) =>
      t.store.settle(
        claimed.map((d) => attemptResult(t.ids, d, settlement, t.clock.now(), leaseOwner ?? d.leaseOwner)),
        t.clock.now(),
        HEALTH,
        () => t.ids.next("evt"),
      );

    const count = (claimed: ClaimedDelivery[], status: string) =>
      claimed.filter((d) => d.status === status).length;

    /** `n` deliveries that failed once and are due again now (status retrying). */
    async function retries(n: number) {
      await publish(n);
      const first = await claim();
      expect(first.length).toBe(n);
      expect((await settle(first, { action: "retry", at: t.clock.now() })).applied).toEqual(
        first.map(() => true),
      );
    }

    test("a claim takes no more than its limit, and no more than each subscription's cap", async () => {
      const small = await webhook(2, ["small.*"]);
      const large = await webhook(5, ["large.*"]);
      await publish(4, "small.x");
      await publish(8, "large.x");
      const first = await claim({ limit: 3 });
      expect(first.length).toBe(3);
      const rest = await claim();
      const all = [...first, ...rest];
      expect(new Set(all.map((d) => d.id)).size).toBe(all.length);
      expect(all.filter((d) => d.webhook.id === small.id).length).toBe(2);
      expect(all.filter((d) => d.webhook.id === large.id).length).toBe(5);
      expect((await claim()).length).toBe(0);
      // Each claimed delivery comes with what its attempt needs.
      for (const d of all) {
        expect(d.status).toBe("pending");
        expect(d.seriesAttempts).toBe(0);
        expect(d.payload).toBe("{}");
        expect(d.eventType).toBe(d.webhook.id === small.id ? "small.x" : "large.x");
        expect(d.leaseUntil).toBeGreaterThanOrEqual(t.clock.now() + 10_000);
        expect(await t.store.findDelivery(d.id)).toMatchObject({
          eventId: d.eventId,
          nextAttemptAt: d.leaseUntil,
        });
      }
    });

    test("retries take at most retryLimit of a claim; first attempts may fill the rest", async () => {
      await webhook();
      await retries(3);
      await publish(3);
      const mixed = await claim({ limit: 4, retryLimit: 1 });
      expect([count(mixed, "pending"), count(mixed, "retrying")]).toEqual([3, 1]);
      expect(mixed.filter((d) => d.status === "retrying").every((d) => d.seriesAttempts === 1)).toBe(true);
      // Two retries left and one lease given back: a claim without a reserve takes them all.
      await t.store.releaseLeases(
        mixed.map((d) => ({ deliveryId: d.id, leaseOwner: d.leaseOwner })),
        t.clock.now(),
      );
      const all = await claim({ limit: 6, retryLimit: 6 });
      expect([count(all, "pending"), count(all, "retrying")]).toEqual([3, 3]);
    });

    test("with the reserve for first attempts, a claim of retries alone stops at retryLimit", async () => {
      await webhook();
      await retries(4);
      const claimed = await claim({ limit: 10, retryLimit: 2 });
      expect([count(claimed, "pending"), count(claimed, "retrying")]).toEqual([0, 2]);
      expect((await claim({ limit: 10, retryLimit: 0 })).length).toBe(0);
      expect((await claim({ limit: 10, retryLimit: 10 })).length).toBe(2);
    });

    test("a claim never takes another owner's live lease; once it ended, a new owner may", async () => {
      await webhook();
      await publish(2);
      const first = await claim({ leaseMs: 20_000 });
      expect(first.length).toBe(2);
      const end = first[0]!.leaseUntil;
      for (const at of [t.clock.now(), end - 1]) {
        t.clock.set(at);
        expect(await claim()).toEqual([]);
      }
      t.clock.set(end);
      const second = await claim();
      expect(second.map((d) => d.id).sort()).toEqual(first.map((d) => d.id).sort());
      expect(second.every((d) => d.leaseOwner !== first[0]!.leaseOwner)).toBe(true);
      // The lapsed owner can no longer settle (the delivery is leased again) nor release it.
      const stale = await settle(first, { action: "succeed" });
      expect(stale.applied).toEqual([false, false]);
      expect(stale.finals).toEqual([]);
      expect(
        await t.store.releaseLeases(
          first.map((d) => ({ deliveryId: d.id, leaseOwner: d.leaseOwner })),
          t.clock.now(),
        ),
      ).toBe(0);
      for (const d of second) {
        expect(await t.store.findDelivery(d.id)).toMatchObject({
          status: "pending",
          nextAttemptAt: d.leaseUntil,
        });
      }
      // The live owner's settlement is applied.
      const live = await settle(second, { action: "succeed" });
      expect(live.applied).toEqual([true, true]);
      expect(live.finals).toEqual([{ status: "success", mode: "live", count: 2 }]);
    });

    test("a settle by a stale owner or a stranger is not applied, though its attempt counts for health", async () => {
      const w = await webhook();
      await publish(1);
      const [d] = await claim();
      const lost = await settle([d!], { action: "exhaust" }, "someone-else");
      expect(lost.applied).toEqual([false]);
      expect(await t.store.findDelivery(d!.id)).toMatchObject({
        status: "pending",
        attempts: 0,
        nextAttemptAt: d!.leaseUntil,
      });
      expect((await t.store.findWebhook(w.id))?.consecutiveFailures).toBe(1);
      // Settled once by its owner, a second settle (a repeat, or a stale copy) changes nothing.
      expect((await settle([d!], { action: "retry", at: t.clock.now() + 500 })).applied).toEqual([true]);
      expect((await settle([d!], { action: "succeed" })).applied).toEqual([false]);
      expect(await t.store.findDelivery(d!.id)).toMatchObject({
        status: "retrying",
        attempts: 1,
        nextAttemptAt: t.clock.now() + 500,
      });
    });

    test("the same settlement again (its first answer lost) is applied once and recorded once", async () => {
      const w = await webhook();
      await publish(3);
      const claimed = await claim();
      const batch = claimed.map((d, i) =>
        attemptResult(
          t.ids,
          d,
          i === 0 ? { action: "retry", at: t.clock.now() + 500 } : { action: "succeed" },
          t.clock.now(),
        ),
      );
      const hour = 3_600_000;
      const stats = () =>
        t.store.readStats({
          span: hour,
          since: t.clock.now() - hour,
          until: t.clock.now() + hour,
          now: t.clock.now(),
          tenantId: "t1",
        });
      const first = await t.store.settle(batch, t.clock.now(), HEALTH, () => t.ids.next("evt"));
      const counted = await stats();
      const again = await t.store.settle(batch, t.clock.now(), HEALTH, () => t.ids.next("evt"));
      // The statistics count each attempt once too.
      expect(await stats()).toEqual(counted);
      expect(first.applied).toEqual([true, true, true]);
      expect(again.applied).toEqual([true, true, true]);
      expect(again.finals).toEqual([]);
      for (const [i, d] of claimed.entries()) {
        expect(await t.store.findDelivery(d.id)).toMatchObject({
          status: i === 0 ? "retrying" : "success",
          attempts: 1,
        });
        expect((await t.store.listAttempts(d.id, { order: "started_at", limit: 10 })).items.length).toBe(1);
      }
      expect((await t.store.findWebhook(w.id))?.consecutiveFailures).toBe(0);
    });

    test("an attempt id that names another delivery's attempt is refused, and nothing of its batch is kept", async () => {
      await webhook();
      await publish(2);
      const [a, b] = await claim();
      const first = attemptResult(t.ids, a!, { action: "succeed" }, t.clock.now());
      await t.store.settle([first], t.clock.now(), HEALTH, () => t.ids.next("evt"));
      const clash = attemptResult(t.ids, b!, { action: "succeed" }, t.clock.now());
      const batch = [{ ...clash, attempt: { ...clash.attempt, id: first.attempt.id } }];
      await expect(t.store.settle(batch, t.clock.now(), HEALTH, () => t.ids.next("evt"))).rejects.toThrow();
      expect(await t.store.findDelivery(b!.id)).toMatchObject({ status: "pending", attempts: 0 });
      expect((await t.store.listAttempts(b!.id, { order: "started_at", limit: 10 })).items).toEqual([]);
    });

    test("releaseLeases gives a delivery back due now, only for the owner that holds it", async () => {
      await webhook();
      await publish(2);
      const claimed = await claim({ leaseMs: 60_000 });
      expect(claimed.length).toBe(2);
      t.clock.advance(1_000);
      const [a, b] = claimed as [ClaimedDelivery, ClaimedDelivery];
      expect(
        await t.store.releaseLeases([{ deliveryId: a.id, leaseOwner: "not-the-owner" }], t.clock.now()),
      ).toBe(0);
      expect(
        await t.store.releaseLeases(
          [
            { deliveryId: a.id, leaseOwner: a.leaseOwner },
            { deliveryId: b.id, leaseOwner: "not-the-owner" },
          ],
          t.clock.now(),
        ),
      ).toBe(1);
      expect(await t.store.findDelivery(a.id)).toMatchObject({
        status: "pending",
        nextAttemptAt: t.clock.now(),
      });
      expect(await t.store.findDelivery(b.id)).toMatchObject({ nextAttemptAt: b.leaseUntil });
      expect(await t.store.nextDueAt([])).toBeLessThanOrEqual(t.clock.now());
      // Due now: the next claim, at this very time, takes it (and only it).
      const again = await claim();
      expect(again.map((d) => d.id)).toEqual([a.id]);
      // Released twice (the first owner after the new claim): nothing.
      expect(
        await t.store.releaseLeases([{ deliveryId: a.id, leaseOwner: a.leaseOwner }], t.clock.now()),
      ).toBe(0);
      // Its settlement by the old owner is not applied either.
      expect((await settle([a], { action: "succeed" })).applied).toEqual([false]);
    });

    test("leases that ended free their places one by one, though a newer lease of the subscription is live", async () => {
      await webhook(2);
      await publish(2);
      const first = await claim({ leaseMs: 1_000 });
      expect(first.length).toBe(2);
      t.clock.set(Math.max(...first.map((d) => d.leaseUntil)) + 1);
      // Both leases ended: each claim of one takes one, the second while the first's new lease is live.
      const a = await claim({ limit: 1, leaseMs: 1_000 });
      expect(a.length).toBe(1);
      const b = await claim({ limit: 1, leaseMs: 1_000 });
      expect(b.map((d) => d.id)).toEqual(first.map((d) => d.id).filter((id) => id !== a[0]!.id));
      // And the cap holds again: two live leases.
      await publish(1);
      expect(await claim()).toEqual([]);
    });

    test("a released lease frees its place under the subscription's cap", async () => {
      await webhook(1);
      await publish(2);
      const [first] = await claim();
      expect(await claim()).toEqual([]);
      await t.store.releaseLeases([{ deliveryId: first!.id, leaseOwner: first!.leaseOwner }], t.clock.now());
      expect((await claim()).length).toBe(1);
      expect(await claim()).toEqual([]);
    });

    test("queueStats counts queued deliveries and the oldest due time; nextDueAt skips excluded subscriptions", async () => {
      const a = await webhook(100, ["a.*"]);
      const b = await webhook(100, ["b.*"]);
      expect(await t.store.queueStats(t.clock.now())).toEqual({ depth: 0, oldestDueAt: null });
      expect(await t.store.nextDueAt([])).toBeNull();
      const start = t.clock.now();
      await publish(2, "a.x");
      t.clock.advance(100);
      await publish(1, "b.x");
      expect(await t.store.queueStats(t.clock.now())).toEqual({ depth: 3, oldestDueAt: start });
      expect(await t.store.nextDueAt([])).toBeLessThanOrEqual(start);
      const later = await t.store.nextDueAt([a.id]);
      expect(later).not.toBeNull();
      expect(later as number).toBeLessThanOrEqual(start + 100);
      expect(await t.store.nextDueAt([a.id, b.id])).toBeNull();
      const claimed = await claim();
      await settle(claimed, { action: "succeed" });
      expect(await t.store.queueStats(t.clock.now())).toEqual({ depth: 0, oldestDueAt: null });
    });
  });
}
