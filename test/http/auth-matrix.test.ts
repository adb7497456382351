// Authentication, scopes and tenancy (SPEC §2) for every declared route, generated from
// daemon.routes so that a new route is covered as soon as it is registered.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { SCOPES } from "../../src/config/schema.ts";
import type { RouteSpec } from "../../src/http/api.ts";
import {
  ACME_KEY,
  ADMIN_KEY,
  createTestDaemon,
  GLOBEX_KEY,
  NOSCOPE_KEY,
  READER_KEY,
  type RequestOptions,
  TEST_KEYS_YAML,
  type TestDaemon,
  type TestResponse,
} from "../support/daemon.ts";

/** One extra key per scope holding every other scope, so every scope has a key that lacks it. */
const allBut = (scope: string) => `test-all-but-${scope.replace(":", "-")}-0123456789`;
const KEYS_YAML = [
  TEST_KEYS_YAML.trimEnd(),
  ...SCOPES.map(
    (scope) =>
      `    - { name: "all-but-${scope}", key: ${allBut(scope)}, scopes: [${SCOPES.filter((s) => s !== scope).join(", ")}] }`,
  ),
].join("\n");

// The routes are read from a daemon built like the ones under test, before the tests are declared.
const discovery = await createTestDaemon({ keysYaml: KEYS_YAML });
const ROUTES: readonly RouteSpec[] = [...discovery.daemon.routes];
await discovery.close();

const AUTHED = ROUTES.filter((r) => r.auth !== null);
// POST /oauth/token authenticates OAuth2 clients its own way (test/http/oauth.test.ts).
const PUBLIC = ROUTES.filter((r) => r.auth === null && r.errorFormat !== "oauth");
const label = (r: RouteSpec) => `${r.method.toUpperCase()} ${r.path}`;
const hasParams = (r: RouteSpec) => /:[a-z_]+/.test(r.path);

// Nothing here starts the dispatcher; the target is on 127.0.0.1 all the same.
const VALID_WEBHOOK = { url: "http://127.0.0.1:9/hooks", events: ["*"] };
const VALID_EVENT = { type: "invoice.paid", data: { invoice_id: "in_1" } };

/** A body each route accepts; a route not listed gets `{}` (or none when it declares no body). */
const VALID_BODIES: Record<string, unknown> = {
  "POST /v1/webhooks": VALID_WEBHOOK,
  "PATCH /v1/webhooks/:id": { name: "renamed" },
  "PUT /v1/webhooks/:id": { name: "renamed" },
  "POST /v1/webhooks/:id/rotate-secret": { grace_period_seconds: 60 },
  "POST /v1/webhooks/:id/recover": { since: "2000-01-01T00:00:00.000Z" },
  "POST /v1/events": VALID_EVENT,
  "POST /v1/events/batch": { events: [VALID_EVENT] },
  "POST /v1/portal-sessions": { ttl_seconds: 600 },
  "POST /v1/portal-sessions/revoke": {},
};

let t: TestDaemon;
beforeEach(async () => {
  t = await createTestDaemon({ keysYaml: KEYS_YAML });
});
afterEach(async () => {
  await t.close();
});

/** Creates the object a route's `:id` names, owned by tenant acme, and returns its id. */
const FIXTURES: Record<string, () => Promise<string>> = {
  webhooks: async () => {
    const created = await t.request("POST", "/v1/webhooks", { key: ACME_KEY, body: VALID_WEBHOOK });
    expect(created.status).toBe(201);
    return created.body.id;
  },
  events: async () => {
    const published = await t.request("POST", "/v1/events", { key: ACME_KEY, body: VALID_EVENT });
    expect(published.status).toBe(202);
    return published.body.id;
  },
  "portal-sessions": async () => {
    const minted = await t.request("POST", "/v1/portal-sessions", { key: ACME_KEY, body: {} });
    expect(minted.status).toBe(201);
    return minted.body.id;
  },
  deliveries: async () => {
    const webhookId = await fixture("webhooks");
    const eventId = await fixture("events");
    const list = await t.request("GET", `/v1/deliveries?event_id=${eventId}&webhook_id=${webhookId}`, {
      key: ACME_KEY,
    });
    expect(list.body.data).toHaveLength(1);
    return list.body.data[0].id;
  },
};
const fixture = (resource: string) => (FIXTURES[resource] as () => Promise<string>)();

