// SPEC §2 Live and test mode: "Lists, gets and actions of a credential see only objects of its
// mode: another mode's object is a 404, like another tenant's", and "an event is delivered only to
// webhooks of its own mode". One tenant (acme) has a live world and a test world; for every route
// that names an object, acme's test key gets for the live object exactly the answer of an id that
// does not exist (status, body, headers), whatever the body, and the reverse; nothing of the other
// mode changes; lists, filters, cursors and idempotency keys never cross. A tenant key naming the
// other mode is a 403; an admin key reaches the other mode only when it asks (`mode`). The routes
// come from the daemon itself, so a new route is covered.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  ACME_KEY,
  ACME_TEST_KEY,
  ADMIN_KEY,
  ADMIN_TEST_KEY,
  createTestDaemon,
  type TestDaemon,
} from "../support/daemon.ts";
import {
  bodiesFor,
  ghostOf,
  idOf,
  label,
  makeWorld,
  observable,
  resourceOf,
  routesWithId,
  send,
  VALID_BODIES,
  type World,
} from "../support/isolation.ts";

let t: TestDaemon;
interface ModeWorld extends World {
  mode: "live" | "test";
  key: string;
}
let live: ModeWorld;
let testWorld: ModeWorld;

beforeAll(async () => {
  t = await createTestDaemon();
  // One tenant, both modes; each world's webhook takes every event, so each event reaching only its
  // own mode's webhook is checked as the worlds are made.
  live = { mode: "live", key: ACME_KEY, ...(await makeWorld(t, ACME_KEY, "live", "live")) };
  testWorld = { mode: "test", key: ACME_TEST_KEY, ...(await makeWorld(t, ACME_TEST_KEY, "test", "test")) };
});
afterAll(async () => {
  await t.close();
});

/** Everything of one mode's world, as an admin asking for that mode sees it. */
async function snapshot(world: ModeWorld): Promise<unknown> {
  const get = async (path: string) => {
    const res = await t.request("GET", `${path}${path.includes("?") ? "&" : "?"}mode=${world.mode}`, {
      key: ADMIN_KEY,
    });
    return { status: res.status, body: res.body };
  };
  return {
    webhooks: await get("/v1/webhooks?tenant_id=acme&limit=100"),
    webhook: await get(`/v1/webhooks/${world.webhook}`),
    events: await get("/v1/events?tenant_id=acme&limit=100"),
    event: await get(`/v1/events/${world.event}`),
    deliveries: await get("/v1/deliveries?tenant_id=acme&limit=100"),
    delivery: await get(`/v1/deliveries/${world.delivery}`),
    attempts: await get(`/v1/deliveries/${world.delivery}/attempts`),
    webhookDeliveries: await get(`/v1/webhooks/${world.webhook}/deliveries`),
    sessions: await get("/v1/portal-sessions?tenant_id=acme&limit=100"),
    session: await get(`/v1/portal-sessions/${world.session}`),
    stats: await get(`/v1/webhooks/${world.webhook}/stats`),
  };
}

const pairs = () =>
  [
    { who: "test key, live object", caller: testWorld, other: live },
    { who: "live key, test object", caller: live, other: testWorld },
  ] as const;

