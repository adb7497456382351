// SPEC §2 Authentication and tenancy: "A tenant key sees and creates only its tenant's objects —
// another tenant's object is a 404, never a 403 that leaks its existence". For every route that
// names an object, a key of tenant acme gets for globex's object exactly the answer it gets for an
// id that does not exist (status, body, headers), whatever the body; none of its reads, changes,
// retries, recoveries, tests, rotations or deletions touches globex's objects; lists filtered by
// globex's ids are empty; globex's cursors and idempotency keys give acme nothing of globex's. Admin
// keys see and act on both. The routes come from the daemon itself, so a new route is covered.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { RouteSpec } from "../../src/http/api.ts";
import {
  ACME_KEY,
  ADMIN_KEY,
  createTestDaemon,
  GLOBEX_KEY,
  type RequestOptions,
  type TestDaemon,
  type TestResponse,
} from "../support/daemon.ts";

let t: TestDaemon;
/** Each tenant's objects: a webhook, an event, its delivery (failed, with one attempt). */
interface World {
  webhook: string;
  event: string;
  delivery: string;
  /** A portal session of the tenant. */
  session: string;
}
let acme: World;
let globex: World;

const label = (r: RouteSpec) => `${r.method.toUpperCase()} ${r.path}`;
const resourceOf = (route: RouteSpec) =>
  (/^\/v1\/(webhooks|events|deliveries|portal-sessions)\/:id/.exec(route.path)?.[1] ?? "") as
    | "webhooks"
    | "events"
    | "deliveries"
    | "portal-sessions"
    | "";
const idOf = (world: World, resource: string) =>
  resource === "webhooks"
    ? world.webhook
    : resource === "events"
      ? world.event
      : resource === "portal-sessions"
        ? world.session
        : world.delivery;

/** A well-formed id of the same kind and length that names nothing. */
const ghostOf = (id: string) => `${id.slice(0, -6)}ZZZZZZ`;

const VALID_BODIES: Record<string, unknown> = {
  "PATCH /v1/webhooks/:id": { name: "taken over", enabled: false },
  "PUT /v1/webhooks/:id": { name: "taken over", url: "http://127.0.0.1:9/evil", events: ["*"] },
  "POST /v1/webhooks/:id/rotate-secret": { grace_period_seconds: 0 },
  "POST /v1/webhooks/:id/recover": { since: "2000-01-01T00:00:00.000Z" },
};

async function makeWorld(key: string, tenant: string): Promise<World> {
  const webhook = await t.request("POST", "/v1/webhooks", {
    key,
    body: { name: `${tenant} hook`, url: `http://127.0.0.1:9/${tenant}`, events: ["*"] },
  });
  expect(webhook.status).toBe(201);
  const event = await t.request("POST", "/v1/events", {
    key,
    body: { type: "invoice.paid", data: { tenant } },
  });
  expect(event.status).toBe(202);
  const deliveries = await t.request("GET", `/v1/deliveries?event_id=${event.body.id}`, { key });
  expect(deliveries.body.data).toHaveLength(1);
  const delivery = deliveries.body.data[0].id as string;
  // A settled, failed delivery with one attempt, so that retry and recover have work to do. (The
  // dispatcher is not started; the delivery is claimed and settled through the store, as it would.)
  const claimed = await t.daemon.store.claimDue({
    now: t.clock.now(),
    owner: `test.${tenant}`,
    leaseMs: 60_000,
    limit: 10,
    retryLimit: 10,
  });
  expect(claimed.map((d) => d.id)).toEqual([delivery]);
  const leaseOwner = claimed[0]!.leaseOwner;
  const outcome = await t.daemon.store.settle(
    [
      {
        deliveryId: delivery,
        leaseOwner,
        webhookId: webhook.body.id,
        signature: null,
        settlement: { action: "fail", reason: "blocked_address" },
        attempt: {
          id: `atm_${tenant}`,
          startedAt: t.clock.now(),
          durationMs: 12,
          responseStatusCode: 500,
          responseHeaders: {},
          responseBody: "nope",
          error: "http_status",
        },
      },
    ],
    t.clock.now(),
    { disableAfterFailures: 1000, disableAfterMs: 365 * 86_400_000 },
    () => `evt_internal_${tenant}`,
  );
  expect(outcome.applied).toEqual([true]);
  const session = await t.request("POST", "/v1/portal-sessions", { key, body: {} });
  expect(session.status).toBe(201);
  return { webhook: webhook.body.id, event: event.body.id, delivery, session: session.body.id };
}

