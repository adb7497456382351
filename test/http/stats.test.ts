// GET /v1/stats and /v1/webhooks/{id}/stats (SPEC §2 Statistics) through the real app on either
// driver: the shape with every bucket present, nulls without attempts, counts that match what a
// real receiver answered, tenant scope, and the range rules.
import { afterEach, describe, expect, test } from "bun:test";
import { percentile } from "../../src/domain/stats.ts";
import { createManualClock, systemClock } from "../../src/runtime/clock.ts";
import {
  ACME_KEY,
  ADMIN_KEY,
  createTestDaemon,
  GLOBEX_KEY,
  READER_KEY,
  type TestDaemon,
} from "../support/daemon.ts";
import { type Receiver, startReceiver } from "../support/receiver.ts";
import { waitFor } from "../support/wait-for.ts";

let t: TestDaemon | undefined;
let r: Receiver | undefined;
afterEach(async () => {
  await r?.stop();
  await t?.close();
  r = t = undefined;
});

// biome-ignore lint/suspicious/noExplicitAny: API bodies are inspected freely
type Json = any;

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 5, 1, 10, 30, 0);

async function webhook(key: string, url: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await t!.request("POST", "/v1/webhooks", { key, body: { url, events: ["*"], ...extra } });
  expect(res.status).toBe(201);
  return res.body.id;
}

async function publish(key: string, n = 1): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await t!.request("POST", "/v1/events", { key, body: { type: "invoice.paid", data: { i } } });
    expect(res.status).toBe(202);
  }
}

const stats = async (path: string, key = ADMIN_KEY): Promise<Json> => {
  const res = await t!.request("GET", path, { key });
  expect([path, res.status]).toEqual([path, 200]);
  return res.body;
};

describe("shape", () => {
  test("an empty database: the last 24 h in hourly buckets, every one present with zeros, nulls for rates", async () => {
    t = await createTestDaemon({ clock: createManualClock(T0) });
    const body = await stats("/v1/stats");
    expect(Object.keys(body)).toEqual(["since", "until", "bucket", "series", "totals", "queue", "webhooks"]);
    // since = 24 h before now, down to its hour; until = now, up to its hour.
    expect(body.since).toBe("2026-05-31T10:00:00.000Z");
    expect(body.until).toBe("2026-06-01T11:00:00.000Z");
    expect(body.bucket).toBe("1h");
    expect(body.series).toHaveLength(25);
    body.series.forEach((bucket: Json, i: number) => {
      expect(bucket).toEqual({
        start: new Date(Date.parse(body.since) + i * HOUR).toISOString(),
        events: 0,
        attempts: 0,
        succeeded: 0,
        failed: 0,
      });
    });
    expect(body.totals).toEqual({
      events: 0,
      attempts: 0,
      succeeded: 0,
      failed: 0,
      success_rate: null,
      p50_ms: null,
      p95_ms: null,
    });
    expect(body.queue).toEqual({ depth: 0, oldest_due_seconds: 0 });
    expect(body.webhooks).toEqual({ enabled: 0, disabled: 0, failing: 0 });
  });

  test("events land in the bucket of when they were accepted; minute and day buckets; an explicit range", async () => {
    const clock = createManualClock(T0);
    t = await createTestDaemon({ clock });
    const id = await webhook(ACME_KEY, "http://127.0.0.1:9/a");
    await publish(ACME_KEY, 2);
    clock.advance(2 * HOUR);
    await publish(ACME_KEY, 3);
    const hourly = await stats("/v1/stats?since=2026-06-01T09:00:00Z&until=2026-06-01T13:00:00Z");
    expect(hourly.series.map((b: Json) => [b.start.slice(11, 16), b.events])).toEqual([
      ["09:00", 0],
      ["10:00", 2],
      ["11:00", 0],
      ["12:00", 3],
    ]);
    expect(hourly.totals.events).toBe(5);
    expect(hourly.queue.depth).toBe(5);
    expect(hourly.queue.oldest_due_seconds).toBe(7200);
    clock.advance(1500);
    const later = await stats("/v1/stats?since=2026-06-01T09:00:00Z&until=2026-06-01T13:00:00Z");
    expect(later.queue.oldest_due_seconds).toBe(7201); // whole seconds elapsed, not rounded up
    const minutes = await stats("/v1/stats?since=2026-06-01T10:29:00Z&until=2026-06-01T10:32:00Z&bucket=1m");
    expect(minutes.series.map((b: Json) => b.events)).toEqual([0, 2, 0]);
    const days = await stats("/v1/stats?since=2026-05-30T00:00:00Z&until=2026-06-02T00:00:00Z&bucket=1d");
    expect(days.series.map((b: Json) => [b.start.slice(0, 10), b.events])).toEqual([
      ["2026-05-30", 0],
      ["2026-05-31", 0],
      ["2026-06-01", 5],
    ]);
    // One webhook's view: the events fanned out to it.
    const one = await stats(`/v1/webhooks/${id}/stats?since=2026-06-01T09:00:00Z&until=2026-06-01T13:00:00Z`);
    expect(one.series.map((b: Json) => b.events)).toEqual([0, 2, 0, 3]);
    expect(one.webhooks).toEqual({ enabled: 1, disabled: 0, failing: 0 });
  });

  test("range rules: more than 1000 buckets, until not after since, a bad bucket or date: 422 naming the field", async () => {
    t = await createTestDaemon({ clock: createManualClock(T0) });
    const id = await webhook(ACME_KEY, "http://127.0.0.1:9/a");
    for (const [query, path] of [
      ["bucket=1m", "bucket"], // the default 24 h is 1440 minutes
      ["since=2026-01-01T00:00:00Z&until=2026-03-01T00:00:00Z", "bucket"],
      ["since=2026-06-01T00:00:00Z&until=2026-05-01T00:00:00Z", "until"],
      ["since=2026-06-01T00:00:00Z&until=2026-06-01T00:00:00Z", "until"],
      ["bucket=5m", "bucket"],
      ["since=yesterday", "since"],
      ["until=2026-02-30", "until"],
    ]) {
      for (const path0 of ["/v1/stats", `/v1/webhooks/${id}/stats`]) {
        const res = await t.request("GET", `${path0}?${query}`);
        expect([path0, query, res.status, res.body.error.details?.[0]?.path]).toEqual([
          path0,
          query,
          422,
          path,
        ]);
      }
    }
    // Exactly 1000 buckets is allowed.
    const ok = await t.request(
      "GET",
      "/v1/stats?since=2026-06-01T00:00:00Z&until=2026-06-01T16:40:00Z&bucket=1m",
    );
    expect([ok.status, ok.body.series?.length]).toEqual([200, 1000]);
  });
});

