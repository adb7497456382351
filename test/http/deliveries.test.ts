// /v1/deliveries and the delivery extras of /v1/webhooks (SPEC §2 Deliveries, Webhooks), retention
// (§3) and /metrics (§5). Most tests keep the dispatcher stopped on a manual clock and settle
// deliveries through the store as the dispatcher would; the rest run it against a real receiver.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { ConfigError } from "../../src/config/load.ts";
import { createManualClock, type ManualClock, systemClock, toIso } from "../../src/runtime/clock.ts";
import type { ClaimedDelivery, Settlement, TableName } from "../../src/store/store.ts";
import { ACME_KEY, createTestDaemon, GLOBEX_KEY, type TestDaemon } from "../support/daemon.ts";
import { exportAll } from "../support/hookd-db.ts";
import { waitFor } from "../support/wait-for.ts";

let t: TestDaemon;
let clock: ManualClock;

async function open(yaml?: string): Promise<void> {
  clock = createManualClock(Date.UTC(2026, 0, 1));
  t = await createTestDaemon({ clock, ...(yaml ? { yaml } : {}) });
}

afterEach(async () => {
  await t.close();
});

async function webhook(events: string[] = ["*"], key?: string, url = "https://example.com/hooks") {
  const res = await t.request("POST", "/v1/webhooks", { body: { url, events }, ...(key ? { key } : {}) });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function publish(type = "a.b", options: { key?: string; data?: object; idempotencyKey?: string } = {}) {
  const res = await t.request("POST", "/v1/events", {
    body: { type, data: options.data ?? {} },
    ...(options.key ? { key: options.key } : {}),
    ...(options.idempotencyKey ? { headers: { "idempotency-key": options.idempotencyKey } } : {}),
  });
  expect(res.status).toBe(202);
  return res.body.id as string;
}

async function deliveriesOf(query: string, key?: string): Promise<{ id: string; status: string }[]> {
  const res = await t.request("GET", `/v1/deliveries?limit=100&${query}`, key ? { key } : {});
  expect(res.status).toBe(200);
  expect(res.body.has_next_page).toBe(false);
  return res.body.data;
}

const ids = (rows: { id: string }[]) => rows.map((r) => r.id);

let attemptSeq = 0;
/** Claims every due delivery and settles each as `decide` says (null: leave it leased), as the dispatcher would. */
async function settleDue(
  decide: (d: ClaimedDelivery) => Settlement | null,
  health = { disableAfterFailures: 1000, disableAfterMs: 365 * 86_400_000 },
): Promise<number> {
  let settled = 0;
  for (let round = 0; round < 100; round++) {
    const claimed = await t.daemon.store.claimDue({
      now: clock.now(),
      owner: `test.${++attemptSeq}`,
      leaseMs: 60_000,
      limit: 1000,
      retryLimit: 1000,
    });
    if (claimed.length === 0) return settled;
    const results = claimed.flatMap((d) => {
      const settlement = decide(d);
      if (settlement === null) return [];
      const ok = settlement.action === "succeed";
      return [
        {
          deliveryId: d.id,
          leaseOwner: d.leaseOwner,
          webhookId: d.webhook.id,
          signature: `v1,sig${attemptSeq}`,
          settlement,
          attempt: {
            id: `atm_${String(++attemptSeq).padStart(8, "0")}`,
            startedAt: clock.now(),
            durationMs: 7,
            responseStatusCode: ok ? 200 : settlement.action === "fail" ? 410 : 503,
            responseHeaders: { "content-type": "text/plain" },
            responseBody: ok ? "thanks" : "nope",
            error: ok ? null : ("http_status" as const),
          },
        },
      ];
    });
    await t.daemon.store.settle(results, clock.now(), health, () => `evt_internal_${++attemptSeq}`);
    settled += results.length;
  }
  throw new Error("deliveries kept coming due");
}

const byEvent =
  (table: Record<string, Settlement | null>) =>
  (d: ClaimedDelivery): Settlement | null => {
    const settlement = table[d.eventId];
    if (settlement === undefined) throw new Error(`unexpected delivery of ${d.eventId}`);
    return settlement;
  };

const SUCCEED: Settlement = { action: "succeed" };
const EXHAUST: Settlement = { action: "exhaust" };
/** Final without using up the schedule, and without disabling the subscription (as `gone` would). */
const FAIL: Settlement = { action: "fail", reason: "blocked_address" };

describe("with the dispatcher stopped (manual clock)", () => {
  beforeEach(async () => {
    await open();
  });

  test("GET /v1/deliveries filters by status, event_id and webhook_id, newest first", async () => {
    const all = await webhook(["*"]);
    const some = await webhook(["a.*"]);
    const e1 = await publish("a.x");
    clock.advance(1000);
    const e2 = await publish("b.y");
    await settleDue((d) => (d.eventId === e1 && d.webhook.id === all ? SUCCEED : null));

    const listed = await deliveriesOf("");
    expect(listed.length).toBe(3);
    expect(listed.map((d) => (d as unknown as { event_id: string }).event_id)).toEqual([e2, e1, e1]);
    expect((await deliveriesOf("status=success")).map((d) => d.status)).toEqual(["success"]);
    expect((await deliveriesOf(`event_id=${e1}`)).length).toBe(2);
    expect((await deliveriesOf(`webhook_id=${some}`)).length).toBe(1);
    expect((await deliveriesOf(`webhook_id=${all}&status=pending`)).length).toBe(1);
    expect(await deliveriesOf(`webhook_id=${some}&event_id=${e2}`)).toEqual([]);
    const bad = await t.request("GET", "/v1/deliveries?status=lost");
    expect(bad.status).toBe(422);
    expect(bad.body.error.details[0].path).toBe("status");
  });

  test("deliveries are tenant-scoped: another tenant's is a 404", async () => {
    await webhook(["*"], ACME_KEY);
    await publish("a.b", { key: ACME_KEY });
    const [delivery] = await deliveriesOf("", ACME_KEY);
    expect(await deliveriesOf("", GLOBEX_KEY)).toEqual([]);
    for (const path of [`/v1/deliveries/${delivery!.id}`, `/v1/deliveries/${delivery!.id}/attempts`]) {
      expect((await t.request("GET", path, { key: GLOBEX_KEY })).status).toBe(404);
      expect((await t.request("GET", path, { key: ACME_KEY })).status).toBe(200);
    }
    expect(
      (await t.request("POST", `/v1/deliveries/${delivery!.id}/retry`, { key: GLOBEX_KEY })).status,
    ).toBe(404);
    expect((await t.request("GET", "/v1/deliveries/dlv_nope")).status).toBe(404);
  });

  test("GET /v1/deliveries/{id} has every field; payload is the exact body", async () => {
    const wh = await webhook(["*"]);
    const res = await t.request("POST", "/v1/events", {
      body: { type: "invoice.paid", data: { b: 1, a: [true, null], é: "ü" }, account_id: "acct_1" },
    });
    const [listed] = await deliveriesOf(`event_id=${res.body.id}`);
    const created = clock.now();
    const fresh = await t.request("GET", `/v1/deliveries/${listed!.id}`);
    expect(fresh.body).toEqual({
      id: expect.stringMatching(/^dlv_[0-9A-Z]{26}$/),
      tenant_id: "default",
      mode: "live",
      event_id: res.body.id,
      webhook_id: wh,
      event_type: "invoice.paid",
      status: "pending",
      attempts: 0,
      response_status_code: null,
      last_attempt_at: null,
      next_retry_at: toIso(created),
      created_at: toIso(created),
      payload: `{"id":"${res.body.id}","type":"invoice.paid","timestamp":"${toIso(created)}","mode":"live","account_id":"acct_1","data":{"b":1,"a":[true,null],"é":"ü"}}`,
      signature: null,
    });

    clock.advance(2000);
    const retryAt = clock.now() + 30_000;
    await settleDue(() => ({ action: "retry", at: retryAt }));
    const tried = await t.request("GET", `/v1/deliveries/${listed!.id}`);
    expect(tried.body).toMatchObject({
      status: "retrying",
      attempts: 1,
      response_status_code: 503,
      last_attempt_at: toIso(clock.now()),
      next_retry_at: toIso(retryAt),
      payload: fresh.body.payload,
      signature: expect.stringMatching(/^v1,sig/),
    });
  });

  test("attempts are listed oldest first, paginated both ways", async () => {
    await webhook();
    const event = await publish();
    const attemptTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      attemptTimes.push(clock.now());
      await settleDue(() => ({ action: "retry", at: clock.now() + 1000 }));
      clock.advance(1000);
    }
    const [delivery] = await deliveriesOf(`event_id=${event}`);
    const page1 = await t.request("GET", `/v1/deliveries/${delivery!.id}/attempts?limit=2`);
    expect(page1.status).toBe(200);
    expect(page1.body).toMatchObject({ has_next_page: true, has_previous_page: false });
    expect(page1.body.data.map((a: { started_at: string }) => a.started_at)).toEqual(
      attemptTimes.slice(0, 2).map(toIso),
    );
    expect(page1.body.data[0]).toEqual({
      id: expect.stringMatching(/^atm_/),
      started_at: toIso(attemptTimes[0]!),
      duration_ms: 7,
      response_status_code: 503,
      response_headers: { "content-type": "text/plain" },
      response_body: "nope",
      error: "http_status",
    });
    const page2 = await t.request(
      "GET",
      `/v1/deliveries/${delivery!.id}/attempts?limit=2&after=${page1.body.end_cursor}`,
    );
    expect(page2.body).toMatchObject({ has_next_page: false, has_previous_page: true });
    expect(page2.body.data.map((a: { started_at: string }) => a.started_at)).toEqual([
      toIso(attemptTimes[2]!),
    ]);
    const back = await t.request(
      "GET",
      `/v1/deliveries/${delivery!.id}/attempts?limit=2&before=${page2.body.start_cursor}`,
    );
    expect(back.body.data).toEqual(page1.body.data);
    expect(back.body).toMatchObject({ has_next_page: true, has_previous_page: false });
  });

  test("retry: 409 while queued, 202 for a final delivery, keeping its attempts", async () => {
    await webhook();
    const event = await publish();
    const [delivery] = await deliveriesOf(`event_id=${event}`);
    const retry = () => t.request("POST", `/v1/deliveries/${delivery!.id}/retry`);

    const pending = await retry();
    expect(pending.status).toBe(409);
    expect(pending.body.error.code).toBe("conflict");
    await settleDue(() => ({ action: "retry", at: clock.now() + 1000 }));
    expect((await retry()).status).toBe(409);
    clock.advance(1000);
    await settleDue(() => EXHAUST);

    clock.advance(5000);
    const requeued = await retry();
    expect(requeued.status).toBe(202);
    expect(requeued.body).toMatchObject({
      id: delivery!.id,
      status: "pending",
      attempts: 2,
      next_retry_at: toIso(clock.now()),
    });
    expect((await retry()).status).toBe(409);
    await settleDue(() => SUCCEED);
    const attempts = await t.request("GET", `/v1/deliveries/${delivery!.id}/attempts`);
    expect(attempts.body.data.map((a: { response_status_code: number }) => a.response_status_code)).toEqual([
      503, 503, 200,
    ]);
    // A successful delivery may be sent again too.
    expect((await retry()).body).toMatchObject({ status: "pending", attempts: 3 });
    expect((await t.request("GET", `/v1/events/${event}`)).body.status).toBe("pending");
  });

  test("retry is refused for a cancelled delivery or a disabled subscription", async () => {
    const keep = await webhook(["*"]);
    const drop = await webhook(["*"]);
    const event = await publish();
    await settleDue((d) => (d.webhook.id === keep ? EXHAUST : null));
    // The lease on `drop`'s delivery is still held: deleting cancels it all the same.
    expect((await t.request("DELETE", `/v1/webhooks/${drop}`)).status).toBe(204);
    const [kept] = await deliveriesOf(`event_id=${event}&webhook_id=${keep}`);
    const [cancelled] = await deliveriesOf(`event_id=${event}&webhook_id=${drop}`);
    expect(cancelled!.status).toBe("cancelled");
    expect((await t.request("POST", `/v1/deliveries/${cancelled!.id}/retry`)).status).toBe(409);
    await t.request("PATCH", `/v1/webhooks/${keep}`, { body: { enabled: false } });
    expect((await t.request("POST", `/v1/deliveries/${kept!.id}/retry`)).status).toBe(409);
    await t.request("PATCH", `/v1/webhooks/${keep}`, { body: { enabled: true } });
    expect((await t.request("POST", `/v1/deliveries/${kept!.id}/retry`)).status).toBe(202);
  });

  test("GET /v1/webhooks/{id}/deliveries lists that subscription's, with a status filter", async () => {
    const one = await webhook(["*"]);
    const two = await webhook(["*"]);
    const e1 = await publish();
    clock.advance(10);
    const e2 = await publish();
    await settleDue((d) => (d.eventId === e1 && d.webhook.id === one ? FAIL : null));
    const res = await t.request("GET", `/v1/webhooks/${one}/deliveries`);
    expect(res.status).toBe(200);
    expect(
      res.body.data.map((d: { event_id: string; webhook_id: string }) => [d.event_id, d.webhook_id]),
    ).toEqual([
      [e2, one],
      [e1, one],
    ]);
    const failed = await t.request("GET", `/v1/webhooks/${one}/deliveries?status=failed`);
    expect(failed.body.data.map((d: { event_id: string }) => d.event_id)).toEqual([e1]);
    const none = await t.request("GET", `/v1/webhooks/${two}/deliveries?status=failed`);
    expect(none.body.data).toEqual([]);
    expect((await t.request("GET", `/v1/webhooks/${one}/deliveries?status=nope`)).status).toBe(422);
    expect((await t.request("GET", `/v1/webhooks/${one}/deliveries`, { key: GLOBEX_KEY })).status).toBe(404);
  });

  test("POST /v1/webhooks/{id}/test queues a webhook.test delivery for that subscription alone", async () => {
    const target = await webhook(["invoice.paid"]);
    await webhook(["*"]);
    const res = await t.request("POST", `/v1/webhooks/${target}/test`);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      id: expect.stringMatching(/^dlv_/),
      webhook_id: target,
      event_type: "webhook.test",
      status: "pending",
      attempts: 0,
    });
    expect(JSON.parse(res.body.payload)).toMatchObject({
      type: "webhook.test",
      data: { webhook_id: target },
    });
    expect(ids(await deliveriesOf(`event_id=${res.body.event_id}`))).toEqual([res.body.id]);
    const event = await t.request("GET", `/v1/events/${res.body.event_id}`);
    expect(event.body).toMatchObject({ type: "webhook.test", deliveries_count: 1, status: "pending" });

    expect((await t.request("POST", `/v1/webhooks/${target}/test`, { key: GLOBEX_KEY })).status).toBe(404);
    expect((await t.request("POST", "/v1/webhooks/wh_nope/test")).status).toBe(404);
    await t.request("PATCH", `/v1/webhooks/${target}`, { body: { enabled: false } });
    expect((await t.request("POST", `/v1/webhooks/${target}/test`)).status).toBe(409);
  });

  test("POST /v1/webhooks/{id}/recover re-queues only its failed and exhausted deliveries in [since, until)", async () => {
    const wh = await webhook(["*"]);
    const other = await webhook(["*"]);
    const start = clock.now();
    const plan: Settlement[] = [EXHAUST, FAIL, SUCCEED, EXHAUST, FAIL];
    const events: string[] = [];
    for (let i = 0; i < plan.length; i++) {
      clock.set(start + i * 60_000);
      events.push(await publish());
    }
    clock.set(start + 10 * 60_000);
    await settleDue((d) => plan[events.indexOf(d.eventId)]!);
    clock.advance(60_000);
    const queued = await publish(); // still pending: not recoverable

    const recover = (body: unknown, id = wh) => t.request("POST", `/v1/webhooks/${id}/recover`, { body });
    // [start+1m, start+4m): events 1 (failed), 2 (success), 3 (exhausted)
    const res = await recover({ since: toIso(start + 60_000), until: toIso(start + 240_000) });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ recovered: 2 });
    const statusOf = async (webhookId: string) => {
      const rows = (await deliveriesOf(`webhook_id=${webhookId}`)) as unknown as {
        event_id: string;
        status: string;
      }[];
      return [...events, queued].map((e) => rows.find((r) => r.event_id === e)?.status);
    };
    expect(await statusOf(wh)).toEqual(["exhausted", "pending", "success", "pending", "failed", "pending"]);
    expect(await statusOf(other)).toEqual([
      "exhausted",
      "failed",
      "success",
      "exhausted",
      "failed",
      "pending",
    ]);

    // Without until: everything since, up to now.
    expect((await recover({ since: toIso(start) })).body).toEqual({ recovered: 2 });
    expect((await recover({ since: toIso(start) })).body).toEqual({ recovered: 0 });

    for (const [body, path] of [
      [{ since: "last tuesday" }, "since"],
      [{ since: toIso(start), until: "2026-02-31T25:00:00Z" }, "until"],
      [{ since: toIso(start), until: toIso(start) }, "until"],
      [{}, "since"],
    ] as const) {
      const bad = await recover(body);
      expect(bad.status).toBe(422);
      expect(bad.body.error.details.map((d: { path: string }) => d.path)).toEqual([path]);
    }
    expect((await recover({ since: toIso(start) }, "wh_nope")).status).toBe(404);
  });

  test("recover without until includes a delivery created at this very millisecond", async () => {
    const wh = await webhook(["*"]);
    const event = await publish();
    await settleDue(byEvent({ [event]: FAIL })); // same instant: the clock does not move
    const res = await t.request("POST", `/v1/webhooks/${wh}/recover`, {
      body: { since: toIso(clock.now()) },
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ recovered: 1 });
    expect((await deliveriesOf(`webhook_id=${wh}`)).map((d) => d.status)).toEqual(["pending"]);
  });

  test("re-enabling a subscription disabled for failing resets its failure count", async () => {
    const wh = await webhook(["*"]);
    const event = await publish();
    const oneStrike = { disableAfterFailures: 1, disableAfterMs: 0 };
    await settleDue(byEvent({ [event]: { action: "retry", at: clock.now() + 3_600_000 } }), oneStrike);
    const before = await t.request("GET", `/v1/webhooks/${wh}`);
    expect(before.body).toMatchObject({ enabled: false, disabled_reason: "failing" });
    clock.advance(1000);
    const on = await t.request("PATCH", `/v1/webhooks/${wh}`, { body: { enabled: true } });
    expect(on.body).toMatchObject({ enabled: true, disabled_reason: null });
    // No failure since it was re-enabled: not counted as failing.
    const stats = await t.request("GET", `/v1/webhooks/${wh}/stats`);
    expect(stats.body.webhooks).toEqual({ enabled: 1, disabled: 0, failing: 0 });
  });

  test("DELETE cancels a subscription's queued deliveries; disabling fails them; final ones stay", async () => {
    const deleted = await webhook(["*"]);
    const disabled = await webhook(["*"]);
    const first = await publish();
    await settleDue(byEvent({ [first]: SUCCEED }));
    clock.advance(10);
    await publish();
    clock.advance(10);
    await publish();
    await settleDue(() => ({ action: "retry", at: clock.now() + 60_000 })); // one retrying, one pending each

    const statuses = async (wh: string) => (await deliveriesOf(`webhook_id=${wh}`)).map((d) => d.status);
    expect(await statuses(deleted)).toEqual(["retrying", "retrying", "success"]);
    clock.advance(10);
    await publish();
    expect((await t.request("DELETE", `/v1/webhooks/${deleted}`)).status).toBe(204);
    expect(await statuses(deleted)).toEqual(["cancelled", "cancelled", "cancelled", "success"]);
    const off = await t.request("PATCH", `/v1/webhooks/${disabled}`, { body: { enabled: false } });
    expect(off.status).toBe(200);
    expect(await statuses(disabled)).toEqual(["failed", "failed", "failed", "success"]);
    expect((await t.daemon.store.queueStats(clock.now())).depth).toBe(0);
    expect(await settleDue(() => SUCCEED)).toBe(0);
  });
});