describe("a credential and another mode's objects", () => {
  test("every route that names an object is covered", () => {
    expect(routesWithId(t).length).toBeGreaterThanOrEqual(12);
    for (const route of routesWithId(t))
      expect([label(route), resourceOf(route) !== ""]).toEqual([label(route), true]);
  });

  test("another mode's id gets exactly the answer of an id that does not exist, whatever the body", async () => {
    for (const { who, caller, other } of pairs()) {
      const before = await snapshot(other);
      for (const route of routesWithId(t)) {
        const theirs = idOf(other, resourceOf(route));
        for (const { what, ...options } of bodiesFor(route)) {
          const real = await send(t, route, theirs, { key: caller.key, ...options });
          const ghost = await send(t, route, ghostOf(theirs), { key: caller.key, ...options });
          const where = `${who}: ${label(route)} (${what})`;
          expect([where, observable(real)]).toEqual([where, observable(ghost)]);
          expect([where, real.status < 300 || real.status === 403]).toEqual([where, false]);
          if ((what === "valid body" || what === "no body") && real.status !== 422 && real.status !== 400)
            expect([where, real.status, real.body?.error?.code]).toEqual([where, 404, "not_found"]);
        }
        // Naming its own mode explicitly changes nothing: still not found.
        const own = await send(
          t,
          route,
          theirs,
          { key: caller.key, body: VALID_BODIES[label(route)] ?? {} },
          `?mode=${caller.mode}`,
        );
        expect([who, label(route), own.status === 404 || own.status === 422]).toEqual([
          who,
          label(route),
          true,
        ]);
      }
      // No retry, recovery, test delivery, rotation, update or deletion reached the other mode.
      expect([who, await snapshot(other)]).toEqual([who, before]);
    }
  });

  test("each key reaches its own mode's objects on the same routes (the lookups work)", async () => {
    for (const world of [live, testWorld]) {
      for (const path of [
        `/v1/webhooks/${world.webhook}`,
        `/v1/events/${world.event}`,
        `/v1/deliveries/${world.delivery}`,
        `/v1/deliveries/${world.delivery}/attempts`,
        `/v1/webhooks/${world.webhook}/deliveries`,
      ]) {
        const res = await t.request("GET", path, { key: world.key });
        expect([world.mode, path, res.status]).toEqual([world.mode, path, 200]);
      }
    }
  });

  test("lists show a credential only its mode's objects, in every order and page, and filters by the other mode's ids are empty", async () => {
    for (const { who, caller, other } of pairs()) {
      const theirs = new Set([other.webhook, other.event, other.delivery]);
      for (const path of [
        "/v1/webhooks?limit=1",
        "/v1/webhooks?limit=1&order=name",
        "/v1/webhooks?limit=1&event=invoice.paid",
        "/v1/events?limit=1",
        "/v1/events?limit=1&status=failed",
        "/v1/deliveries?limit=1",
        "/v1/deliveries?limit=1&status=failed",
      ]) {
        let page = await t.request("GET", path, { key: caller.key });
        let seen = 0;
        for (let i = 0; i < 20; i++) {
          expect([who, path, page.status]).toEqual([who, path, 200]);
          for (const row of page.body.data) {
            seen++;
            expect([who, path, row.mode, theirs.has(row.id)]).toEqual([who, path, caller.mode, false]);
          }
          if (!page.body.has_next_page) break;
          page = await t.request("GET", `${path}&after=${page.body.end_cursor}`, { key: caller.key });
        }
        expect([who, path, seen > 0]).toEqual([who, path, true]);
      }
      for (const filter of [`webhook_id=${other.webhook}`, `event_id=${other.event}`]) {
        const res = await t.request("GET", `/v1/deliveries?${filter}`, { key: caller.key });
        expect([who, filter, res.status, res.body.data]).toEqual([who, filter, 200, []]);
      }
      // The other mode's cursors give nothing of theirs.
      const otherPage = await t.request("GET", "/v1/deliveries?limit=1", { key: other.key });
      for (const cursor of [otherPage.body.start_cursor, otherPage.body.end_cursor]) {
        const res = await t.request("GET", `/v1/deliveries?after=${cursor}`, { key: caller.key });
        if (res.status === 200)
          for (const row of res.body.data) expect([who, theirs.has(row.id)]).toEqual([who, false]);
      }
    }
  });

  test("a tenant key naming the other mode is 403 and creates or reads nothing there", async () => {
    const before = await snapshot(live);
    for (const [method, path, body] of [
      ["POST", "/v1/webhooks", { url: "http://127.0.0.1:9/x", events: ["*"], mode: "live" }],
      ["POST", "/v1/events", { type: "invoice.paid", data: {}, mode: "live" }],
      ["POST", "/v1/events/batch", { events: [{ type: "invoice.paid", data: {} }], mode: "live" }],
      ["GET", "/v1/webhooks?mode=live", undefined],
      ["GET", "/v1/events?mode=live", undefined],
      ["GET", "/v1/deliveries?mode=live", undefined],
      ["GET", `/v1/webhooks/${live.webhook}?mode=live`, undefined],
      ["GET", `/v1/deliveries/${live.delivery}?mode=live`, undefined],
      ["POST", `/v1/deliveries/${live.delivery}/retry?mode=live`, undefined],
    ] as const) {
      const res = await t.request(method, path, { key: ACME_TEST_KEY, ...(body ? { body } : {}) });
      expect([path, res.status, res.body.error?.code]).toEqual([path, 403, "forbidden"]);
    }
    expect(await snapshot(live)).toEqual(before);
    // An unknown mode is a 422 naming the field.
    const bad = await t.request("GET", "/v1/webhooks?mode=staging", { key: ACME_TEST_KEY });
    expect([bad.status, bad.body.error.details[0].path]).toEqual([422, "mode"]);
  });

  test("statistics and portal sessions are per mode", async () => {
    for (const { who, caller, other } of pairs()) {
      const stats = await t.request("GET", "/v1/stats", { key: caller.key });
      expect([who, stats.status, stats.body.totals.attempts, stats.body.webhooks.enabled]).toEqual([
        who,
        200,
        1,
        1,
      ]);
      const sessions = await t.request("GET", "/v1/portal-sessions", { key: caller.key });
      const ids = sessions.body.data.map((s: { id: string }) => s.id);
      expect([who, ids.includes(caller.session), ids.includes(other.session)]).toEqual([who, true, false]);
      expect(sessions.body.data.every((s: { mode: string }) => s.mode === caller.mode)).toBe(true);
    }
    // A test session's token acts in test mode: live objects are not found.
    const minted = await t.request("POST", "/v1/portal-sessions", { key: ACME_TEST_KEY, body: {} });
    expect(minted.body.mode).toBe("test");
    expect((await t.request("GET", `/v1/webhooks/${live.webhook}`, { key: minted.body.token })).status).toBe(
      404,
    );
    expect(
      (await t.request("GET", `/v1/webhooks/${testWorld.webhook}`, { key: minted.body.token })).status,
    ).toBe(200);
    const forged = await t.request("POST", "/v1/portal-sessions", {
      key: ACME_TEST_KEY,
      body: { mode: "live" },
    });
    expect(forged.status).toBe(403);
  });

  test("idempotency keys and client ids are per mode: the same key in the other mode neither replays nor conflicts", async () => {
    const body = { type: "invoice.paid", data: { n: 1 } };
    const first = await t.request("POST", "/v1/events", {
      key: ACME_KEY,
      headers: { "idempotency-key": "mode-key-1" },
      body,
    });
    const other = await t.request("POST", "/v1/events", {
      key: ACME_TEST_KEY,
      headers: { "idempotency-key": "mode-key-1" },
      body: { ...body, data: { n: 2 } },
    });
    expect([first.status, other.status, other.headers.get("idempotent-replayed")]).toEqual([202, 202, null]);
    expect(other.body.id).not.toBe(first.body.id);
    expect(other.body.mode).toBe("test");
    const again = await t.request("POST", "/v1/events", {
      key: ACME_KEY,
      headers: { "idempotency-key": "mode-key-1" },
      body,
    });
    expect([again.body.id, again.headers.get("idempotent-replayed")]).toEqual([first.body.id, "true"]);
    const byId = await t.request("POST", "/v1/events", {
      key: ACME_KEY,
      body: { id: "mode-client-1", type: "invoice.paid", data: {} },
    });
    const sameId = await t.request("POST", "/v1/events", {
      key: ACME_TEST_KEY,
      body: { id: "mode-client-1", type: "invoice.paid", data: { changed: true } },
    });
    expect([byId.status, sameId.status]).toEqual([202, 202]);
    expect(sameId.body.id).not.toBe(byId.body.id);
  });
});