beforeAll(async () => {
  t = await createTestDaemon();
  acme = await makeWorld(ACME_KEY, "acme");
  globex = await makeWorld(GLOBEX_KEY, "globex");
});
afterAll(async () => {
  await t.close();
});

/** Everything of a tenant's, as the admin sees it (lists, details, attempts). */
async function snapshot(tenant: string, world: World): Promise<unknown> {
  const get = async (path: string) => {
    const res = await t.request("GET", path, { key: ADMIN_KEY });
    return { status: res.status, body: res.body };
  };
  return {
    webhooks: await get(`/v1/webhooks?tenant_id=${tenant}&limit=100`),
    webhook: await get(`/v1/webhooks/${world.webhook}`),
    events: await get(`/v1/events?tenant_id=${tenant}&limit=100`),
    event: await get(`/v1/events/${world.event}`),
    deliveries: await get(`/v1/deliveries?tenant_id=${tenant}&limit=100`),
    delivery: await get(`/v1/deliveries/${world.delivery}`),
    attempts: await get(`/v1/deliveries/${world.delivery}/attempts`),
    webhookDeliveries: await get(`/v1/webhooks/${world.webhook}/deliveries`),
    sessions: await get(`/v1/portal-sessions?tenant_id=${tenant}&limit=100`),
    session: await get(`/v1/portal-sessions/${world.session}`),
    stats: await get(`/v1/webhooks/${world.webhook}/stats`),
  };
}

/** The parts of an answer a caller could learn something from (not its request id or rate count). */
function observable(res: TestResponse): unknown {
  const headers: Record<string, string> = {};
  for (const [name, value] of res.headers) {
    if (["x-request-id", "ratelimit-remaining", "ratelimit-reset", "date"].includes(name)) continue;
    headers[name] = value;
  }
  return { status: res.status, headers, body: res.text };
}

const routesWithId = () => t.daemon.routes.filter((r) => r.path.includes(":id"));

function send(route: RouteSpec, id: string, options: RequestOptions): Promise<TestResponse> {
  return t.request(route.method.toUpperCase(), route.path.replace(":id", id), options);
}

