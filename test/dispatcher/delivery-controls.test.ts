// FIFO ordering and rate limits through the real daemon (a short retry schedule from config) and
// real receivers on 127.0.0.1 (SPEC §3 "Order", "Rate limit"): what each receiver gets, in what
// order, and when. Runs on either driver (HOOKD_TEST_DRIVER).
import { afterEach, describe, expect, test } from "bun:test";
import { systemClock } from "../../src/runtime/clock.ts";
import { createTestDaemon, type TestDaemon } from "../support/daemon.ts";
import { type IntervalReceiver, startIntervalReceiver } from "../support/multi-instance.ts";
import { type Receiver, startReceiver } from "../support/receiver.ts";
import { waitFor } from "../support/wait-for.ts";

let t: TestDaemon | undefined;
let r: Receiver | undefined;
let slow: IntervalReceiver | undefined;

afterEach(async () => {
  await slow?.close();
  slow = undefined;
  await r?.stop();
  await t?.close();
  r = t = undefined;
});

async function setup(schedule: string) {
  t = await createTestDaemon({
    clock: systemClock,
    yaml: `delivery:\n  retry_schedule: ${schedule}\nshutdown_grace: 1s`,
  });
  r = await startReceiver();
  await t.daemon.start();
  return { t, r };
}

// biome-ignore lint/suspicious/noExplicitAny: API bodies are inspected freely
type Json = any;

async function createWebhook(body: Record<string, unknown>): Promise<Json> {
  const res = await t!.request("POST", "/v1/webhooks", { body: { events: ["*"], ...body } });
  expect(res.status).toBe(201);
  return res.body;
}

async function publish(type = "order.placed"): Promise<{ id: string; created_at: string }> {
  const res = await t!.request("POST", "/v1/events", { body: { type, data: {} } });
  expect(res.status).toBe(202);
  return res.body;
}

async function publishBatch(n: number): Promise<{ id: string; created_at: string }[]> {
  const events = Array.from({ length: n }, (_, i) => ({ type: "order.placed", data: { i } }));
  const res = await t!.request("POST", "/v1/events/batch", { body: { events } });
  expect(res.status).toBe(202);
  return res.body.data;
}

async function deliveriesOf(webhookId: string): Promise<Json[]> {
  const all: Json[] = [];
  let after = "";
  for (;;) {
    const res = await t!.request("GET", `/v1/deliveries?limit=100&webhook_id=${webhookId}${after}`);
    expect(res.status).toBe(200);
    all.push(...res.body.data);
    if (!res.body.has_next_page) return all;
    after = `&after=${res.body.end_cursor}`;
  }
}

async function attemptsOf(deliveryId: string): Promise<Json[]> {
  const res = await t!.request("GET", `/v1/deliveries/${deliveryId}/attempts?limit=100`);
  expect(res.status).toBe(200);
  return res.body.data;
}

const deliveryOf = async (webhookId: string, eventId: string) =>
  (await deliveriesOf(webhookId)).find((d) => d.event_id === eventId);

const waitForStatus = (webhookId: string, eventId: string, status: string): Promise<Json> =>
  waitFor(
    async () => {
      const d = await deliveryOf(webhookId, eventId);
      return d?.status === status ? d : null;
    },
    { what: `the delivery of ${eventId} to be ${status}` },
  );

/** The event ids in the order the receiver got them on `path`. */
const receivedIds = (path: string) => r!.received(path).map((q) => q.headers["webhook-id"]);

