// Token buckets per API key and route class (SPEC §2 Rate limiting), on the manual clock.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createManualClock, type ManualClock } from "../../src/runtime/clock.ts";
import {
  ACME_KEY,
  ADMIN_KEY,
  createTestDaemon,
  READER_KEY,
  type TestDaemon,
  type TestResponse,
} from "../support/daemon.ts";

let t: TestDaemon;
let clock: ManualClock;
beforeEach(async () => {
  clock = createManualClock(Date.UTC(2026, 2, 1));
  t = await createTestDaemon({ clock, yaml: "rate_limits: {read: 3, write: 2, ingest: 5}" });
});
afterEach(async () => {
  await t.close();
});

const valid = { url: "https://example.com/hooks", events: ["invoice.paid"] };
const read = (key = ADMIN_KEY) => t.request("GET", "/v1/webhooks", { key });
const write = (key = ADMIN_KEY) => t.request("POST", "/v1/webhooks", { key, body: valid });

function limitHeaders(res: TestResponse) {
  return {
    limit: res.headers.get("ratelimit-limit"),
    remaining: res.headers.get("ratelimit-remaining"),
    reset: res.headers.get("ratelimit-reset"),
  };
}

function expectRefused(res: TestResponse, retryAfter: number): void {
  expect(res.status).toBe(429);
  expect(res.body).toEqual({ error: { code: "rate_limited", message: expect.any(String) } });
  expect(res.headers.get("retry-after")).toBe(String(retryAfter));
}

describe("token bucket", () => {
  test("the 4th read in the same instant is 429 with Retry-After and RateLimit headers", async () => {
    // 3 a minute: one token every 20 s; Reset is when the bucket is full again.
    const seen = [];
    for (let i = 0; i < 3; i++) {
      const res = await read();
      expect(res.status).toBe(200);
      expect(res.headers.get("retry-after")).toBeNull();
      seen.push(limitHeaders(res));
    }
    expect(seen).toEqual([
      { limit: "3", remaining: "2", reset: "20" },
      { limit: "3", remaining: "1", reset: "40" },
      { limit: "3", remaining: "0", reset: "60" },
    ]);
    const refused = await read();
    expectRefused(refused, 20);
    expect(limitHeaders(refused)).toEqual({ limit: "3", remaining: "0", reset: "60" });
    // A refused request takes no token: still refused, still 20 s away.
    expectRefused(await read(), 20);
  });

  test("advancing the clock refills tokens at the configured rate", async () => {
    for (let i = 0; i < 3; i++) expect((await read()).status).toBe(200);
    clock.advance(19_999);
    expectRefused(await read(), 1);
    clock.advance(1);
    const refilled = await read();
    expect(refilled.status).toBe(200);
    expect(limitHeaders(refilled)).toEqual({ limit: "3", remaining: "0", reset: "60" });
    expectRefused(await read(), 20);

    // Ten minutes idle refill the bucket to its size, not beyond.
    clock.advance(600_000);
    for (let i = 0; i < 3; i++) expect((await read()).status).toBe(200);
    expectRefused(await read(), 20);
  });

  test("route classes are independent", async () => {
    for (let i = 0; i < 3; i++) expect((await read()).status).toBe(200);
    expect((await read()).status).toBe(429);

    const first = await write();
    expect(first.status).toBe(201);
    expect(limitHeaders(first)).toEqual({ limit: "2", remaining: "1", reset: "30" });
    expect((await write()).status).toBe(201);
    const refused = await write();
    expectRefused(refused, 30);
    expect(limitHeaders(refused)).toEqual({ limit: "2", remaining: "0", reset: "60" });

    // Every read route shares the read bucket: event types too.
    expect((await t.request("GET", "/v1/event-types")).status).toBe(429);
    const patch = await t.request("PATCH", `/v1/webhooks/${first.body.id}`, { body: { name: "x" } });
    expect(patch.status).toBe(429);
  });

  test("keys are independent", async () => {
    for (let i = 0; i < 3; i++) expect((await read(ADMIN_KEY)).status).toBe(200);
    expect((await read(ADMIN_KEY)).status).toBe(429);
    for (let i = 0; i < 3; i++) expect((await read(READER_KEY)).status).toBe(200);
    expect((await read(READER_KEY)).status).toBe(429);
    const acme = await read(ACME_KEY);
    expect(acme.status).toBe(200);
    expect(limitHeaders(acme).remaining).toBe("2");
  });

  test("unauthenticated requests are 401 and take no token; unlimited routes carry no headers", async () => {
    for (let i = 0; i < 10; i++) {
      const res = await t.request("GET", "/v1/webhooks", { key: i % 2 ? null : "not-a-configured-key" });
      expect(res.status).toBe(401);
      expect(res.headers.get("ratelimit-limit")).toBeNull();
    }
    for (let i = 0; i < 3; i++) expect((await read()).status).toBe(200);
    expect((await read()).status).toBe(429);
    // With the bucket empty, a request without a key is still told it is unauthenticated.
    expect((await t.request("GET", "/v1/webhooks", { key: null })).status).toBe(401);
    const health = await t.request("GET", "/healthz", { key: null });
    expect(health.status).toBe(200);
    expect(health.headers.get("ratelimit-limit")).toBeNull();
  });
});