describe("admin credentials", () => {
  test("see their own mode by default and the other one only when they ask", async () => {
    const plain = await t.request("GET", "/v1/webhooks?tenant_id=acme&limit=100", { key: ADMIN_KEY });
    expect(plain.body.data.every((w: { mode: string }) => w.mode === "live")).toBe(true);
    expect((await t.request("GET", `/v1/webhooks/${testWorld.webhook}`, { key: ADMIN_KEY })).status).toBe(
      404,
    );
    const asked = await t.request("GET", "/v1/webhooks?tenant_id=acme&mode=test&limit=100", {
      key: ADMIN_KEY,
    });
    expect(asked.body.data.map((w: { id: string }) => w.id)).toContain(testWorld.webhook);
    expect(asked.body.data.every((w: { mode: string }) => w.mode === "test")).toBe(true);
    for (const path of [
      `/v1/webhooks/${testWorld.webhook}?mode=test`,
      `/v1/events/${testWorld.event}?mode=test`,
      `/v1/deliveries/${testWorld.delivery}?mode=test`,
      `/v1/deliveries/${testWorld.delivery}/attempts?mode=test`,
      `/v1/webhooks/${testWorld.webhook}/deliveries?mode=test`,
    ]) {
      expect([path, (await t.request("GET", path, { key: ADMIN_KEY })).status]).toEqual([path, 200]);
    }
    // A test-mode admin key is the mirror image.
    expect(
      (await t.request("GET", `/v1/webhooks/${testWorld.webhook}`, { key: ADMIN_TEST_KEY })).status,
    ).toBe(200);
    expect((await t.request("GET", `/v1/webhooks/${live.webhook}`, { key: ADMIN_TEST_KEY })).status).toBe(
      404,
    );
    expect(
      (await t.request("GET", `/v1/webhooks/${live.webhook}?mode=live`, { key: ADMIN_TEST_KEY })).status,
    ).toBe(200);
  });

  test("create and publish in the mode they name: the event reaches that mode's webhooks only, its body says so", async () => {
    const hook = await t.request("POST", "/v1/webhooks", {
      key: ADMIN_KEY,
      body: { url: "http://127.0.0.1:9/admin-test", events: ["order.*"], tenant_id: "acme", mode: "test" },
    });
    expect([hook.status, hook.body.mode]).toEqual([201, "test"]);
    const liveEvent = await t.request("POST", "/v1/events", {
      key: ADMIN_KEY,
      body: { type: "order.created", data: {}, tenant_id: "acme" },
    });
    // It reaches acme's live webhook (which takes everything), not the test one just made.
    expect([liveEvent.body.mode, liveEvent.body.deliveries_count]).toEqual(["live", 1]);
    const reached = await t.request("GET", `/v1/deliveries?event_id=${liveEvent.body.id}`, {
      key: ADMIN_KEY,
    });
    expect(reached.body.data.map((d: { webhook_id: string }) => d.webhook_id)).toEqual([live.webhook]);
    const batch = await t.request("POST", "/v1/events/batch", {
      key: ADMIN_KEY,
      body: { events: [{ type: "order.created", data: { n: 1 } }], tenant_id: "acme", mode: "test" },
    });
    // It reaches the new test webhook and acme's test webhook that takes everything, no live one.
    expect([batch.status, batch.body.data[0].mode, batch.body.data[0].deliveries_count]).toEqual([
      202,
      "test",
      2,
    ]);
    const deliveries = await t.request("GET", `/v1/webhooks/${hook.body.id}/deliveries?mode=test`, {
      key: ADMIN_KEY,
    });
    expect(deliveries.body.data).toHaveLength(1);
    const payload = JSON.parse(deliveries.body.data[0].payload);
    expect([payload.mode, payload.id, deliveries.body.data[0].mode]).toEqual([
      "test",
      batch.body.data[0].id,
      "test",
    ]);
    // The test webhook's test event is a test delivery too.
    const tested = await t.request("POST", `/v1/webhooks/${hook.body.id}/test?mode=test`, { key: ADMIN_KEY });
    expect([tested.status, tested.body.mode, JSON.parse(tested.body.payload).mode]).toEqual([
      202,
      "test",
      "test",
    ]);
    // A webhook's mode cannot be changed.
    const patched = await t.request("PATCH", `/v1/webhooks/${hook.body.id}?mode=test`, {
      key: ADMIN_KEY,
      body: { mode: "live" },
    });
    expect([patched.status, patched.body.error.details]).toEqual([
      422,
      [{ path: "mode", message: "cannot be changed" }],
    ]);
  });

  test("/metrics counts events and deliveries by mode", async () => {
    const hook = await t.request("POST", "/v1/webhooks", {
      key: ACME_TEST_KEY,
      body: { url: "http://127.0.0.1:9/metrics", events: ["metrics.probe"] },
    });
    for (let i = 0; i < 3; i++)
      await t.request("POST", "/v1/events", {
        key: ACME_TEST_KEY,
        body: { type: "metrics.probe", data: {} },
      });
    // Disabling fails its three queued deliveries: counted as final, in test mode.
    await t.request("PATCH", `/v1/webhooks/${hook.body.id}`, {
      key: ACME_TEST_KEY,
      body: { enabled: false },
    });
    const text = (await t.request("GET", "/metrics", { key: null })).text;
    expect(text).toMatch(/^hookd_events_accepted_total\{mode="test"\} \d+$/m);
    expect(text).toMatch(/^hookd_events_accepted_total\{mode="live"\} \d+$/m);
    expect(text).toMatch(/^hookd_deliveries_total\{status="failed",mode="test"\} 3$/m);
    expect(text).not.toMatch(/^hookd_deliveries_total\{status="failed",mode="live"\}/m);
  });
});
