// The claim's delivery controls on every store driver (SPEC §3 "Order", "Rate limit"): a FIFO
// subscription's head alone is claimed, one at a time, in event creation order; a rate-limited
// one gets what its one-second window has left, and waits (not failed, not attempted) beyond it.
import { describe, expect, test } from "bun:test";
import { RATE_SLACK_MS, RATE_WINDOW_MS } from "../../../src/domain/delivery-rate.ts";
import type { ClaimedDelivery, ClaimRequest, NewWebhook, Settlement } from "../../../src/store/store.ts";
import { attemptResult, newWebhook, STORE_DRIVERS, useStore } from "../../support/stores.ts";

for (const driver of STORE_DRIVERS) {
  describe(driver.name, () => {
    const t = useStore(driver);
    const health = { disableAfterFailures: 100, disableAfterMs: 0 };

    const webhook = (overrides: Partial<NewWebhook>) =>
      t.store.insertWebhook(newWebhook(t.ids, t.clock.now(), { maxInFlight: 8, ...overrides }));

    /** Publishes events (ids as given, or new ones) created now, in one ingest. */
    async function publish(n: number, ids?: string[]): Promise<string[]> {
      const events = Array.from({ length: n }, (_, i) => {
        const id = ids?.[i] ?? t.ids.next("evt");
        return { id, type: "a.b", accountId: null, payload: `{"id":"${id}"}`, createdAt: t.clock.now() };
      });
      await t.store.ingest({ tenantId: "t1", events, now: t.clock.now() });
      return events.map((e) => e.id);
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

    const settle = (claimed: ClaimedDelivery[], settlement: Settlement) =>
      t.store.settle(
        claimed.map((d) => attemptResult(t.ids, d, settlement, t.clock.now())),
        t.clock.now(),
        health,
        () => t.ids.next("evt"),
      );

    const eventsOf = (claimed: ClaimedDelivery[]) => claimed.map((d) => d.eventId);

    test("FIFO: only the head is claimed, one at a time; a failing head holds the rest pending", async () => {
      const fifo = await webhook({ ordering: "fifo" });
      const [e1, e2, e3] = await publish(3);
      t.clock.advance(1);
      const first = await claim();
      expect(eventsOf(first)).toEqual([e1!]); // max_in_flight 8 is 1 for a FIFO subscription
      expect(await claim()).toEqual([]); // in flight: nothing behind it goes
      const retryAt = t.clock.now() + 5_000;
      await settle(first, { action: "retry", at: retryAt });
      expect(await claim()).toEqual([]); // the head retries later; the others wait for it
      // The hint is the head's due time, not the oldest due delivery's (no claim spins on them).
      expect(await t.store.nextDueAt([])).toBe(retryAt);
      const held = await t.store.listDeliveries({ webhookId: fifo.id }, { limit: 10, order: "-created_at" });
      const statusOf = new Map(held.items.map((d) => [d.eventId, [d.status, d.attempts]]));
      expect(statusOf.get(e2!)).toEqual(["pending", 0]);
      expect(statusOf.get(e3!)).toEqual(["pending", 0]);
      t.clock.set(retryAt);
      const again = await claim();
      expect(eventsOf(again)).toEqual([e1!]);
      expect(again[0]!.status).toBe("retrying");
      await settle(again, { action: "exhaust" }); // an ended head releases the next at once
      expect(await t.store.nextDueAt([])).toBeLessThanOrEqual(t.clock.now());
      const second = await claim();
      expect(eventsOf(second)).toEqual([e2!]);
      await settle(second, { action: "succeed" });
      expect(eventsOf(await claim())).toEqual([e3!]);
    });

    test("FIFO: creation order, ties by event id, whatever the order of ingest", async () => {
      await webhook({ ordering: "fifo" });
      const late = await publish(1, ["evt_c"]);
      t.clock.advance(-10); // an event created earlier, accepted later, goes first
      const early = await publish(2, ["evt_b", "evt_a"]);
      t.clock.advance(20);
      const order: string[] = [];
      for (let i = 0; i < 3; i++) {
        const claimed = await claim();
        expect(claimed.length).toBe(1);
        order.push(...eventsOf(claimed));
        await settle(claimed, { action: "succeed" });
      }
      expect(order).toEqual(["evt_a", "evt_b", ...late]);
      expect(early.length).toBe(2);
    });

    test("FIFO: a re-queued older delivery waits behind the one in flight, then goes first", async () => {
      const fifo = await webhook({ ordering: "fifo" });
      const [e1, e2, e3] = await publish(3);
      t.clock.advance(1);
      const first = await claim();
      await settle(first, { action: "succeed" });
      const second = await claim();
      expect(eventsOf(second)).toEqual([e2!]);
      const requeued = await t.store.requeueDelivery(first[0]!.id, "t1", t.clock.now());
      expect(typeof requeued).toBe("object");
      expect(await claim()).toEqual([]); // the older one is the head now, but e2 is in flight
      await settle(second, { action: "succeed" });
      expect(eventsOf(await claim())).toEqual([e1!]);
      expect(fifo.ordering).toBe("fifo");
      expect(e3).toBeDefined();
    });

    test("FIFO: a lease that ends without a settlement makes the same head due again", async () => {
      await webhook({ ordering: "fifo" });
      const [e1] = await publish(2);
      t.clock.advance(1);
      const first = await claim();
      expect(eventsOf(first)).toEqual([e1!]);
      t.clock.set(first[0]!.leaseUntil - 1);
      expect(await claim()).toEqual([]);
      t.clock.set(first[0]!.leaseUntil);
      expect(eventsOf(await claim())).toEqual([e1!]); // the process holding it died: it goes again
    });

    test("FIFO: a retrying head goes only within the claim's retry share; the ones behind it still wait", async () => {
      await webhook({ ordering: "fifo" });
      const [e1] = await publish(2);
      t.clock.advance(1);
      const first = await claim();
      expect(eventsOf(first)).toEqual([e1!]);
      await settle(first, { action: "retry", at: t.clock.now() });
      // No retry share left (the share kept for first attempts): the retrying head does not go, and
      // FIFO lets nothing behind it go either.
      expect(await claim({ retryLimit: 0 })).toEqual([]);
      const again = await claim({ retryLimit: 1 });
      expect(eventsOf(again)).toEqual([e1!]);
      expect(again[0]!.status).toBe("retrying");
    });

    test("an unordered subscription beside a FIFO one is claimed as before", async () => {
      const fifo = await webhook({ ordering: "fifo", events: ["a.*"] });
      const open = await webhook({ maxInFlight: 4 });
      await publish(6);
      t.clock.advance(1);
      const claimed = await claim();
      const per = (id: string) => claimed.filter((d) => d.webhook.id === id).length;
      expect(per(fifo.id)).toBe(1);
      expect(per(open.id)).toBe(4);
    });

    test("rate limit: a burst of N, then nothing until the window (with its slack) has passed", async () => {
      const limited = await webhook({ rateLimit: 5, maxInFlight: 100 });
      const other = await webhook({ maxInFlight: 100 });
      await publish(12);
      t.clock.advance(1);
      const start = t.clock.now();
      const first = await claim();
      expect(first.filter((d) => d.webhook.id === limited.id).length).toBe(5);
      expect(first.filter((d) => d.webhook.id === other.id).length).toBe(12); // never delayed
      await settle(first, { action: "succeed" });
      expect(await claim()).toEqual([]);
      // The limited subscription's hint says when its window has room again: nothing spins.
      expect(await t.store.nextDueAt([])).toBe(start + RATE_WINDOW_MS + RATE_SLACK_MS);
      t.clock.set(start + RATE_WINDOW_MS + RATE_SLACK_MS - 1);
      expect(await claim()).toEqual([]);
      const waiting = await t.store.listDeliveries(
        { webhookId: limited.id, status: "pending" },
        { limit: 20, order: "-created_at" },
      );
      expect(waiting.items.length).toBe(7); // waiting: pending, not attempted, not failed
      expect(waiting.items.every((d) => d.attempts === 0)).toBe(true);
      t.clock.set(start + RATE_WINDOW_MS + RATE_SLACK_MS);
      expect((await claim()).length).toBe(5);
      expect(await claim()).toEqual([]);
    });

    test("rate limit: the claim that fills the window raises the hint itself", async () => {
      await webhook({ rateLimit: 5, maxInFlight: 100 });
      await publish(8);
      t.clock.advance(1);
      const start = t.clock.now();
      expect((await claim()).length).toBe(5);
      // No claim in between: the one that filled the window already says when it has room again.
      expect(await t.store.nextDueAt([])).toBe(start + RATE_WINDOW_MS + RATE_SLACK_MS);
    });

    test("rate limit: claims within the window add up; each claim takes what is left", async () => {
      await webhook({ rateLimit: 3, maxInFlight: 100 });
      await publish(10);
      t.clock.advance(1);
      expect((await claim({ limit: 2 })).length).toBe(2);
      t.clock.advance(100);
      expect((await claim()).length).toBe(1); // 2 of 3 already started within the window
      t.clock.advance(100);
      expect(await claim()).toEqual([]);
    });

    test("rate limit and FIFO together: one at a time, and no more than N a window", async () => {
      await webhook({ ordering: "fifo", rateLimit: 2 });
      const ids = await publish(4);
      t.clock.advance(1);
      const order: string[] = [];
      for (let i = 0; i < 2; i++) {
        const claimed = await claim();
        order.push(...eventsOf(claimed));
        await settle(claimed, { action: "succeed" });
      }
      expect(await claim()).toEqual([]); // the window is full
      t.clock.advance(RATE_WINDOW_MS + RATE_SLACK_MS);
      order.push(...eventsOf(await claim()));
      expect(order).toEqual(ids.slice(0, 3));
    });
  });
}