const resourceOf = (route: RouteSpec) => /^\/v1\/([a-z-]+)\/:id(\/|$)/.exec(route.path)?.[1];

async function concretePath(route: RouteSpec): Promise<string> {
  if (!hasParams(route)) return route.path;
  const resource = resourceOf(route);
  if (resource === undefined || !FIXTURES[resource]) {
    throw new Error(`no fixture for the path parameters of ${label(route)}: add one to FIXTURES`);
  }
  return route.path.replace(":id", await fixture(resource));
}

async function send(route: RouteSpec, path: string, options: RequestOptions): Promise<TestResponse> {
  const body = VALID_BODIES[label(route)] ?? (route.body ? {} : undefined);
  return t.request(route.method.toUpperCase(), path, { ...(body !== undefined ? { body } : {}), ...options });
}

/** The error shape of SPEC §2 Errors, `details` only on 422. */
function expectError(res: TestResponse, status: number, code: string): void {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
  expect(res.headers.get("content-type")).toContain("application/json");
  expect(Object.keys(res.body)).toEqual(["error"]);
  expect(typeof res.body.error.message).toBe("string");
  expect(res.body.error.message.length).toBeGreaterThan(0);
  if (status === 422) expect(Array.isArray(res.body.error.details)).toBe(true);
  else expect(res.body.error.details).toBeUndefined();
}

/** Authenticated and authorised: whatever the route then answers, it is not a 401, a 403 or a 5xx. */
function expectLetIn(res: TestResponse, who: unknown): void {
  expect([who, res.status === 401 || res.status === 403 || res.status >= 500]).toEqual([who, false]);
}

const scopesOf = (key: string): readonly string[] =>
  t.config.auth.keys.find((k) => k.key === key)?.scopes ?? [];
const lacks = (key: string, scope: string) => !scopesOf(key).includes("*") && !scopesOf(key).includes(scope);
const withoutScope = (scope: string) =>
  [READER_KEY, NOSCOPE_KEY, ...SCOPES.map(allBut)].filter((key) => lacks(key, scope));

test("the routes are discovered (the matrix below is not vacuous)", () => {
  const names = ROUTES.map(label);
  for (const expected of [
    "GET /healthz",
    "GET /v1/event-types",
    "POST /v1/webhooks",
    "GET /v1/webhooks",
    "GET /v1/webhooks/:id",
    "PATCH /v1/webhooks/:id",
    "PUT /v1/webhooks/:id",
    "DELETE /v1/webhooks/:id",
    "POST /v1/webhooks/:id/rotate-secret",
  ]) {
    expect(names).toContain(expected);
  }
  // A route whose path names an object must come with a fixture, or the tenancy checks would skip it.
  for (const route of ROUTES.filter(hasParams)) {
    expect([label(route), FIXTURES[resourceOf(route) ?? ""] !== undefined]).toEqual([label(route), true]);
  }
});

