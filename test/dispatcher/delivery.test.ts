// End to end through the real daemon (a short retry schedule) and a real scripted receiver on
// 127.0.0.1: what is sent, how attempts are recorded, retries, auto-disable, isolation, fan-out and
// the address check at delivery time (SPEC §3). Most tests run on the real clock; those about when a
// retry is due run on a manual one, frozen between the test's moves, so their attempt timestamps
// are exact and no assertion depends on how fast the machine is.
import { afterEach, describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import { Webhook } from "standardwebhooks";
import { createHttpClient } from "../../src/dispatcher/http-client.ts";
import { type Clock, createManualClock, type ManualClock, systemClock } from "../../src/runtime/clock.ts";
import { VERSION } from "../../src/version.ts";
import { ACME_KEY, createTestDaemon, GLOBEX_KEY, type TestDaemon } from "../support/daemon.ts";
import { type Receiver, retryAfter, startReceiver } from "../support/receiver.ts";
import { waitFor } from "../support/wait-for.ts";

let t: TestDaemon | undefined;
let r: Receiver | undefined;

afterEach(async () => {
  // The receiver first: it cuts hanging requests, so the daemon's drain does not wait on them.
  await r?.stop();
  await t?.close();
  r = t = undefined;
});

async function setup(yaml = "", schedule = "[50ms, 100ms]", clock: Clock = systemClock) {
  t = await createTestDaemon({
    clock,
    yaml: `delivery:\n  retry_schedule: ${schedule}\n${yaml}\nshutdown_grace: 1s`,
  });
  r = await startReceiver();
  await t.daemon.start();
  return { t, r };
}

// biome-ignore lint/suspicious/noExplicitAny: API bodies are inspected freely
type Json = any;

async function createWebhook(body: Record<string, unknown>, key?: string): Promise<Json> {
  const res = await t!.request("POST", "/v1/webhooks", {
    body: { events: ["*"], ...body },
    ...(key ? { key } : {}),
  });
  expect(res.status).toBe(201);
  return res.body;
}

async function publish(
  type: string,
  data: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
  key?: string,
) {
  const res = await t!.request("POST", "/v1/events", {
    body: { type, data, ...extra },
    ...(key ? { key } : {}),
  });
  expect(res.status).toBe(202);
  return res.body as { id: string; created_at: string; deliveries_count: number };
}

async function deliveriesOf(query: string): Promise<Json[]> {
  const res = await t!.request("GET", `/v1/deliveries?limit=100&${query}`);
  expect(res.status).toBe(200);
  return res.body.data;
}

async function onlyDelivery(eventId: string): Promise<Json> {
  const list = await deliveriesOf(`event_id=${eventId}`);
  expect(list).toHaveLength(1);
  return list[0];
}

/** Waits until the delivery reaches `status` and answers it. */
const waitForStatus = (id: string, status: string): Promise<Json> =>
  waitFor(
    async () => {
      const res = await t!.request("GET", `/v1/deliveries/${id}`);
      return res.body.status === status ? res.body : null;
    },
    { what: `delivery ${id} to be ${status}` },
  );

async function attemptsOf(id: string): Promise<Json[]> {
  const res = await t!.request("GET", `/v1/deliveries/${id}/attempts?limit=100`);
  expect(res.status).toBe(200);
  return res.body.data;
}

const getWebhook = async (id: string) => (await t!.request("GET", `/v1/webhooks/${id}`)).body;

/** Waits until the delivery has `attempts` attempts and is `status`, and answers it. */
const waitForAttempt = (id: string, attempts: number, status: string): Promise<Json> =>
  waitFor(
    async () => {
      const res = await t!.request("GET", `/v1/deliveries/${id}`);
      return res.body.attempts === attempts && res.body.status === status ? res.body : null;
    },
    { what: `delivery ${id} to be ${status} after ${attempts} attempt(s)` },
  );

/**
 * A daemon on a manual clock, frozen unless the test moves it, with a subscription on /probe for
 * `probe.sent` events (see claimJustBefore).
 */
async function setupOnManualClock(schedule: string): Promise<{ clock: ManualClock; r: Receiver }> {
  const clock = createManualClock(Date.now());
  const { r } = await setup("", schedule, clock);
  await createWebhook({ url: r.url("/probe"), events: ["probe.sent"] });
  return { clock, r };
}

/**
 * Moves the clock to 1 ms before `due` and makes the dispatcher claim then: a probe event wakes it,
 * and once the probe has been delivered and every attempt has ended, what that claim took has
 * been sent. A retry due at `due` must not have been among it.
 */
async function claimJustBefore(clock: ManualClock, due: number): Promise<void> {
  clock.set(due - 1);
  const probes = r!.received("/probe").length;
  await publish("probe.sent");
  await r!.waitForRequests(probes + 1, "/probe");
  await t!.daemon.dispatcher.idle();
}

/** A port nothing listens on: bound by the OS, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("the request", () => {
  test("is a POST with the SPEC body and headers, verifiable with the standardwebhooks library", async () => {
    const { r } = await setup();
    const hook = await createWebhook({
      url: r.url("/hooks"),
      headers: { "X-Tenant-Ref": "abc", Authorization: "Bearer rcv" },
    });
    const event = await publish(
      "invoice.paid",
      { amount: 1250, nested: { ok: true } },
      { account_id: "acct_1" },
    );

    const [req] = await r.waitForRequests(1, "/hooks");
    expect(req!.method).toBe("POST");
    expect(JSON.parse(req!.body)).toEqual({
      id: event.id,
      type: "invoice.paid",
      timestamp: event.created_at,
      mode: "live",
      account_id: "acct_1",
      data: { amount: 1250, nested: { ok: true } },
    });
    const h = req!.headers;
    expect(h["content-type"]).toBe("application/json");
    expect(h["user-agent"]).toBe(`hookd/${VERSION}`);
    expect(h["webhook-id"]).toBe(event.id);
    expect(h["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(h["x-tenant-ref"]).toBe("abc");
    expect(h.authorization).toBe("Bearer rcv");

    // Exactly as a receiver would verify it; and a different secret does not.
    expect(new Webhook(hook.secret).verify(req!.body, h)).toMatchObject({ id: event.id });
    const other = `whsec_${Buffer.alloc(32, 1).toString("base64")}`;
    expect(() => new Webhook(other).verify(req!.body, h)).toThrow();

    const delivery = await waitForStatus((await onlyDelivery(event.id)).id, "success");
    expect(delivery).toMatchObject({ attempts: 1, response_status_code: 200, next_retry_at: null });
    expect(delivery.payload).toBe(req!.body);
    expect(delivery.signature).toBe(h["webhook-signature"]);
    // The signed timestamp is the attempt's start, in seconds.
    const [attempt] = await attemptsOf(delivery.id);
    expect(h["webhook-timestamp"]).toBe(String(Math.floor(Date.parse(attempt.started_at) / 1000)));
  });

  test("during a rotation grace period it carries both signatures; each secret verifies", async () => {
    const { t, r } = await setup();
    const hook = await createWebhook({ url: r.url("/hooks") });
    const rotated = await t.request("POST", `/v1/webhooks/${hook.id}/rotate-secret`, {
      body: { grace_period_seconds: 3600 },
    });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(hook.secret);
    await publish("invoice.paid", { n: 1 });

    const [req] = await r.waitForRequests(1, "/hooks");
    expect(req!.headers["webhook-signature"]!.split(" ")).toHaveLength(2);
    expect(() => new Webhook(rotated.body.secret).verify(req!.body, req!.headers)).not.toThrow();
    expect(() => new Webhook(hook.secret).verify(req!.body, req!.headers)).not.toThrow();
  });

  test("after a rotation without grace only the new secret verifies", async () => {
    const { t, r } = await setup();
    const hook = await createWebhook({ url: r.url("/hooks") });
    const rotated = await t.request("POST", `/v1/webhooks/${hook.id}/rotate-secret`, {
      body: { grace_period_seconds: 0 },
    });
    expect(rotated.status).toBe(200);
    await publish("invoice.paid", { n: 1 });

    const [req] = await r.waitForRequests(1, "/hooks");
    expect(req!.headers["webhook-signature"]!.split(" ")).toHaveLength(1);
    expect(() => new Webhook(rotated.body.secret).verify(req!.body, req!.headers)).not.toThrow();
    expect(() => new Webhook(hook.secret).verify(req!.body, req!.headers)).toThrow();
  });
});

describe("retries and attempts", () => {
  test("500 then 200: retrying, then success, with both attempts recorded and the same webhook-id", async () => {
    const { clock, r } = await setupOnManualClock("[400ms]");
    const start = clock.now();
    r.script(
      "/hooks",
      { status: 500, headers: { "x-reason": "db down" }, body: "boom" },
      { status: 200, body: "thanks" },
    );
    await createWebhook({ url: r.url("/hooks"), events: ["invoice.paid"] });
    const event = await publish("invoice.paid");
    const { id } = await onlyDelivery(event.id);

    const retrying = await waitForStatus(id, "retrying");
    expect(retrying).toMatchObject({ attempts: 1, response_status_code: 500 });
    // The clock stood still through the attempt: the wait is the schedule's 400ms with its ±20% jitter.
    expect(Date.parse(retrying.last_attempt_at)).toBe(start);
    const due = Date.parse(retrying.next_retry_at);
    expect(due - start).toBeGreaterThanOrEqual(400 * 0.8);
    expect(due - start).toBeLessThanOrEqual(400 * 1.2);

    clock.set(due);
    const done = await waitForStatus(id, "success");
    expect(done).toMatchObject({ attempts: 2, response_status_code: 200, next_retry_at: null });
    const requests = r.received("/hooks");
    expect(requests).toHaveLength(2);
    expect(requests.map((q) => q.headers["webhook-id"])).toEqual([event.id, event.id]);
    expect(requests[0]!.body).toBe(requests[1]!.body);

    const attempts = await attemptsOf(id);
    expect(attempts).toHaveLength(2);
    expect(attempts[0]).toMatchObject({
      response_status_code: 500,
      response_body: "boom",
      error: "http_status",
    });
    expect(attempts[0].response_headers["x-reason"]).toBe("db down");
    expect(attempts[1]).toMatchObject({ response_status_code: 200, response_body: "thanks", error: null });
    expect(attempts.map((a) => Date.parse(a.started_at))).toEqual([start, due]);
    expect(attempts[0].duration_ms).toBeGreaterThanOrEqual(0);
  });

  test("a schedule used up leaves the delivery exhausted", async () => {
    const { r } = await setup();
    r.always("/hooks", { status: 503, body: "down" });
    await createWebhook({ url: r.url("/hooks") });
    const event = await publish("invoice.paid");
    const { id } = await onlyDelivery(event.id);

    const done = await waitForStatus(id, "exhausted");
    expect(done).toMatchObject({ attempts: 3, response_status_code: 503, next_retry_at: null });
    expect((await attemptsOf(id)).map((a) => a.response_status_code)).toEqual([503, 503, 503]);
    expect(r.received("/hooks")).toHaveLength(3);
  });

  test("each retry goes out once it is due by the clock, not before, with nothing else waking the loop", async () => {
    const { clock, r } = await setupOnManualClock("[50ms, 50ms, 50ms]");
    const start = clock.now();
    r.always("/hooks", { status: 500 });
    await createWebhook({ url: r.url("/hooks"), events: ["invoice.paid"] });
    const event = await publish("invoice.paid");
    const { id } = await onlyDelivery(event.id);

    const dues: number[] = [];
    for (let attempts = 1; attempts <= 3; attempts++) {
      const retrying = await waitForAttempt(id, attempts, "retrying");
      const due = Date.parse(retrying.next_retry_at);
      // The clock stood still since the attempt: the wait is the schedule's, 50ms ± 20%.
      expect(due - Date.parse(retrying.last_attempt_at)).toBeGreaterThanOrEqual(40);
      expect(due - Date.parse(retrying.last_attempt_at)).toBeLessThanOrEqual(60);
      dues.push(due);
      await claimJustBefore(clock, due);
      expect(r.received("/hooks")).toHaveLength(attempts);
      // Due now: the dispatcher's own timer finds it; no event, no wake-up.
      clock.set(due);
      await r.waitForRequests(attempts + 1, "/hooks");
    }

    await waitForStatus(id, "exhausted");
    const attempts = await attemptsOf(id);
    expect(attempts.map((a) => Date.parse(a.started_at))).toEqual([start, ...dues]);
    expect(r.received("/hooks")).toHaveLength(4);
  });

  test("410 fails the delivery, disables the subscription (gone) and tells the tenant's webhook.disabled subscriber", async () => {
    const { r } = await setup();
    r.always("/gone", { status: 410 });
    const hook = await createWebhook({ url: r.url("/gone"), events: ["invoice.*"] }, ACME_KEY);
    await createWebhook({ url: r.url("/ops"), events: ["webhook.disabled"] }, ACME_KEY);
    await createWebhook({ url: r.url("/other-tenant"), events: ["webhook.disabled"] }, GLOBEX_KEY);
    const event = await publish("invoice.paid", {}, {}, ACME_KEY);
    const { id } = await onlyDelivery(event.id);

    const failed = await waitForStatus(id, "failed");
    expect(failed).toMatchObject({ attempts: 1, response_status_code: 410 });
    expect(await getWebhook(hook.id)).toMatchObject({ enabled: false, disabled_reason: "gone" });

    const [notice] = await r.waitForRequests(1, "/ops");
    expect(JSON.parse(notice!.body)).toMatchObject({
      type: "webhook.disabled",
      data: { webhook_id: hook.id, url: hook.url, reason: "gone" },
    });
    await t!.daemon.dispatcher.idle();
    expect(r.received("/gone")).toHaveLength(1);
    expect(r.received("/other-tenant")).toHaveLength(0);
  });

  test("429 with Retry-After: 1 waits a second although the schedule says 50ms", async () => {
    const { clock, r } = await setupOnManualClock("[50ms, 50ms, 2s]");
    const start = clock.now();
    r.script("/hooks", retryAfter(429, "1"), { status: 200 });
    await createWebhook({ url: r.url("/hooks"), events: ["invoice.paid"] });
    const event = await publish("invoice.paid");
    const { id } = await onlyDelivery(event.id);

    const retrying = await waitForStatus(id, "retrying");
    expect(Date.parse(retrying.next_retry_at)).toBe(start + 1000);
    // Where the schedule alone would have sent it (50ms ± 20%), and up to a millisecond before the
    // second is up, it stays queued.
    await claimJustBefore(clock, start + 61);
    await claimJustBefore(clock, start + 1000);
    expect(r.received("/hooks")).toHaveLength(1);

    clock.set(start + 1000);
    await waitForStatus(id, "success");
    expect((await attemptsOf(id)).map((a) => Date.parse(a.started_at))).toEqual([start, start + 1000]);
    expect(r.received("/hooks")).toHaveLength(2);
  });

  test("a 302 is a failed attempt (redirect) and is not followed", async () => {
    const { r } = await setup("", "[50ms]");
    r.always("/hooks", { kind: "redirect", location: r.url("/elsewhere") });
    await createWebhook({ url: r.url("/hooks") });
    const event = await publish("invoice.paid");
    const { id } = await onlyDelivery(event.id);

    // Whichever way it ends: followed as a success, it fails here with what it was.
    const ended = await waitFor(
      async () => {
        const res = await t!.request("GET", `/v1/deliveries/${id}`);
        return ["success", "failed", "exhausted"].includes(res.body.status) ? res.body : null;
      },
      { what: `delivery ${id} to end` },
    );
    expect(ended.status).toBe("exhausted");
    const attempts = await attemptsOf(id);
    expect(attempts.map((a) => [a.response_status_code, a.error])).toEqual([
      [302, "redirect"],
      [302, "redirect"],
    ]);
    expect(attempts[0].response_headers.location).toBe(r.url("/elsewhere"));
    expect(r.received("/elsewhere")).toHaveLength(0);
  });

  test("a receiver that never answers within timeout_seconds is a timeout, and hookd hangs up", async () => {
    // The manual clock holds the retry back, so the one hanging request is the only one.
    const { r } = await setupOnManualClock("[50ms]");
    r.always("/hooks", { kind: "hang" });
    await createWebhook({ url: r.url("/hooks"), events: ["invoice.paid"], timeout_seconds: 1 });
    const event = await publish("invoice.paid");
    const { id } = await onlyDelivery(event.id);

    const retrying = await waitForStatus(id, "retrying");
    expect(retrying.response_status_code).toBeNull();
    const [attempt] = await attemptsOf(id);
    expect(attempt).toMatchObject({ error: "timeout", response_status_code: null, response_body: null });
    expect(attempt.duration_ms).toBeGreaterThanOrEqual(990);
    // The receiver never answered: the request was closed by hookd, not left open.
    await waitFor(() => r.open() === 0, { what: "hookd to close the timed-out request" });
    expect(r.received("/hooks")).toHaveLength(1);
  });

  test("a closed port is connection_refused", async () => {
    await setup("", "[50ms]");
    const port = await closedPort();
    await createWebhook({ url: `http://127.0.0.1:${port}/hooks` });
    const event = await publish("invoice.paid");
    const { id } = await onlyDelivery(event.id);

    await waitForStatus(id, "exhausted");
    const attempts = await attemptsOf(id);
    expect(attempts.map((a) => a.error)).toEqual(["connection_refused", "connection_refused"]);
  });

  test("a connection cut before any answer is connection_reset", async () => {
    const { r } = await setup("", "[50ms]");
    r.always("/hooks", { kind: "reset", beforeHeaders: true });
    await createWebhook({ url: r.url("/hooks") });
    const event = await publish("invoice.paid");
    const { id } = await onlyDelivery(event.id);

    await waitForStatus(id, "exhausted");
    expect((await attemptsOf(id)).map((a) => a.error)).toEqual(["connection_reset", "connection_reset"]);
  });

  test("a 2xx whose body drips past the deadline counts: the status came in time; the body so far is kept", async () => {
    const { r } = await setup();
    r.always("/hooks", { kind: "slowBody", chunk: "tick ", intervalMs: 200 });
    await createWebhook({ url: r.url("/hooks"), timeout_seconds: 1 });
    const event = await publish("invoice.paid");
    const { id } = await onlyDelivery(event.id);

    await waitForStatus(id, "success");
    const [attempt] = await attemptsOf(id);
    expect(attempt).toMatchObject({ response_status_code: 200, error: null });
    expect(attempt.response_body).toMatch(/^(tick )+$/);
    expect(attempt.duration_ms).toBeGreaterThanOrEqual(990);
  });

  test("a response body over 4 KiB is stored cut to its first 4 KiB", async () => {
    const { r } = await setup("", "[50ms]");
    const body = "0123456789abcdef".repeat(1024); // 16 KiB
    r.script("/hooks", { status: 500, body }, { status: 200, body: `${"y".repeat(4096)}z` });
    await createWebhook({ url: r.url("/hooks") });
    const event = await publish("invoice.paid");
    const { id } = await onlyDelivery(event.id);

    await waitForStatus(id, "success");
    const attempts = await attemptsOf(id);
    expect(attempts[0].response_body).toBe(body.slice(0, 4096));
    expect(attempts[1].response_body).toBe("y".repeat(4096));
  });
});

describe("auto-disable", () => {
  test("a failing endpoint is disabled (failing) and its queued deliveries fail", async () => {
    const { r } = await setup(
      "  disable_after_failures: 3\n  disable_after: 0s",
      "[50ms, 50ms, 50ms, 50ms, 50ms, 50ms]",
    );
    r.always("/bad", { status: 500 });
    const hook = await createWebhook({ url: r.url("/bad"), events: ["invoice.*"], max_in_flight: 1 });
    const watcher = await createWebhook({ url: r.url("/ops"), events: ["webhook.disabled"] });
    const events = [];
    for (let i = 0; i < 4; i++) events.push(await publish("invoice.paid", { i }));

    const [notice] = await r.waitForRequests(1, "/ops");
    expect(JSON.parse(notice!.body).data).toEqual({ webhook_id: hook.id, url: hook.url, reason: "failing" });
    expect(await getWebhook(hook.id)).toMatchObject({ enabled: false, disabled_reason: "failing" });
    expect(await getWebhook(watcher.id)).toMatchObject({ enabled: true });
    await t!.daemon.dispatcher.idle();
    const statuses = (await deliveriesOf(`webhook_id=${hook.id}`)).map((d) => d.status);
    expect(statuses).toEqual(["failed", "failed", "failed", "failed"]);
    // Three failures disable it; one more attempt may already be on its way while the third settles.
    expect(r.received("/bad").length).toBeGreaterThanOrEqual(3);
    expect(r.received("/bad").length).toBeLessThanOrEqual(4);
  });
});

describe("connections", () => {
  test("deliveries to one origin reuse a kept-alive connection", async () => {
    const { r } = await setup();
    await createWebhook({ url: r.url("/hooks"), max_in_flight: 1 });
    for (let i = 0; i < 5; i++) {
      await publish("invoice.paid", { i });
      await r.waitForRequests(i + 1, "/hooks");
    }
    expect(new Set(r.received("/hooks").map((q) => q.remotePort)).size).toBe(1);
  });
});

describe("isolation", () => {
  test("a hanging endpoint at its cap does not hold back a healthy one", async () => {
    const { r } = await setup("  max_in_flight: 4");
    r.always("/hang", { kind: "hang" });
    const hanging = await createWebhook({ url: r.url("/hang"), max_in_flight: 2, timeout_seconds: 30 });
    const healthy = await createWebhook({ url: r.url("/ok") });
    const count = 12;
    for (let i = 0; i < count; i++) await publish("invoice.paid", { i });

    // The hanging attempts' 30s timeout is longer than this wait's bound: they stay in flight.
    await waitFor(
      async () => (await deliveriesOf(`webhook_id=${healthy.id}&status=success`)).length === count,
      { what: "every healthy delivery to succeed" },
    );
    expect(r.received("/ok")).toHaveLength(count);
    expect(r.received("/hang")).toHaveLength(2);
    expect(r.open()).toBe(2);
    expect(t!.daemon.dispatcher.inFlight()).toBe(2);
    const stuck = await deliveriesOf(`webhook_id=${hanging.id}`);
    expect(stuck.map((d) => d.status)).toEqual(new Array(count).fill("pending"));
  });
});

describe("the global cap", () => {
  test("max_in_flight holds for deliveries an ingest hands to the dispatcher as for claimed ones", async () => {
    const { r } = await setup("  max_in_flight: 3");
    r.always("/hang", { kind: "hang" });
    for (let i = 0; i < 4; i++) await createWebhook({ url: r.url("/hang"), timeout_seconds: 30 });
    // Each event fans out to four webhooks with free places; the dispatcher has three in all.
    for (let i = 0; i < 6; i++) {
      await publish("invoice.paid", { i });
      expect(t!.daemon.dispatcher.inFlight()).toBeLessThanOrEqual(3);
    }
    await r.waitForRequests(3, "/hang");
    expect(t!.daemon.dispatcher.inFlight()).toBe(3);
    expect(r.open()).toBe(3);
  });

  test("retries never take the share kept for first attempts: a fresh event goes out beside hanging retries", async () => {
    // max_in_flight 4 keeps one place (a quarter, at least one) for first attempts.
    const { r } = await setup("  max_in_flight: 4");
    r.script("/flaky", ...Array.from({ length: 6 }, () => ({ status: 500 })));
    r.always("/flaky", { kind: "hang" });
    await createWebhook({ url: r.url("/flaky"), events: ["a.*"], max_in_flight: 4, timeout_seconds: 30 });
    const healthy = await createWebhook({ url: r.url("/ok"), events: ["b.*"] });
    for (let i = 0; i < 6; i++) await publish("a.failed", { i });
    // Six first attempts failed; their retries are due 50 ms later and hang: three at most.
    await r.waitForRequests(9, "/flaky");
    expect(r.open()).toBe(3);
    const fresh = await publish("b.fresh");
    await waitForStatus((await onlyDelivery(fresh.id)).id, "success");
    expect(r.received("/ok")).toHaveLength(1);
    expect(r.open()).toBe(3);
    expect((await deliveriesOf(`webhook_id=${healthy.id}`)).map((d) => d.status)).toEqual(["success"]);
  });
});

describe("fan-out", () => {
  test("patterns, exact types and account filters pick the subscribers; disabled ones and other tenants get nothing", async () => {
    const { r } = await setup();
    await createWebhook({ url: r.url("/all"), events: ["*"] }, ACME_KEY);
    await createWebhook({ url: r.url("/invoices"), events: ["invoice.*"] }, ACME_KEY);
    await createWebhook({ url: r.url("/paid"), events: ["invoice.paid"] }, ACME_KEY);
    await createWebhook(
      { url: r.url("/customers"), events: ["customer.created", "invoice.voided"] },
      ACME_KEY,
    );
    await createWebhook({ url: r.url("/acct1"), events: ["*"], account_ids: ["acct_1"] }, ACME_KEY);
    await createWebhook({ url: r.url("/disabled"), events: ["*"], enabled: false }, ACME_KEY);
    await createWebhook({ url: r.url("/globex"), events: ["*"] }, GLOBEX_KEY);

    const published = [
      await publish("invoice.paid", {}, { account_id: "acct_1" }, ACME_KEY),
      await publish("invoice.paid", {}, { account_id: "acct_2" }, ACME_KEY),
      await publish("customer.created", {}, {}, ACME_KEY),
      await publish("invoice.voided", {}, {}, ACME_KEY),
    ];
    expect(published.map((e) => e.deliveries_count)).toEqual([4, 3, 2, 3]);
    const total = 4 + 3 + 2 + 3;
    await waitFor(async () => (await deliveriesOf("status=success")).length === total, {
      what: "all delivered",
    });
    await t!.daemon.dispatcher.idle();

    const typesAt = (path: string) => r.received(path).map((q) => JSON.parse(q.body).type);
    expect(typesAt("/all").sort()).toEqual([
      "customer.created",
      "invoice.paid",
      "invoice.paid",
      "invoice.voided",
    ]);
    expect(typesAt("/invoices").sort()).toEqual(["invoice.paid", "invoice.paid", "invoice.voided"]);
    expect(typesAt("/paid")).toEqual(["invoice.paid", "invoice.paid"]);
    expect(typesAt("/customers").sort()).toEqual(["customer.created", "invoice.voided"]);
    expect(r.received("/acct1").map((q) => JSON.parse(q.body).id)).toEqual([published[0]!.id]);
    expect(r.received("/disabled")).toHaveLength(0);
    expect(r.received("/globex")).toHaveLength(0);
    expect(r.requests).toHaveLength(total);
  });

  test("deleting a subscription cancels its queued deliveries, even the one in flight", async () => {
    const { t, r } = await setup();
    r.always("/hang", { kind: "hang" });
    const hook = await createWebhook({ url: r.url("/hang"), max_in_flight: 1 });
    for (let i = 0; i < 3; i++) await publish("invoice.paid", { i });
    await r.waitForRequests(1, "/hang");

    expect((await t.request("DELETE", `/v1/webhooks/${hook.id}`)).status).toBe(204);
    const cancelled = async () => (await deliveriesOf(`webhook_id=${hook.id}`)).map((d) => d.status);
    expect(await cancelled()).toEqual(["cancelled", "cancelled", "cancelled"]);

    // The hanging attempt ends now; its late result must not overwrite the cancellation.
    await r.stop();
    await waitFor(() => t.daemon.dispatcher.inFlight() === 0, { what: "the hanging attempt to end" });
    await t.daemon.dispatcher.idle();
    expect(await cancelled()).toEqual(["cancelled", "cancelled", "cancelled"]);
    expect(r.received("/hang")).toHaveLength(1);
  });
});

describe("SSRF at delivery time", () => {
  test("a subscription that points at loopback is refused before any connection: blocked_address, failed", async () => {
    const { t, r } = await setup("  allow_private_networks: false");
    const refused = await t.request("POST", "/v1/webhooks", {
      body: { url: r.url("/hooks"), events: ["*"] },
    });
    expect(refused.status).toBe(422);
    // It got in somehow (created while allowed, config changed since): insert it under the API.
    const now = Date.now();
    await t.daemon.store.insertWebhook({
      id: "wh_01JZZZZZZZZZZZZZZZZZZZZZZZ",
      tenantId: "default",
      name: "loopback",
      description: null,
      url: r.url("/hooks"),
      events: ["*"],
      accountIds: null,
      enabled: true,
      disabledReason: null,
      timeoutSeconds: 5,
      headers: {},
      metadata: {},
      maxInFlight: 8,
      secret: `whsec_${Buffer.alloc(32, 3).toString("base64")}`,
      createdAt: now,
    });
    const event = await publish("invoice.paid");
    const { id } = await onlyDelivery(event.id);

    const failed = await waitForStatus(id, "failed");
    expect(failed.attempts).toBe(1);
    expect((await attemptsOf(id)).map((a) => [a.error, a.response_status_code])).toEqual([
      ["blocked_address", null],
    ]);
    await t.daemon.dispatcher.idle();
    expect(r.requests).toHaveLength(0);
  });

  test("allowed_cidrs opens a single range while private networks stay closed", async () => {
    const { r } = await setup("  allow_private_networks: false\n  allowed_cidrs: [127.0.0.1/32]");
    await createWebhook({ url: r.url("/hooks") });
    const event = await publish("invoice.paid");
    await waitForStatus((await onlyDelivery(event.id)).id, "success");
    expect(r.received("/hooks")).toHaveLength(1);
  });

  test("a host name that resolves to loopback is refused in the lookup, before connecting", async () => {
    r = await startReceiver();
    const resolved: string[] = [];
    const client = createHttpClient({
      policy: { allowPrivateNetworks: false, allowedCidrs: [] },
      userAgent: "test",
      resolve: async (hostname) => {
        resolved.push(hostname);
        return [{ address: "127.0.0.1", family: 4 }];
      },
    });
    try {
      const response = await client.send({
        url: `http://rebind.example:${r.port}/hooks`,
        headers: {},
        body: "{}",
        timeoutMs: 2000,
      });
      expect(response.error).toBe("blocked_address");
      expect(resolved).toEqual(["rebind.example"]);
      expect(r.requests).toHaveLength(0);
    } finally {
      client.close();
    }
  });
});