describe("retention", () => {
  const count = async (table: TableName) => (await exportAll(t.daemon.store, table)).length;

  test("removes final deliveries, their attempts and events older than retention; keeps queued ones", async () => {
    await open("retention: 1h\nlimits: { idempotency_window: 1h }");
    const wh = await webhook(["a.*"]);
    const done = await publish("a.done", { idempotencyKey: "old-key" });
    const queued = await publish("a.queued");
    const alone = await publish("b.nobody");
    await settleDue(
      byEvent({ [done]: SUCCEED, [queued]: { action: "retry", at: clock.now() + 3 * 3_600_000 } }),
    );
    expect(await count("attempts")).toBe(2);

    clock.advance(2 * 3_600_000);
    const fresh = await publish("a.fresh", { idempotencyKey: "new-key" });
    await settleDue(byEvent({ [fresh]: SUCCEED }));
    clock.advance(59 * 60_000); // `fresh` is final and almost as old as retention: kept
    const [doneDelivery] = await deliveriesOf(`event_id=${done}`);
    const [queuedDelivery] = await deliveriesOf(`event_id=${queued}`);

    const result = await t.daemon.maintenance.runOnce();
    expect(result?.idempotencyKeys).toBe(1);
    expect(result?.removed).toBe(4); // an attempt, a delivery and two events
    expect((await t.request("GET", `/v1/events/${done}`)).status).toBe(404);
    expect((await t.request("GET", `/v1/events/${alone}`)).status).toBe(404);
    expect((await t.request("GET", `/v1/deliveries/${doneDelivery!.id}`)).status).toBe(404);
    expect((await t.request("GET", `/v1/events/${queued}`)).body.status).toBe("pending");
    expect((await t.request("GET", `/v1/deliveries/${queuedDelivery!.id}`)).body.status).toBe("retrying");
    expect((await t.request("GET", `/v1/events/${fresh}`)).body.status).toBe("delivered");
    expect(await count("attempts")).toBe(2); // the queued one's and the fresh one's
    expect((await exportAll(t.daemon.store, "idempotency_keys")).map((row) => row.key)).toEqual(["new-key"]);
    expect((await t.request("GET", `/v1/webhooks/${wh}/deliveries`)).body.data.length).toBe(2);

    // Once the old queued delivery is final, the next sweep takes it and its event.
    clock.advance(3 * 3_600_000);
    await settleDue(byEvent({ [queued]: EXHAUST }));
    await t.daemon.maintenance.runOnce();
    expect((await t.request("GET", `/v1/events/${queued}`)).status).toBe(404);
    expect((await t.request("GET", `/v1/events/${fresh}`)).status).toBe(404);
    expect(await count("events")).toBe(0);
    expect(await count("attempts")).toBe(0);
    expect((await t.daemon.maintenance.runOnce())?.removed).toBe(0);
  });
  test("sweeps backlogs larger than one batch in a single run", async () => {
    await open(
      "retention: 1h\nlimits: { idempotency_window: 30m }\ndelivery: { max_in_flight_per_webhook: 1000 }",
    );
    await webhook(["*"]);
    for (let b = 0; b < 3; b++) {
      const events = Array.from({ length: 400 }, (_, i) => ({ type: "a.b", data: {}, id: `k${b}.${i}` }));
      expect((await t.request("POST", "/v1/events/batch", { body: { events } })).status).toBe(202);
    }
    // Settled through the store, a thousand at a time (the webhook's cap), as on either driver.
    expect(await settleDue(() => SUCCEED)).toBe(1200);
    clock.advance(2 * 3_600_000);
    // 1200 events, their 1200 deliveries and 1200 attempts.
    expect(await t.daemon.maintenance.runOnce()).toEqual({
      removed: 3600,
      idempotencyKeys: 1200,
      recounted: 0,
    });
    expect([
      await count("events"),
      await count("deliveries"),
      await count("attempts"),
      await count("idempotency_keys"),
    ]).toEqual([0, 0, 0, 0]);
  });

  test("retention shorter than the idempotency window is a config error: a live key never loses its event", async () => {
    await open();
    await expect(
      createTestDaemon({ yaml: "retention: 1h\nlimits: { idempotency_window: 24h }" }),
    ).rejects.toThrow(ConfigError);
    try {
      await createTestDaemon({ yaml: "retention: 1h\nlimits: { idempotency_window: 24h }" });
    } catch (error) {
      expect((error as ConfigError).problems).toEqual([
        { path: "retention", message: "must be at least limits.idempotency_window" },
      ]);
    }
  });
});