describe.each(AUTHED.map((r) => [label(r), r] as const))("%s", (_name, route) => {
  test("no credentials: 401 unauthorized with WWW-Authenticate", async () => {
    const path = await concretePath(route);
    for (const headers of [{}, { "x-api-key": "" }, { "x-api-key": "   " }] as Record<string, string>[]) {
      const res = await send(route, path, { key: null, headers });
      expectError(res, 401, "unauthorized");
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
    }
  });

  test("a wrong or malformed credential: 401", async () => {
    const path = await concretePath(route);
    const basic = `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString("base64")}`;
    const attempts: RequestOptions[] = [
      { key: "not-a-configured-key-0123456789" },
      { key: `${ADMIN_KEY}x` },
      { key: ADMIN_KEY.toUpperCase() },
      { key: null, headers: { "x-api-key": "not-a-configured-key-0123456789" } },
      { key: null, headers: { authorization: basic } },
      { key: null, headers: { authorization: `Basic ${ADMIN_KEY}` } },
      { key: null, headers: { authorization: ADMIN_KEY } },
      { key: null, headers: { authorization: "Bearer" } },
      { key: null, headers: { authorization: "Bearer " } },
      { key: null, headers: { authorization: `Bearer ${ADMIN_KEY} ${ADMIN_KEY}` } },
      // A malformed Authorization header is not rescued by a valid X-API-Key.
      { key: null, headers: { authorization: basic, "x-api-key": ADMIN_KEY } },
    ];
    for (const attempt of attempts) {
      const res = await send(route, path, attempt);
      expect([attempt, res.status]).toEqual([attempt, 401]);
      expectError(res, 401, "unauthorized");
      // The presented credential is never echoed back (it may be a real key sent to the wrong place).
      for (const secret of ["not-a-configured-key-0123456789", ADMIN_KEY, ADMIN_KEY.toUpperCase()])
        expect([attempt, res.text.includes(secret)]).toEqual([attempt, false]);
    }
  });

  test("X-API-Key works the same as Bearer", async () => {
    const viaBearer = await send(route, await concretePath(route), {});
    const viaHeader = await send(route, await concretePath(route), {
      key: null,
      headers: { "x-api-key": ADMIN_KEY },
    });
    expectLetIn(viaBearer, "bearer");
    expect(viaHeader.status).toBe(viaBearer.status);
    const lower = await send(route, await concretePath(route), {
      key: null,
      headers: { authorization: `bearer ${ADMIN_KEY}` },
    });
    expect(lower.status).toBe(viaBearer.status);
    if (route.auth !== "any") {
      const [weak] = withoutScope(route.auth as string);
      const bearer = await send(route, await concretePath(route), { key: weak as string });
      const header = await send(route, await concretePath(route), {
        key: null,
        headers: { "x-api-key": weak as string },
      });
      expect([bearer.status, header.status]).toEqual([403, 403]);
    }
  });

  if (route.auth !== "any") {
    test(`a key without ${route.auth}: 403 forbidden`, async () => {
      const keys = withoutScope(route.auth as string);
      expect(keys.length).toBeGreaterThan(0);
      const path = await concretePath(route);
      for (const key of keys) {
        const res = await send(route, path, { key });
        expect([key, res.status]).toEqual([key, 403]);
        expectError(res, 403, "forbidden");
      }
    });
  }

  if (route.auth === "any") {
    test("any valid key, whatever its scopes, is let in", async () => {
      for (const key of [ADMIN_KEY, READER_KEY, NOSCOPE_KEY, ACME_KEY, ...SCOPES.map(allBut)]) {
        expectLetIn(await send(route, await concretePath(route), { key }), key);
      }
    });
  }

  if (hasParams(route)) {
    test("another tenant's object is a 404, never a 403 or a 2xx; its owner and the admin see it", async () => {
      const path = await concretePath(route);
      const objectPath = (/^\/v1\/[a-z-]+\/[^/]+/.exec(path) as RegExpExecArray)[0];
      const before = await t.request("GET", objectPath, { key: ACME_KEY });
      expect(before.status).toBe(200);
      const res = await send(route, path, { key: GLOBEX_KEY });
      expectError(res, 404, "not_found");
      const after = await t.request("GET", objectPath, { key: ACME_KEY });
      expect(after.body).toEqual(before.body);

      for (const key of [ACME_KEY, ADMIN_KEY]) {
        const own = await send(route, await concretePath(route), { key });
        expect([key, own.status]).not.toEqual([key, 404]);
        expectLetIn(own, key);
      }
    });

    test("an id that does not exist is a 404 for every key", async () => {
      const path = route.path.replace(":id", "x_00000000000000000000000000");
      for (const key of [ADMIN_KEY, ACME_KEY, GLOBEX_KEY])
        expectError(await send(route, path, { key }), 404, "not_found");
    });
  }
});

describe.each(PUBLIC.map((r) => [label(r), r] as const))("%s (no authentication)", (_name, route) => {
  test("answers without a key, and ignores a wrong one", async () => {
    // (/readyz may say 503 here: the dispatcher only runs once the daemon is started.)
    const bare = await t.request(route.method.toUpperCase(), route.path, { key: null });
    expect([401, 403]).not.toContain(bare.status);
    expect(bare.headers.get("www-authenticate")).toBeNull();
    if (route.path !== "/readyz") expect(bare.status).toBe(200);
    const wrong = await t.request(route.method.toUpperCase(), route.path, {
      key: "not-a-configured-key-0123456789",
    });
    expect(wrong.status).toBe(bare.status);
  });
});

/** The zod object shape behind a route's body or query, when it is a plain (strict) object. */
const shapeOf = (schema: unknown): Record<string, unknown> =>
  (schema as { shape?: Record<string, unknown> } | undefined)?.shape ?? {};