describe("a tenant key and another tenant's objects", () => {
  test("every route that names an object is covered", () => {
    const names = routesWithId().map(label);
    expect(names.length).toBeGreaterThanOrEqual(12);
    for (const route of routesWithId())
      expect([label(route), resourceOf(route)]).not.toEqual([label(route), ""]);
  });

  test("another tenant's id gets exactly the answer of an id that does not exist, whatever the body", async () => {
    const before = await snapshot("globex", globex);
    for (const route of routesWithId()) {
      const theirs = idOf(globex, resourceOf(route));
      const bodies: (RequestOptions & { what: string })[] = [
        { what: "no body" },
        { what: "valid body", body: VALID_BODIES[label(route)] ?? {} },
        { what: "invalid body", body: { name: 42, since: "yesterday", grace_period_seconds: -1 } },
        { what: "malformed JSON", rawBody: "{", headers: { "content-type": "application/json" } },
      ];
      for (const { what, ...options } of bodies) {
        for (const key of [ACME_KEY]) {
          const real = await send(route, theirs, { key, ...options });
          const ghost = await send(route, ghostOf(theirs), { key, ...options });
          const where = `${label(route)} (${what})`;
          expect([where, observable(real)]).toEqual([where, observable(ghost)]);
          expect([where, real.status]).not.toEqual([where, 403]);
          expect([where, real.status < 300]).toEqual([where, false]);
          if (what === "valid body" || what === "no body") {
            // Whatever the route answers a bad body with, a good one reaches the lookup: 404.
            if (real.status !== 422 && real.status !== 400)
              expect([where, real.status, real.body?.error?.code]).toEqual([where, 404, "not_found"]);
          }
        }
      }
    }
    // None of it changed anything of globex's: not the webhook, its secret, its deliveries, its
    // attempts, nor its events (no retry, recovery, test delivery, rotation, update or deletion).
    expect(await snapshot("globex", globex)).toEqual(before);
  });

  test("a valid request for another tenant's object is 404 not_found, the same message as for nothing", async () => {
    for (const route of routesWithId()) {
      const theirs = idOf(globex, resourceOf(route));
      const body = VALID_BODIES[label(route)];
      const options = { key: ACME_KEY, ...(body !== undefined ? { body } : {}) };
      const real = await send(route, theirs, options);
      const ghost = await send(route, ghostOf(theirs), options);
      expect([label(route), real.status, real.body]).toEqual([
        label(route),
        404,
        { error: { code: "not_found", message: ghost.body.error.message } },
      ]);
    }
  });

  test("lists filtered by another tenant's ids are empty, as for ids that do not exist", async () => {
    const filters = [
      `webhook_id=${globex.webhook}`,
      `event_id=${globex.event}`,
      `webhook_id=${globex.webhook}&event_id=${globex.event}`,
      `webhook_id=${globex.webhook}&status=failed`,
      `event_id=${globex.event}&status=failed`,
    ];
    for (const filter of filters) {
      const real = await t.request("GET", `/v1/deliveries?${filter}`, { key: ACME_KEY });
      const ghost = await t.request(
        "GET",
        `/v1/deliveries?${filter.replace(globex.webhook, ghostOf(globex.webhook)).replace(globex.event, ghostOf(globex.event))}`,
        { key: ACME_KEY },
      );
      expect([filter, real.status, real.body.data]).toEqual([filter, 200, []]);
      expect([filter, observable(real)]).toEqual([filter, observable(ghost)]);
    }
    // The same filters with the tenant's own ids do find its own objects (the filter works).
    const own = await t.request("GET", `/v1/deliveries?webhook_id=${acme.webhook}&event_id=${acme.event}`, {
      key: ACME_KEY,
    });
    expect(own.body.data.map((d: { id: string }) => d.id)).toEqual([acme.delivery]);
  });

  test("lists show a tenant key only its own objects, in every order and page", async () => {
    const theirs = new Set(Object.values(globex));
    for (const path of [
      "/v1/webhooks?limit=1",
      "/v1/webhooks?limit=1&order=created_at",
      "/v1/webhooks?limit=1&order=name",
      "/v1/webhooks?limit=1&order=-updated_at",
      "/v1/webhooks?limit=1&event=invoice.paid",
      "/v1/events?limit=1",
      "/v1/events?limit=1&type=invoice.paid",
      "/v1/events?limit=1&status=failed",
      "/v1/deliveries?limit=1",
      "/v1/deliveries?limit=1&status=failed",
    ]) {
      let page = await t.request("GET", path, { key: ACME_KEY });
      for (let i = 0; i < 20; i++) {
        expect([path, page.status]).toEqual([path, 200]);
        for (const row of page.body.data) {
          expect([path, row.tenant_id ?? "acme", theirs.has(row.id)]).toEqual([path, "acme", false]);
        }
        if (!page.body.has_next_page) break;
        page = await t.request("GET", `${path}&after=${page.body.end_cursor}`, { key: ACME_KEY });
      }
      expect([path, page.body.has_next_page]).toEqual([path, false]);
    }
  });

  test("another tenant's cursors give nothing of theirs", async () => {
    const theirs = new Set(Object.values(globex));
    for (const list of ["/v1/webhooks", "/v1/events", "/v1/deliveries"]) {
      const page = await t.request("GET", `${list}?limit=1`, { key: GLOBEX_KEY });
      for (const cursor of [page.body.start_cursor, page.body.end_cursor]) {
        for (const direction of ["after", "before"]) {
          const res = await t.request("GET", `${list}?${direction}=${cursor}`, { key: ACME_KEY });
          expect([list, direction, res.status < 500]).toEqual([list, direction, true]);
          if (res.status === 200)
            for (const row of res.body.data) expect([list, theirs.has(row.id)]).toEqual([list, false]);
        }
      }
    }
  });

  test("idempotency keys and client ids are per tenant: one tenant's key neither replays nor conflicts with another's", async () => {
    // globex uses two keys; acme then sends one with globex's very body (no replay of globex's
    // event) and the other with a different body (no conflict with globex's).
    const globexBody = { type: "invoice.paid", data: { secret: "globex" } };
    const firsts = [];
    for (const key of ["order-1", "order-2"]) {
      const first = await t.request("POST", "/v1/events", {
        key: GLOBEX_KEY,
        headers: { "idempotency-key": key },
        body: globexBody,
      });
      expect(first.status).toBe(202);
      firsts.push(first.body.id);
    }
    for (const [key, body] of [
      ["order-1", globexBody],
      ["order-2", { type: "invoice.paid", data: { other: "acme" } }],
    ] as const) {
      const again = await t.request("POST", "/v1/events", {
        key: ACME_KEY,
        headers: { "idempotency-key": key },
        body,
      });
      expect([key, again.status, again.headers.get("idempotent-replayed")]).toEqual([key, 202, null]);
      expect(firsts).not.toContain(again.body.id);
      expect(again.body.tenant_id).toBe("acme");
    }
    const byId = await t.request("POST", "/v1/events", {
      key: GLOBEX_KEY,
      body: { id: "client-id-1", type: "invoice.paid", data: {} },
    });
    const sameId = await t.request("POST", "/v1/events", {
      key: ACME_KEY,
      body: { id: "client-id-1", type: "invoice.paid", data: { changed: true } },
    });
    expect([byId.status, sameId.status]).toEqual([202, 202]);
    expect(sameId.body.id).not.toBe(byId.body.id);
  });

  test("a tenant key naming another tenant is 403 on create and list, and creates nothing there", async () => {
    const before = await snapshot("globex", globex);
    for (const [method, path, body] of [
      ["POST", "/v1/webhooks", { url: "http://127.0.0.1:9/x", events: ["*"], tenant_id: "globex" }],
      ["POST", "/v1/events", { type: "invoice.paid", data: {}, tenant_id: "globex" }],
      ["POST", "/v1/events/batch", { events: [{ type: "invoice.paid", data: {} }], tenant_id: "globex" }],
      ["GET", "/v1/webhooks?tenant_id=globex", undefined],
      ["GET", "/v1/events?tenant_id=globex", undefined],
      ["GET", "/v1/deliveries?tenant_id=globex", undefined],
      ["GET", "/v1/stats?tenant_id=globex", undefined],
      ["GET", "/v1/portal-sessions?tenant_id=globex", undefined],
      ["POST", "/v1/portal-sessions", { tenant_id: "globex" }],
      ["POST", "/v1/portal-sessions/revoke", { tenant_id: "globex" }],
    ] as const) {
      const res = await t.request(method, path, { key: ACME_KEY, ...(body ? { body } : {}) });
      // (A batch may refuse the unknown field itself first: still not accepted.)
      expect([path, res.status === 403 || res.status === 422]).toEqual([path, true]);
    }
    expect(await snapshot("globex", globex)).toEqual(before);
  });
});

