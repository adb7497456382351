// Claiming, on every store driver: the share of capacity kept for first attempts, per-subscription
// caps, and the lease that makes a claimed delivery due again only when it ends.
import { describe, expect, test } from "bun:test";
import type { ClaimRequest } from "../../../src/store/store.ts";
import { attemptResult, newWebhook, STORE_DRIVERS, useStore } from "../../support/stores.ts";

for (const driver of STORE_DRIVERS) {
  describe(driver.name, () => {
    const t = useStore(driver);

    const webhook = (maxInFlight = 8) =>
      t.store.insertWebhook(newWebhook(t.ids, t.clock.now(), { maxInFlight }));

    async function publish(n: number) {
      const events = Array.from({ length: n }, () => {
        const id = t.ids.next("evt");
        return { id, type: "a.b", accountId: null, payload: `{"id":"${id}"}`, createdAt: t.clock.now() };
      });
      await t.store.ingest({ tenantId: "t1", events, now: t.clock.now() });
    }

    const claim = (request: Partial<ClaimRequest> = {}) =>
      t.store.claimDue({
        now: t.clock.now(),
        owner: `o${Math.random()}`,
        leaseMs: 10_000,
        limit: 100,
        retryLimit: 100,
        ...request,
      });

    const health = { disableAfterFailures: 100, disableAfterMs: 0 };

    test("with no retry capacity left, only first attempts are claimed", async () => {
      await webhook();
      await publish(2);
      const first = await claim();
      expect(first.length).toBe(2);
      // Both fail and are due again at once: they are now retries.
      const outcome = await t.store.settle(
        first.map((d) => attemptResult(t.ids, d, { action: "retry", at: t.clock.now() }, t.clock.now())),
        t.clock.now(),
        health,
        () => t.ids.next("evt"),
      );
      expect(outcome.applied).toEqual([true, true]);
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
      await t.store.settle(
        [attemptResult(t.ids, done, { action: "succeed" }, t.clock.now())],
        t.clock.now(),
        { disableAfterFailures: 10, disableAfterMs: 1000 },
        () => t.ids.next("evt"),
      );
      const second = await claim();
      expect(second.length).toBe(1); // a settled attempt frees its place
      expect((await claim()).length).toBe(0);
      // Every lease was granted at the same time for the same length: one end for all.
      const ends = new Set([...first.slice(1), ...second].map((d) => d.leaseUntil));
      expect(ends.size).toBe(1);
      const end = [...ends][0]!;
      // At least the requested lease, and no later than lease + timeout + a 5 s margin.
      expect(end).toBeGreaterThanOrEqual(t.clock.now() + 10_000);
      expect(end).toBeLessThanOrEqual(t.clock.now() + 10_000 + 1_000 + 5_000);
      t.clock.set(end - 1);
      expect((await claim()).length).toBe(0); // still live a millisecond before the end
      t.clock.set(end);
      expect((await claim()).length).toBe(3); // the expired leases no longer count
    });

    // An ended lease that no claim takes over (here a retry, with no share of the claim left for
    // retries) still frees its place for a fresh delivery; its owner's late settlement still applies.
    for (const rateLimit of [null, 1000]) {
      test(`an ended lease not taken over frees its place (rate limit ${rateLimit})`, async () => {
        await t.store.insertWebhook(newWebhook(t.ids, t.clock.now(), { maxInFlight: 1, rateLimit }));
        await publish(2);
        const [first] = await claim({ limit: 1, retryLimit: 0 });
        expect(first?.status).toBe("pending");
        await t.store.settle(
          [attemptResult(t.ids, first!, { action: "retry", at: t.clock.now() }, t.clock.now())],
          t.clock.now(),
          health,
          () => t.ids.next("evt"),
        );
        const owner = "late-owner";
        const [retry] = await claim({ limit: 1, retryLimit: 1, owner });
        expect(retry?.id).toBe(first!.id);
        t.clock.set(retry!.leaseUntil);
        const [fresh] = await claim({ limit: 1, retryLimit: 0 });
        expect(fresh?.status).toBe("pending");
        expect(fresh?.id).not.toBe(first!.id);
        // One place: the ended lease does not hold it, the fresh one does.
        expect(await claim({ limit: 1, retryLimit: 1 })).toEqual([]);
        const late = await t.store.settle(
          [attemptResult(t.ids, retry!, { action: "succeed" }, t.clock.now())],
          t.clock.now(),
          health,
          () => t.ids.next("evt"),
        );
        expect(late.applied).toEqual([true]);
        // The place is still the fresh lease's.
        expect(await claim({ limit: 1, retryLimit: 1 })).toEqual([]);
        await t.store.settle(
          [attemptResult(t.ids, fresh!, { action: "succeed" }, t.clock.now())],
          t.clock.now(),
          health,
          () => t.ids.next("evt"),
        );
        await publish(1);
        expect((await claim({ limit: 2, retryLimit: 1 })).length).toBe(1);
      });
    }
  });
}