const CREATES_WITH_TENANT = ROUTES.filter(
  (r) => r.method === "post" && !hasParams(r) && "tenant_id" in shapeOf(r.body),
);
const LISTS_WITH_TENANT = ROUTES.filter((r) => r.method === "get" && "tenant_id" in shapeOf(r.query));

describe.each(CREATES_WITH_TENANT.map((r) => [label(r), r] as const))("%s with tenant_id", (_name, route) => {
  test("a tenant key naming another tenant: 403; naming its own: accepted", async () => {
    const body = { ...(VALID_BODIES[label(route)] as object) };
    expectError(
      await send(route, route.path, { key: ACME_KEY, body: { ...body, tenant_id: "globex" } }),
      403,
      "forbidden",
    );
    expectLetIn(
      await send(route, route.path, { key: ACME_KEY, body: { ...body, tenant_id: "acme" } }),
      "acme",
    );
    expectLetIn(
      await send(route, route.path, { key: ADMIN_KEY, body: { ...body, tenant_id: "globex" } }),
      "admin",
    );
  });
});

describe.each(LISTS_WITH_TENANT.map((r) => [label(r), r] as const))("%s?tenant_id", (_name, route) => {
  test("a tenant key naming another tenant: 403; naming its own: 200", async () => {
    expectError(
      await t.request("GET", `${route.path}?tenant_id=globex`, { key: ACME_KEY }),
      403,
      "forbidden",
    );
    expect((await t.request("GET", `${route.path}?tenant_id=acme`, { key: ACME_KEY })).status).toBe(200);
    expect((await t.request("GET", `${route.path}?tenant_id=globex`, { key: ADMIN_KEY })).status).toBe(200);
  });
});

test("tenant_id is checked on every create and list route that takes one", () => {
  expect(CREATES_WITH_TENANT.map(label)).toContain("POST /v1/webhooks");
  expect(CREATES_WITH_TENANT.map(label)).toContain("POST /v1/portal-sessions");
  expect(LISTS_WITH_TENANT.map(label)).toContain("GET /v1/webhooks");
  expect(LISTS_WITH_TENANT.map(label)).toContain("GET /v1/stats");
  expect(LISTS_WITH_TENANT.map(label)).toContain("GET /v1/portal-sessions");
});

describe("tenant_id", () => {
  test("a tenant key creating in another tenant: 403, and nothing is created", async () => {
    const forged = await t.request("POST", "/v1/webhooks", {
      key: ACME_KEY,
      body: { ...VALID_WEBHOOK, tenant_id: "globex" },
    });
    expectError(forged, 403, "forbidden");
    const own = await t.request("POST", "/v1/webhooks", {
      key: ACME_KEY,
      body: { ...VALID_WEBHOOK, tenant_id: "acme" },
    });
    expect(own.status).toBe(201);
    expect(own.body.tenant_id).toBe("acme");
    const globex = await t.request("GET", "/v1/webhooks?tenant_id=globex");
    expect(globex.body.data).toEqual([]);
  });

  test("a tenant key listing another tenant: 403; its own tenant_id is allowed", async () => {
    const other = await t.request("GET", "/v1/webhooks?tenant_id=globex", { key: ACME_KEY });
    expectError(other, 403, "forbidden");
    expect((await t.request("GET", "/v1/webhooks?tenant_id=acme", { key: ACME_KEY })).status).toBe(200);
  });

  test("an admin without tenant_id creates in default; with one, in that tenant", async () => {
    const plain = await t.request("POST", "/v1/webhooks", { key: ADMIN_KEY, body: VALID_WEBHOOK });
    expect(plain.status).toBe(201);
    expect(plain.body.tenant_id).toBe("default");
    const explicit = await t.request("POST", "/v1/webhooks", {
      key: ADMIN_KEY,
      body: { ...VALID_WEBHOOK, tenant_id: "globex" },
    });
    expect(explicit.body.tenant_id).toBe("globex");
    const seen = await t.request("GET", `/v1/webhooks/${explicit.body.id}`, { key: GLOBEX_KEY });
    expect(seen.status).toBe(200);
    const hidden = await t.request("GET", `/v1/webhooks/${plain.body.id}`, { key: GLOBEX_KEY });
    expectError(hidden, 404, "not_found");
  });
});