describe("admin keys", () => {
  test("see both tenants' objects, by id and in lists", async () => {
    for (const world of [acme, globex]) {
      for (const path of [
        `/v1/webhooks/${world.webhook}`,
        `/v1/events/${world.event}`,
        `/v1/deliveries/${world.delivery}`,
        `/v1/deliveries/${world.delivery}/attempts`,
        `/v1/webhooks/${world.webhook}/deliveries`,
      ]) {
        expect([path, (await t.request("GET", path, { key: ADMIN_KEY })).status]).toEqual([path, 200]);
      }
    }
    const all = await t.request("GET", "/v1/deliveries?limit=100", { key: ADMIN_KEY });
    const ids = all.body.data.map((d: { id: string }) => d.id);
    expect(ids).toContain(acme.delivery);
    expect(ids).toContain(globex.delivery);
    const theirs = await t.request("GET", `/v1/deliveries?webhook_id=${globex.webhook}`, { key: ADMIN_KEY });
    expect(theirs.body.data.map((d: { id: string }) => d.id)).toContain(globex.delivery);
  });

  test("act on another tenant's objects, and the owner sees the effect", async () => {
    const patched = await t.request("PATCH", `/v1/webhooks/${globex.webhook}`, {
      key: ADMIN_KEY,
      body: { name: "renamed by admin" },
    });
    expect(patched.status).toBe(200);
    expect((await t.request("GET", `/v1/webhooks/${globex.webhook}`, { key: GLOBEX_KEY })).body.name).toBe(
      "renamed by admin",
    );
    const retried = await t.request("POST", `/v1/deliveries/${globex.delivery}/retry`, { key: ADMIN_KEY });
    expect(retried.status).toBe(202);
    expect(
      (await t.request("GET", `/v1/deliveries/${globex.delivery}`, { key: GLOBEX_KEY })).body.status,
    ).toBe("pending");
    const rotated = await t.request("POST", `/v1/webhooks/${globex.webhook}/rotate-secret`, {
      key: ADMIN_KEY,
      body: {},
    });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    const tested = await t.request("POST", `/v1/webhooks/${globex.webhook}/test`, { key: ADMIN_KEY });
    expect(tested.status).toBe(202);
    const recovered = await t.request("POST", `/v1/webhooks/${acme.webhook}/recover`, {
      key: ADMIN_KEY,
      body: { since: "2000-01-01T00:00:00.000Z" },
    });
    expect([recovered.status, recovered.body.recovered]).toEqual([202, 1]);
    const deleted = await t.request("DELETE", `/v1/webhooks/${globex.webhook}`, { key: ADMIN_KEY });
    expect(deleted.status).toBe(204);
    expect((await t.request("GET", `/v1/webhooks/${globex.webhook}`, { key: GLOBEX_KEY })).status).toBe(404);
  });
});