describe("/metrics", () => {
  const metric = (text: string, name: string): number | undefined => {
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  };

  test("queue depth and the oldest due delivery follow the queue; replays are not counted", async () => {
    await open();
    const wh = await webhook(["a.*"]);
    for (let i = 0; i < 3; i++) await publish("a.b", { idempotencyKey: `k${i}` });
    await publish("a.b", { idempotencyKey: "k0" }); // a replay
    await publish("z.z"); // no subscriber
    clock.advance(5000);
    let res = await t.request("GET", "/metrics", { key: null });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    expect(metric(res.text, 'hookd_events_accepted_total{mode="live"}')).toBe(4);
    expect(metric(res.text, "hookd_queue_depth")).toBe(3);
    expect(metric(res.text, "hookd_oldest_due_seconds")).toBe(5);
    expect(metric(res.text, "hookd_in_flight")).toBe(0);
    expect((await deliveriesOf(`webhook_id=${wh}&status=pending`)).length).toBe(3);

    await settleDue(() => SUCCEED);
    res = await t.request("GET", "/metrics", { key: null });
    expect(metric(res.text, "hookd_queue_depth")).toBe(0);
    expect(metric(res.text, "hookd_oldest_due_seconds")).toBe(0);
  });

  test("a batch with an already-used event id counts only the new events", async () => {
    await open();
    await t.request("POST", "/v1/events", { body: { type: "a.b", data: {}, id: "x" } });
    const batch = await t.request("POST", "/v1/events/batch", {
      body: {
        events: [
          { type: "a.b", data: {}, id: "x" },
          { type: "a.b", data: {}, id: "y" },
          { type: "a.b", data: {}, id: "y" },
          { type: "a.b", data: {} },
        ],
      },
    });
    expect(batch.status).toBe(202);
    const res = await t.request("GET", "/metrics", { key: null });
    expect(metric(res.text, 'hookd_events_accepted_total{mode="live"}')).toBe(3);
  });
});