describe("counts from a real receiver", () => {
  test("attempts, successes, failures and durations match what the receivers answered", async () => {
    t = await createTestDaemon({
      clock: systemClock,
      yaml: "delivery:\n  retry_schedule: [20ms, 20ms]\n  disable_after_failures: 1000\nshutdown_grace: 1s",
    });
    r = await startReceiver();
    r.always("/ok", { status: 200, body: "fine" });
    r.always("/bad", { status: 500, body: "broken" });
    const ok = await webhook(ACME_KEY, r.url("/ok"));
    const bad = await webhook(ACME_KEY, r.url("/bad"));
    await webhook(GLOBEX_KEY, r.url("/ok"));
    await t.daemon.start();
    await publish(ACME_KEY, 4);
    // 4 successes on /ok; 4 deliveries x 3 attempts (the first and two retries) on /bad, all 500.
    await waitFor(
      async () => {
        const list = await t!.request("GET", `/v1/deliveries?webhook_id=${bad}&status=exhausted`);
        return list.body.data.length === 4;
      },
      { what: "the failing deliveries to be exhausted" },
    );
    await waitFor(
      async () =>
        (await t!.request("GET", `/v1/deliveries?webhook_id=${ok}&status=success`)).body.data.length === 4,
    );
    expect(r.received("/ok")).toHaveLength(4);
    expect(r.received("/bad")).toHaveLength(12);

    const all = await stats("/v1/stats", ACME_KEY);
    expect(all.totals).toEqual({
      events: 4,
      attempts: 16,
      succeeded: 4,
      failed: 12,
      success_rate: 0.25,
      p50_ms: expect.any(Number),
      p95_ms: expect.any(Number),
    });
    expect(all.totals.p50_ms).toBeGreaterThanOrEqual(0);
    expect(all.totals.p95_ms).toBeGreaterThanOrEqual(all.totals.p50_ms);
    expect(all.series.reduce((n: number, b: Json) => n + b.attempts, 0)).toBe(16);
    expect(all.webhooks).toEqual({ enabled: 2, disabled: 0, failing: 1 });
    expect(all.queue.depth).toBe(0);

    const good = await stats(`/v1/webhooks/${ok}/stats`, ACME_KEY);
    expect([good.totals.events, good.totals.attempts, good.totals.succeeded, good.totals.failed]).toEqual([
      4, 4, 4, 0,
    ]);
    expect(good.totals.success_rate).toBe(1);
    expect(good.webhooks).toEqual({ enabled: 1, disabled: 0, failing: 0 });
    const failing = await stats(`/v1/stats?webhook_id=${bad}`, ACME_KEY);
    expect([
      failing.totals.events,
      failing.totals.attempts,
      failing.totals.succeeded,
      failing.totals.failed,
    ]).toEqual([4, 12, 0, 12]);
    expect(failing.totals.success_rate).toBe(0);
    expect(failing.webhooks).toEqual({ enabled: 1, disabled: 0, failing: 1 });

    // Tenant scope: globex has its webhook and nothing else; the admin sees both tenants.
    const globex = await stats("/v1/stats", GLOBEX_KEY);
    expect(globex.totals).toMatchObject({ events: 0, attempts: 0, success_rate: null });
    expect(globex.webhooks).toEqual({ enabled: 1, disabled: 0, failing: 0 });
    const admin = await stats("/v1/stats");
    expect(admin.totals).toMatchObject({ events: 4, attempts: 16 });
    expect(admin.webhooks).toEqual({ enabled: 3, disabled: 0, failing: 1 });
    expect((await stats("/v1/stats?tenant_id=globex")).totals.attempts).toBe(0);
    expect((await stats("/v1/stats?tenant_id=acme")).totals.attempts).toBe(16);
  });
});

