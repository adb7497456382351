// Ingest, on every store driver: fan-out by pattern, account and tenant (following subscription
// changes), concurrent ingests, and idempotency keys — replay, conflict, concurrency, expiry, and
// batches refused whole. (The SQLite write batcher itself: test/store/sqlite/write-batch.test.ts.)
import { describe, expect, test } from "bun:test";
import type { IngestRequest, IngestResult, NewWebhook, TableName } from "../../../src/store/store.ts";
import { allRows, newWebhook, STORE_DRIVERS, useStore } from "../../support/stores.ts";

for (const driver of STORE_DRIVERS) {
  describe(driver.name, () => {
    const t = useStore(driver);

    const webhook = (overrides: Partial<NewWebhook> = {}) =>
      t.store.insertWebhook(
        newWebhook(t.ids, t.clock.now(), {
          url: "https://example.com/hooks",
          timeoutSeconds: 10,
          ...overrides,
        }),
      );

    const event = (type = "a.b", accountId: string | null = null) => {
      const id = t.ids.next("evt");
      return {
        id,
        type,
        accountId,
        createdAt: t.clock.now(),
        payload: JSON.stringify({ id, type, data: {} }),
      };
    };

    const request = (overrides: Partial<IngestRequest> = {}): IngestRequest => ({
      tenantId: "t1",
      now: t.clock.now(),
      events: [event()],
      ...overrides,
    });

    const count = async (table: TableName) => (await allRows(t.store, table)).length;

    const key = (k: string, hash: string) => ({
      key: k,
      requestHash: hash,
      expiresAt: t.clock.now() + 60_000,
    });

    const eventsOf = (result: IngestResult) => {
      if (result.kind === "conflict") throw new Error("conflict");
      return result.events;
    };

    test("filters: a webhook whose filter an event does not match gets no delivery; the event says how many did", async () => {
      const all = await webhook({});
      const big = await webhook({ filter: { "data.amount": { $gte: 100 } } });
      const eu = await webhook({ filter: { $or: [{ "data.country": "DE" }, { "data.country": "FR" }] } });
      const withData = (data: unknown, given?: "given") => {
        const e = event("invoice.paid");
        const payload = JSON.stringify({ id: e.id, type: e.type, data });
        return { ...e, payload, ...(given ? { data } : {}) };
      };
      // Data given parsed (as the API does) or read from the payload (as hookd's own events are).
      const result = eventsOf(
        await t.store.ingest(
          request({
            events: [
              withData({ amount: 5, country: "DE" }, "given"),
              withData({ amount: 500, country: "US" }),
              withData({ amount: "500", country: ["DE"] }),
            ],
          }),
        ),
      );
      expect(result.map((e) => e.deliveriesCount)).toEqual([2, 2, 1]);
      const targets = (await allRows(t.store, "deliveries")).map((d) => [d.event_id, d.webhook_id]);
      const [first, second, third] = result.map((e) => e.id);
      expect(targets.sort()).toEqual(
        [
          [first, all.id],
          [first, eu.id],
          [second, all.id],
          [second, big.id],
          [third, all.id],
        ].sort(),
      );
      // The filter is a column like the others; a change applies to the next event.
      expect((await t.store.findWebhook(big.id))?.filter).toEqual({ "data.amount": { $gte: 100 } });
      await t.store.updateWebhook(big.id, undefined, { filter: null }, t.clock.now());
      const after = eventsOf(await t.store.ingest(request({ events: [withData({ amount: 1 })] })));
      expect(after[0]?.deliveriesCount).toBe(2);
    });

    test("fans out by pattern, account and tenant; the subscription cache follows changes", async () => {
      const invoices = await webhook({ events: ["invoice.*"] });
      const acct = await webhook({ accountIds: ["acct_1"] });
      await webhook({ tenantId: "t2" });
      await webhook({ enabled: false, disabledReason: "manual" });

      const first = await t.store.ingest(
        request({ events: [event("invoice.paid", "acct_1"), event("user.x")] }),
      );
      expect(first.kind).toBe("accepted");
      if (first.kind !== "accepted") return;
      expect(first.events.map((e) => e.deliveriesCount)).toEqual([2, 0]);
      const targets = async (eventId: string) =>
        (await allRows(t.store, "deliveries"))
          .filter((row) => row.event_id === eventId)
          .map((row) => row.webhook_id as string)
          .sort();
      expect(await targets(first.events[0]!.id)).toEqual([invoices.id, acct.id].sort());

      // A subscription created after the cache was filled receives the next event.
      const late = await webhook({ events: ["user.*"] });
      const second = await t.store.ingest(request({ events: [event("user.x")] }));
      if (second.kind !== "accepted") throw new Error(second.kind);
      expect(await targets(second.events[0]!.id)).toEqual([late.id]);
      // One disabled, one deleted: neither receives anything more.
      await t.store.updateWebhook(late.id, "t1", { enabled: false, disabledReason: "manual" }, t.clock.now());
      await t.store.deleteWebhook(invoices.id, "t1", t.clock.now());
      const third = await t.store.ingest(request({ events: [event("user.x"), event("invoice.paid")] }));
      if (third.kind !== "accepted") throw new Error(third.kind);
      expect(third.events.map((e) => e.deliveriesCount)).toEqual([0, 0]);
    });

    test("200 concurrent ingests are all accepted and all stored", async () => {
      await webhook();
      const results = await Promise.all(Array.from({ length: 200 }, () => t.store.ingest(request())));
      expect(results.every((r) => r.kind === "accepted")).toBe(true);
      expect(await count("events")).toBe(200);
      expect(await count("deliveries")).toBe(200);
    });

    test("the same key and request again replays the first events; nothing new is stored", async () => {
      await webhook();
      const first = await t.store.ingest(
        request({ idempotency: key("k", "h1"), events: [event(), event()] }),
      );
      expect(first.kind).toBe("accepted");
      t.clock.advance(1_000);
      // The retried request carries new event ids (the client did not send any): the first ones win.
      const again = await t.store.ingest(
        request({ idempotency: key("k", "h1"), events: [event(), event()] }),
      );
      expect(again.kind).toBe("replayed");
      expect(eventsOf(again)).toEqual(eventsOf(first));
      expect([await count("events"), await count("deliveries")]).toEqual([2, 2]);
      // Another request under the same key is refused, and stores nothing either.
      expect((await t.store.ingest(request({ idempotency: key("k", "h2") }))).kind).toBe("conflict");
      expect([await count("events"), await count("deliveries")]).toEqual([2, 2]);
      // Keys are per tenant: another tenant's "k" is a key of its own.
      expect((await t.store.ingest(request({ tenantId: "t2", idempotency: key("k", "h2") }))).kind).toBe(
        "accepted",
      );
      expect(await count("events")).toBe(3);
    });

    test("per-event keys: a batch of known ids replays, a batch with one new id stores only that one", async () => {
      const a = event();
      const first = await t.store.ingest(request({ events: [a], eventKeys: [key("a", "ha")] }));
      expect(first.kind).toBe("accepted");
      const replay = await t.store.ingest(request({ events: [event()], eventKeys: [key("a", "ha")] }));
      expect(replay.kind).toBe("replayed");
      expect(eventsOf(replay)).toEqual(eventsOf(first));
      const b = event();
      const mixed = await t.store.ingest(
        request({ events: [event(), b], eventKeys: [key("a", "ha"), key("b", "hb")] }),
      );
      expect(mixed.kind).toBe("accepted");
      expect(eventsOf(mixed).map((e) => e.id)).toEqual([a.id, b.id]);
      expect(await count("events")).toBe(2);
    });

    test("two concurrent ingests with one key store exactly one event", async () => {
      await webhook();
      const [x, y] = await Promise.all([
        t.store.ingest(request({ idempotency: key("k", "h1") })),
        t.store.ingest(request({ idempotency: key("k", "h1") })),
      ]);
      expect([x!.kind, y!.kind].sort()).toEqual(["accepted", "replayed"]);
      expect(eventsOf(x!)).toEqual(eventsOf(y!));
      expect([await count("events"), await count("deliveries")]).toEqual([1, 1]);
    });

    test("concurrent ingests with one key: one accepted, the rest replay it", async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, () => t.store.ingest(request({ idempotency: key("k", "h1") }))),
      );
      expect(results.filter((r) => r.kind === "accepted").length).toBe(1);
      expect(results.filter((r) => r.kind === "replayed").length).toBe(19);
      const eventIds = new Set(
        results.flatMap((r) => (r.kind === "conflict" ? [] : r.events.map((e) => e.id))),
      );
      expect(eventIds.size).toBe(1);
      expect(await count("events")).toBe(1);
      expect((await t.store.ingest(request({ idempotency: key("k", "h2") }))).kind).toBe("conflict");
      expect(await count("events")).toBe(1);
    });

    test("concurrent ingests with one key and different requests: one accepted, the others conflict", async () => {
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => t.store.ingest(request({ idempotency: key("k", `h${i}`) }))),
      );
      expect(results.filter((r) => r.kind === "accepted").length).toBe(1);
      expect(results.filter((r) => r.kind === "conflict").length).toBe(9);
      expect(await count("events")).toBe(1);
    });

    test("an expired key is free again, and the sweep removes expired keys only", async () => {
      await t.store.ingest(request({ idempotency: key("old", "h1") }));
      t.clock.advance(30_000);
      await t.store.ingest(request({ idempotency: key("new", "h1") }));
      t.clock.advance(30_000);
      const reused = await t.store.ingest(request({ idempotency: key("old", "h2") }));
      expect(reused.kind).toBe("accepted");
      t.clock.advance(30_001);
      expect(await t.store.sweepIdempotencyKeys(t.clock.now(), 100)).toBe(1);
      expect((await allRows(t.store, "idempotency_keys")).map((r) => r.key)).toEqual(["old"]);
    });

    test("a batch with one id twice for different events stores none of them", async () => {
      const refused = await t.store.ingest(
        request({ events: [event(), event()], eventKeys: [key("dup", "h1"), key("dup", "h2")] }),
      );
      expect(refused.kind).toBe("conflict");
      expect([await count("events"), await count("idempotency_keys")]).toEqual([0, 0]);
    });

    test("a batch refused for a conflicting event id stores none of its events", async () => {
      await webhook();
      await t.store.ingest(request({ eventKeys: [key("a", "h1")] }));
      expect(await count("events")).toBe(1);
      const refused = await t.store.ingest(
        request({ events: [event(), event()], eventKeys: [null, key("a", "other")] }),
      );
      expect(refused.kind).toBe("conflict");
      expect([await count("events"), await count("deliveries"), await count("idempotency_keys")]).toEqual([
        1, 1, 1,
      ]);
    });
  });
}