describe("with the dispatcher running against a real receiver", () => {
  let receiver: Server<undefined>;
  let received: { path: string; body: string; headers: Headers }[];

  beforeEach(async () => {
    received = [];
    receiver = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const path = new URL(req.url).pathname;
        received.push({ path, body: await req.text(), headers: req.headers });
        if (path === "/gone") return new Response("bye", { status: 410 });
        return new Response("thanks", { status: 200, headers: { "x-receiver": "yes" } });
      },
    });
    t = await createTestDaemon({ clock: systemClock });
    await t.daemon.start();
  });
  afterEach(async () => {
    await t.close();
    receiver.stop(true);
  });

  const base = () => `http://127.0.0.1:${receiver.port}`;

  test("payload and signature are what the receiver got; attempts and metrics record it", async () => {
    const okHook = await webhook(["a.*"], undefined, `${base()}/ok`);
    const goneHook = await webhook(["b.*"], undefined, `${base()}/gone`);
    const delivered = await publish("a.b", { data: { n: 1 } });
    const refused = await publish("b.c", { data: { n: 2 } });

    const settled = async (eventId: string, status: string) => {
      const [d] = await deliveriesOf(`event_id=${eventId}`);
      return d?.status === status ? d : null;
    };
    const ok = await waitFor(() => settled(delivered, "success"), { what: "the delivery to succeed" });
    await waitFor(() => settled(refused, "failed"), { what: "the 410 to fail the delivery" });

    const detail = (await t.request("GET", `/v1/deliveries/${ok.id}`)).body;
    const got = received.find((r) => r.path === "/ok")!;
    expect(detail.payload).toBe(got.body);
    expect(detail.signature).toBe(got.headers.get("webhook-signature"));
    expect(got.headers.get("webhook-id")).toBe(delivered);
    expect(detail).toMatchObject({ attempts: 1, response_status_code: 200, next_retry_at: null });
    const attempts = (await t.request("GET", `/v1/deliveries/${ok.id}/attempts`)).body.data;
    expect(attempts).toEqual([
      expect.objectContaining({
        response_status_code: 200,
        response_body: "thanks",
        error: null,
        response_headers: expect.objectContaining({ "x-receiver": "yes" }),
      }),
    ]);
    expect((await t.request("GET", `/v1/webhooks/${goneHook}`)).body.disabled_reason).toBe("gone");
    expect(
      (await t.request("GET", `/v1/webhooks/${okHook}/deliveries?status=success`)).body.data.length,
    ).toBe(1);

    await t.daemon.dispatcher.idle();
    const text = (await t.request("GET", "/metrics", { key: null })).text;
    expect(text).toContain('hookd_deliveries_total{status="success",mode="live"} 1');
    expect(text).toContain('hookd_deliveries_total{status="failed",mode="live"} 1');
    expect(text).toMatch(
      /^hookd_attempt_duration_seconds_bucket\{le="\+Inf",outcome="success",mode="live"\} 1$/m,
    );
    expect(text).toMatch(/^hookd_attempt_duration_seconds_count\{outcome="failure",mode="live"\} 1$/m);
    expect(text).toMatch(/^hookd_events_accepted_total\{mode="live"\} 2$/m);
    expect(text).toMatch(/^hookd_queue_depth 0$/m);
    expect(text).toMatch(/^hookd_in_flight 0$/m);
    expect(text).toContain("hookd_oldest_due_seconds");
  });
});