describe("tenant scope", () => {
  test("another tenant's webhook: a 404 on its stats, zeros through ?webhook_id, 403 for ?tenant_id", async () => {
    t = await createTestDaemon({ clock: createManualClock(T0) });
    const theirs = await webhook(ACME_KEY, "http://127.0.0.1:9/a");
    await publish(ACME_KEY, 3);
    const res = await t.request("GET", `/v1/webhooks/${theirs}/stats`, { key: GLOBEX_KEY });
    expect([res.status, res.body.error.code]).toEqual([404, "not_found"]);
    const filtered = await stats(`/v1/stats?webhook_id=${theirs}`, GLOBEX_KEY);
    expect(filtered.totals.events).toBe(0);
    expect(filtered.queue.depth).toBe(0);
    expect(filtered.webhooks).toEqual({ enabled: 0, disabled: 0, failing: 0 });
    expect((await t.request("GET", "/v1/stats?tenant_id=acme", { key: GLOBEX_KEY })).status).toBe(403);
    // The scope is deliveries:read: a reader key may, a portal session with read may.
    expect((await t.request("GET", "/v1/stats", { key: READER_KEY })).status).toBe(200);
    const session = await t.request("POST", "/v1/portal-sessions", {
      key: ACME_KEY,
      body: { capabilities: ["read"] },
    });
    const viaPortal = await stats("/v1/stats", session.body.token);
    expect(viaPortal.totals.events).toBe(3);
  });
});

describe("percentiles", () => {
  test("interpolated inside the histogram bucket that holds the rank; null when empty", () => {
    expect(percentile(new Array(28).fill(0), 0.5)).toBeNull();
    const h = new Array(28).fill(0);
    h[11] = 10; // [70, 100) ms
    expect(percentile(h, 0.5)).toBe(85);
    expect(percentile(h, 1)).toBe(100);
    h[27] = 10; // 60 s and more
    expect(percentile(h, 0.95)).toBe(60_000);
  });
});

describe("OpenAPI", () => {
  test("the stats and portal-session routes are documented with their schemas", async () => {
    t = await createTestDaemon({ clock: createManualClock(T0) });
    const doc = (await t.request("GET", "/openapi.json", { key: null })).body;
    const stats = doc.paths["/v1/stats"].get;
    expect(stats.parameters.map((p: Json) => p.name).sort()).toEqual([
      "bucket",
      "mode",
      "since",
      "tenant_id",
      "until",
      "webhook_id",
    ]);
    const shape = stats.responses["200"].content["application/json"].schema;
    expect(Object.keys(shape.properties)).toEqual([
      "since",
      "until",
      "bucket",
      "series",
      "totals",
      "queue",
      "webhooks",
    ]);
    expect(doc.paths["/v1/webhooks/{id}/stats"].get.responses["200"]).toBeDefined();
    const created = doc.paths["/v1/portal-sessions"].post.responses["201"].content["application/json"].schema;
    expect(Object.keys(created.properties).sort()).toEqual(
      ["capabilities", "expires_at", "id", "mode", "tenant_id", "token", "url"].sort(),
    );
    expect(doc.paths["/v1/portal-sessions"].get).toBeDefined();
    expect(doc.paths["/v1/portal-sessions/{id}"].delete.responses["204"]).toBeDefined();
    expect(doc.paths["/v1/portal-sessions/revoke"].post.security).toContainEqual({
      oauth2: ["portal:write"],
    });
  });
});
