// Portal sessions and the statistics aggregates, on every store driver: sessions found by their
// token's hash only while live, tenant-scoped, revoked at once; aggregates added by ingest (events,
// per tenant and per webhook), test events and settlements (attempts by outcome, durations), summed
// per span on read, scoped by tenant and webhook, and removed by retention once their span ended.
import { describe, expect, test } from "bun:test";
import { STAT_BUCKETS } from "../../../src/domain/stats.ts";
import type { Settlement } from "../../../src/store/store.ts";
import { allRows, attemptResult, newWebhook, STORE_DRIVERS, T0, useStore } from "../../support/stores.ts";

const HEALTH = { disableAfterFailures: 1000, disableAfterMs: 365 * 86_400_000 };
const HOUR = STAT_BUCKETS["1h"];

for (const driver of STORE_DRIVERS) {
  describe(driver.name, () => {
    const t = useStore(driver);

    const session = (overrides: Record<string, unknown> = {}) => ({
      id: t.ids.next("ps"),
      kind: "portal" as const,
      tenantId: "t1",
      mode: "live" as const,
      capabilities: ["read" as const],
      createdAt: t.clock.now(),
      expiresAt: t.clock.now() + 60_000,
      tokenHash: `${"a".repeat(60)}${String(Math.random()).slice(2, 6)}`,
      ...overrides,
    });

    test("a session is found by its token's hash while live, within its tenant, and gone once deleted", async () => {
      const one = session({ tokenHash: "1".repeat(64) });
      const two = session({ tokenHash: "2".repeat(64), tenantId: "t2" });
      const admin = session({ tokenHash: "3".repeat(64), kind: "console", tenantId: null });
      for (const s of [one, two, admin]) await t.store.insertPortalSession(s);
      const { tokenHash: _, ...stored } = one;
      expect(await t.store.findPortalSessionByToken("1".repeat(64), t.clock.now())).toEqual(stored);
      expect(await t.store.findPortalSessionByToken("4".repeat(64), t.clock.now())).toBeNull();
      expect(await t.store.findPortalSession(one.id, "t2", t.clock.now())).toBeNull();
      expect((await t.store.findPortalSession(admin.id, undefined, t.clock.now()))?.kind).toBe("console");
      const page = await t.store.listPortalSessions(
        { tenantId: "t1", now: t.clock.now() },
        { order: "-created_at", limit: 10 },
      );
      expect(page.items.map((s) => s.id)).toEqual([one.id]);
      expect(await t.store.deletePortalSession(one.id, "t2", t.clock.now())).toBe(false);
      expect(await t.store.deletePortalSession(one.id, "t1", t.clock.now())).toBe(true);
      expect(await t.store.findPortalSessionByToken("1".repeat(64), t.clock.now())).toBeNull();
      expect(await t.store.deletePortalSessions("t2", t.clock.now())).toBe(1);
      expect(await t.store.deletePortalSessions(undefined, t.clock.now())).toBe(1);
      t.clock.advance(60_000);
    });

    test("a session ends at its expiry; revoking counts only live ones", async () => {
      const s = session({ tokenHash: "5".repeat(64) });
      await t.store.insertPortalSession(s);
      t.clock.advance(59_999);
      expect(await t.store.findPortalSessionByToken("5".repeat(64), t.clock.now())).not.toBeNull();
      t.clock.advance(1);
      expect(await t.store.findPortalSessionByToken("5".repeat(64), t.clock.now())).toBeNull();
      expect(await t.store.deletePortalSessions("t1", t.clock.now())).toBe(0);
    });

    async function publish(tenantId: string, n: number) {
      const events = Array.from({ length: n }, () => ({
        id: t.ids.next("evt"),
        type: "invoice.paid",
        accountId: null,
        payload: "{}",
        createdAt: t.clock.now(),
      }));
      const result = await t.store.ingest({ tenantId, now: t.clock.now(), events });
      expect(result.kind).toBe("accepted");
    }

    const read = (query: { tenantId?: string; webhookId?: string } = {}) =>
      t.store.readStats({ span: HOUR, since: T0 - HOUR, until: T0 + 3 * HOUR, now: t.clock.now(), ...query });

    test("ingest and settle add to the aggregates; a read sums them per span, scoped", async () => {
      const a = await t.store.insertWebhook(newWebhook(t.ids, t.clock.now(), { maxInFlight: 100 }));
      const b = await t.store.insertWebhook(newWebhook(t.ids, t.clock.now(), { maxInFlight: 100 }));
      const other = await t.store.insertWebhook(newWebhook(t.ids, t.clock.now(), { tenantId: "t2" }));
      await publish("t1", 3); // 3 events, 6 deliveries
      await publish("t3", 2); // no subscribers: events all the same
      t.clock.advance(HOUR);
      const claimed = await t.store.claimDue({
        now: t.clock.now(),
        owner: "o1",
        leaseMs: 10_000,
        limit: 100,
        retryLimit: 100,
      });
      expect(claimed).toHaveLength(6);
      const results = claimed.map((d, i) => {
        const settlement: Settlement =
          d.webhook.id === a.id ? { action: "succeed" } : { action: "retry", at: t.clock.now() + 1000 };
        const result = attemptResult(t.ids, d, settlement, t.clock.now());
        return { ...result, attempt: { ...result.attempt, durationMs: 10 * (i + 1) } };
      });
      await t.store.settle(results, t.clock.now(), HEALTH, () => t.ids.next("evt"));

      const all = await read({ tenantId: "t1" });
      const byStart = Object.fromEntries(all.rows.map((r) => [r.start, r]));
      expect(all.rows.map((r) => r.start).sort()).toEqual([T0, T0 + HOUR]);
      expect(byStart[T0]).toMatchObject({ events: 3, attempts: 0 });
      expect(byStart[T0 + HOUR]).toMatchObject({ events: 0, attempts: 6, succeeded: 3, failed: 3 });
      expect(byStart[T0 + HOUR]?.durations.reduce((x, y) => x + y, 0)).toBe(6);
      expect(all.webhooks).toEqual({ enabled: 2, disabled: 0, failing: 1 });
      expect(all.queue.depth).toBe(3);

      const onlyA = await read({ tenantId: "t1", webhookId: a.id });
      expect(onlyA.rows.find((r) => r.start === T0)).toMatchObject({ events: 3 });
      expect(onlyA.rows.find((r) => r.start === T0 + HOUR)).toMatchObject({
        attempts: 3,
        succeeded: 3,
        failed: 0,
      });
      expect(onlyA.webhooks).toEqual({ enabled: 1, disabled: 0, failing: 0 });
      expect(onlyA.queue.depth).toBe(0);
      expect((await read({ tenantId: "t1", webhookId: b.id })).queue.depth).toBe(3);
      // Another tenant's webhook named with a tenant: nothing of it.
      const crossed = await read({ tenantId: "t1", webhookId: other.id });
      expect([crossed.rows, crossed.webhooks, crossed.queue.depth]).toEqual([
        [],
        { enabled: 0, disabled: 0, failing: 0 },
        0,
      ]);
      expect((await read({ tenantId: "t3" })).rows).toEqual([
        expect.objectContaining({ start: T0, events: 2 }),
      ]);
      const admin = await read();
      expect(admin.rows.find((r) => r.start === T0)).toMatchObject({ events: 5 });
      expect(admin.webhooks.enabled).toBe(3);

      // Minute and day spans hold the same counts.
      const day = await t.store.readStats({
        span: STAT_BUCKETS["1d"],
        since: T0,
        until: T0 + 86_400_000,
        now: t.clock.now(),
        tenantId: "t1",
      });
      expect(day.rows).toEqual([
        expect.objectContaining({ start: T0, events: 3, attempts: 6, succeeded: 3, failed: 3 }),
      ]);
      const minutes = await t.store.readStats({
        span: STAT_BUCKETS["1m"],
        since: T0,
        until: T0 + 2 * HOUR,
        now: t.clock.now(),
        tenantId: "t1",
      });
      expect(minutes.rows.map((r) => [r.start, r.events, r.attempts])).toEqual(
        expect.arrayContaining([
          [T0, 3, 0],
          [T0 + HOUR, 0, 6],
        ]),
      );
    });

    test("the queue's depth follows every path that queues or ends a delivery", async () => {
      const a = await t.store.insertWebhook(newWebhook(t.ids, t.clock.now(), { maxInFlight: 100 }));
      const b = await t.store.insertWebhook(newWebhook(t.ids, t.clock.now(), { maxInFlight: 100 }));
      const c = await t.store.insertWebhook(newWebhook(t.ids, t.clock.now(), { maxInFlight: 100 }));
      const queued = async () => {
        const rows = await allRows(t.store, "deliveries");
        return rows.filter((r) => r.status === "pending" || r.status === "retrying").length;
      };
      const expectDepth = async (n: number) => {
        expect(await queued()).toBe(n);
        expect((await read()).queue.depth).toBe(n);
        expect((await read({ tenantId: "t1" })).queue.depth).toBe(n);
      };
      await publish("t1", 4); // 12 queued
      await expectDepth(12);
      const claimed = await t.store.claimDue({
        now: t.clock.now(),
        owner: "o",
        leaseMs: 10_000,
        limit: 100,
        retryLimit: 100,
      });
      await expectDepth(12); // leased is still queued
      const results = claimed.map((d) =>
        attemptResult(
          t.ids,
          d,
          d.webhook.id === a.id ? { action: "succeed" } : { action: "retry", at: t.clock.now() },
          t.clock.now(),
        ),
      );
      await t.store.settle(results, t.clock.now(), HEALTH, () => t.ids.next("evt"));
      await expectDepth(8);
      const done = claimed.find((d) => d.webhook.id === a.id)!;
      expect(await t.store.requeueDelivery(done.id, undefined, t.clock.now())).not.toBeNull();
      await expectDepth(9);
      expect(await t.store.recoverDeliveries(a.id, T0, t.clock.now() + 1, t.clock.now())).toBe(0);
      await t.store.updateWebhook(b.id, undefined, { enabled: false }, t.clock.now());
      await expectDepth(5);
      await t.store.deleteWebhook(c.id, undefined, t.clock.now());
      await expectDepth(1);
      expect((await read({ webhookId: a.id })).queue.depth).toBe(1);
      await t.store.sweepRetention(t.clock.now() + 1, 1000);
      await expectDepth(1);
    });

    test("a test event counts for its webhook; retention removes aggregates whose span ended", async () => {
      const a = await t.store.insertWebhook(newWebhook(t.ids, t.clock.now()));
      const id = t.ids.next("evt");
      await t.store.insertTestEvent(a, {
        id,
        type: "webhook.test",
        accountId: null,
        payload: "{}",
        createdAt: t.clock.now(),
      });
      expect((await read({ webhookId: a.id })).rows).toEqual([
        expect.objectContaining({ start: T0, events: 1 }),
      ]);
      // Minute and hour rows end before the day's: a cutoff an hour on removes those two.
      await t.store.sweepRetention(T0 + HOUR, 1000);
      expect((await read({ webhookId: a.id })).rows).toEqual([]);
      const day = await t.store.readStats({
        span: STAT_BUCKETS["1d"],
        since: T0,
        until: T0 + 86_400_000,
        now: t.clock.now(),
        webhookId: a.id,
      });
      expect(day.rows).toHaveLength(1);
      await t.store.sweepRetention(T0 + 86_400_000, 1000);
      const gone = await t.store.readStats({
        span: STAT_BUCKETS["1d"],
        since: T0,
        until: T0 + 86_400_000,
        now: t.clock.now(),
        webhookId: a.id,
      });
      expect(gone.rows).toEqual([]);
    });
  });
}