/** Creation order: created_at, ties by event id. */
const creationOrder = (events: { id: string; created_at: string }[]) =>
  [...events]
    .sort((a, b) => a.created_at.localeCompare(b.created_at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((e) => e.id);

describe("ordering: fifo", () => {
  test("a failing head holds the next event back until it succeeds; the next goes at once after", async () => {
    await setup("[100ms, 100ms, 100ms, 100ms, 100ms]");
    const hook = await createWebhook({ url: r!.url("/fifo"), ordering: "fifo" });
    r!.script("/fifo", { status: 500 }, { status: 500 }, { status: 500 });
    const e1 = await publish();
    const e2 = await publish();
    await r!.waitForRequests(5, "/fifo");
    expect(receivedIds("/fifo")).toEqual([e1.id, e1.id, e1.id, e1.id, e2.id]);
    const d1 = await waitForStatus(hook.id, e1.id, "success");
    const d2 = await waitForStatus(hook.id, e2.id, "success");
    expect(d1.attempts).toBe(4);
    expect(d2.attempts).toBe(1); // held pending, never attempted while the head failed
    const a1 = await attemptsOf(d1.id);
    const [a2] = await attemptsOf(d2.id);
    const headDone = Date.parse(a1.at(-1).started_at) + a1.at(-1).duration_ms;
    // Event 2's only attempt started after the head's success, and within a moment of it.
    expect(Date.parse(a2.started_at)).toBeGreaterThanOrEqual(headDone - 1);
    // "At once": not after the head's lease would have ended (at least 5 s: timeout + margin).
    expect(Date.parse(a2.started_at) - headDone).toBeLessThan(3000);
    for (let i = 1; i < a1.length; i++)
      expect(Date.parse(a1[i].started_at)).toBeLessThan(Date.parse(a2.started_at));
  });

  test("an exhausted head releases the next", async () => {
    await setup("[50ms, 50ms]");
    const hook = await createWebhook({ url: r!.url("/fifo"), ordering: "fifo" });
    r!.script("/fifo", { status: 500 }, { status: 500 }, { status: 500 });
    const e1 = await publish();
    const e2 = await publish();
    await waitForStatus(hook.id, e2.id, "success");
    expect((await deliveryOf(hook.id, e1.id)).status).toBe("exhausted");
    expect(receivedIds("/fifo")).toEqual([e1.id, e1.id, e1.id, e2.id]);
  });

  test("50 events published at once arrive one at a time in creation order", async () => {
    await setup("[50ms]");
    // A receiver that takes a moment over each request, so two at once would show.
    slow = startIntervalReceiver({ delayMs: { "/fifo": 5 } });
    const hook = await createWebhook({ url: slow.url("/fifo"), ordering: "fifo", max_in_flight: 16 });
    const unordered = await createWebhook({ url: r!.url("/any") });
    const events = await Promise.all(Array.from({ length: 50 }, () => publish()));
    const rx = slow;
    await waitFor(() => rx.delivered("/fifo").size === 50, { what: "50 FIFO deliveries" });
    expect(rx.intervals.map((i) => i.id)).toEqual(creationOrder(events));
    expect(rx.maxOpen("/fifo")).toBe(1);
    await r!.waitForRequests(50, "/any");
    expect(hook.max_in_flight).toBe(16); // stored as set; enforced as 1
    expect(unordered.ordering).toBe("unordered");
  });

  test("a batch (one creation time) goes in event id order", async () => {
    await setup("[50ms]");
    slow = startIntervalReceiver({ delayMs: { "/fifo": 5 } });
    await createWebhook({ url: slow.url("/fifo"), ordering: "fifo" });
    const events = await publishBatch(30);
    const rx = slow;
    await waitFor(() => rx.delivered("/fifo").size === 30, { what: "30 FIFO deliveries" });
    expect(rx.intervals.map((i) => i.id)).toEqual(creationOrder(events));
    expect(rx.maxOpen("/fifo")).toBe(1);
  });
});

describe("rate_limit", () => {
  test("rate_limit 20: 100 events at once, never more than 20 arrivals in any one second, 100 attempts; an unlimited webhook finishes far sooner", async () => {
    await setup("[100ms]");
    const limited = await createWebhook({ url: r!.url("/limited"), rate_limit: 20, max_in_flight: 50 });
    await createWebhook({ url: r!.url("/open"), max_in_flight: 50 });
    const started = Date.now();
    await publishBatch(100);
    await r!.waitForRequests(100, "/open");
    const openDone = Date.now() - started;
    await r!.waitForRequests(100, "/limited", 20_000);
    const limitedDone = Date.now() - started;
    const arrivals = r!.received("/limited").map((q) => q.at);
    expect(arrivals.length).toBe(100);
    expect(maxInAnyWindow(arrivals, 1000)).toBeLessThanOrEqual(20);
    expect(new Set(receivedIds("/limited")).size).toBe(100);
    // Five windows at least (a burst of 20, then 20 a second); the unlimited one is not held back.
    expect(limitedDone).toBeGreaterThan(4000);
    expect(openDone * 3).toBeLessThan(limitedDone);
    const deliveries = await waitFor(
      async () => {
        const all = await deliveriesOf(limited.id);
        return all.length === 100 && all.every((d) => d.status === "success") ? all : null;
      },
      { what: "every limited delivery to succeed" },
    );
    // Waiting was not an attempt: exactly one each.
    expect(deliveries.reduce((sum, d) => sum + d.attempts, 0)).toBe(100);
  }, 30_000);
});

/** The most timestamps within any window of `ms` (a window starts at each arrival). */
function maxInAnyWindow(times: number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= ms) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}
