// Portal sessions (SPEC §2 Portal sessions) through the real app on either driver: minting rules,
// the token as a /v1 credential limited by its capabilities, tenant and mode, hash-only storage,
// listing without tokens, revocation and expiry at once (on another instance too, on PostgreSQL),
// and a rate-limit bucket of its own.
import { afterEach, describe, expect, test } from "bun:test";
import { type Capability, scopesOfCapabilities } from "../../src/domain/portal.ts";
import { sha256Hex } from "../../src/domain/secrets.ts";
import type { RouteSpec } from "../../src/http/api.ts";
import type { ManualClock } from "../../src/runtime/clock.ts";
import {
  ACME_KEY,
  ACME_TEST_KEY,
  ADMIN_KEY,
  createTestDaemon,
  GLOBEX_KEY,
  READER_KEY,
  TEST_KEYS_YAML,
  type TestDaemon,
} from "../support/daemon.ts";

let t: TestDaemon;
const others: TestDaemon[] = [];
afterEach(async () => {
  for (const other of others.splice(0)) await other.close();
  await t.close();
});

const start = async (yaml = "") => {
  t = await createTestDaemon({ yaml: `server:\n  public_url: https://hooks.example.test/base/\n${yaml}` });
  return t;
};

// biome-ignore lint/suspicious/noExplicitAny: API bodies are inspected freely
type Json = any;

async function mint(body: Record<string, unknown>, key = ACME_KEY): Promise<Json> {
  const res = await t.request("POST", "/v1/portal-sessions", { key, body });
  expect([res.status, res.body]).toEqual([201, expect.anything()]);
  return res.body;
}

async function world(key: string, tenant: string) {
  const webhook = await t.request("POST", "/v1/webhooks", {
    key,
    body: { url: `http://127.0.0.1:9/${tenant}`, events: ["*"] },
  });
  expect(webhook.status).toBe(201);
  const event = await t.request("POST", "/v1/events", { key, body: { type: "invoice.paid", data: {} } });
  expect(event.status).toBe(202);
  const deliveries = await t.request("GET", `/v1/deliveries?event_id=${event.body.id}`, { key });
  return {
    webhook: webhook.body.id as string,
    event: event.body.id as string,
    delivery: deliveries.body.data[0].id as string,
  };
}

describe("minting", () => {
  test("a tenant credential mints for its own tenant: the answer, its link and its defaults", async () => {
    await start();
    const now = t.clock.now();
    const created = await mint({});
    expect(Object.keys(created).sort()).toEqual(
      ["capabilities", "expires_at", "id", "mode", "tenant_id", "token", "url"].sort(),
    );
    expect(created.id).toMatch(/^ps_[0-9A-Z]{26}$/);
    expect(created.token).toMatch(/^hkp_[A-Za-z0-9_-]{43}$/);
    expect(created.url).toBe(`https://hooks.example.test/base/portal/#token=${created.token}`);
    expect(created.tenant_id).toBe("acme");
    expect(created.mode).toBe("live");
    expect(created.capabilities).toEqual(["read", "manage_webhooks", "replay"]);
    expect(Date.parse(created.expires_at)).toBe(now + 3600_000);
    // Naming its own tenant is the same; another tenant is a 403 and mints nothing.
    expect((await mint({ tenant_id: "acme", ttl_seconds: 60 })).tenant_id).toBe("acme");
    const other = await t.request("POST", "/v1/portal-sessions", {
      key: ACME_KEY,
      body: { tenant_id: "globex" },
    });
    expect([other.status, other.body.error.code]).toEqual([403, "forbidden"]);
    const globex = await t.request("GET", "/v1/portal-sessions", { key: GLOBEX_KEY });
    expect(globex.body.data).toEqual([]);
  });

  test("an admin must name the tenant (422); with one, the session is that tenant's", async () => {
    await start();
    for (const body of [undefined, {}, { mode: "live" }]) {
      const res = await t.request("POST", "/v1/portal-sessions", {
        key: ADMIN_KEY,
        ...(body ? { body } : {}),
      });
      expect([res.status, res.body.error.details]).toEqual([
        422,
        [expect.objectContaining({ path: "tenant_id" })],
      ]);
    }
    const created = await mint({ tenant_id: "globex", mode: "test", capabilities: ["replay"] }, ADMIN_KEY);
    expect([created.tenant_id, created.mode, created.capabilities]).toEqual([
      "globex",
      "test",
      ["read", "replay"],
    ]);
  });

  test("ttl_seconds 60-86400, capabilities from the three, read always included; else 422 naming the field", async () => {
    await start();
    const now = t.clock.now();
    expect(Date.parse((await mint({ ttl_seconds: 60 })).expires_at)).toBe(now + 60_000);
    expect(Date.parse((await mint({ ttl_seconds: 86_400 })).expires_at)).toBe(now + 86_400_000);
    expect((await mint({ capabilities: [] })).capabilities).toEqual(["read"]);
    expect((await mint({ capabilities: ["replay", "read", "replay"] })).capabilities).toEqual([
      "read",
      "replay",
    ]);
    for (const [body, path] of [
      [{ ttl_seconds: 59 }, "ttl_seconds"],
      [{ ttl_seconds: 86_401 }, "ttl_seconds"],
      [{ ttl_seconds: 90.5 }, "ttl_seconds"],
      [{ ttl_seconds: "3600" }, "ttl_seconds"],
      [{ capabilities: ["publish"] }, "capabilities[0]"],
      [{ capabilities: "read" }, "capabilities"],
      [{ mode: "staging" }, "mode"],
      [{ tenant_id: "no spaces" }, "tenant_id"],
      [{ extra: 1 }, "extra"],
    ] as const) {
      const res = await t.request("POST", "/v1/portal-sessions", { key: ACME_KEY, body });
      expect([body, res.status, res.body.error.details?.[0]?.path]).toEqual([body, 422, path]);
    }
  });

  test("the answer that carries the token is never cached: Cache-Control no-store", async () => {
    await start();
    for (const [key, body] of [
      [ACME_KEY, {}],
      [ADMIN_KEY, { tenant_id: "globex", mode: "test" }],
    ] as const) {
      const res = await t.request("POST", "/v1/portal-sessions", { key, body });
      expect([res.status, res.headers.get("cache-control")]).toEqual([201, "no-store"]);
    }
  });

  test("only the token's SHA-256 is stored; lists and reads never show the token", async () => {
    await start();
    const created = await mint({});
    const { rows } = await t.daemon.store.exportRows("portal_sessions", null, 100);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.token_hash).toBe(sha256Hex(created.token));
    const stored = JSON.stringify(rows);
    expect(stored).not.toContain(created.token);
    expect(stored).not.toContain(created.token.slice(4));
    const list = await t.request("GET", "/v1/portal-sessions", { key: ACME_KEY });
    const one = await t.request("GET", `/v1/portal-sessions/${created.id}`, { key: ACME_KEY });
    for (const text of [list.text, one.text]) expect(text).not.toContain(created.token.slice(4));
    expect(one.body).toEqual({
      id: created.id,
      kind: "portal",
      tenant_id: "acme",
      mode: "live",
      capabilities: created.capabilities,
      created_at: expect.any(String),
      expires_at: created.expires_at,
    });
    expect(t.logs.join("\n")).not.toContain(created.token.slice(4));
  });
});

describe("the token on /v1", () => {
  test("it authenticates, limited to its tenant: another tenant's objects are 404s and absent from lists", async () => {
    await start();
    const acme = await world(ACME_KEY, "acme");
    const globex = await world(GLOBEX_KEY, "globex");
    const { token } = await mint({});
    const list = await t.request("GET", "/v1/webhooks", { key: token });
    expect(list.body.data.map((w: Json) => w.id)).toEqual([acme.webhook]);
    expect((await t.request("GET", `/v1/webhooks/${acme.webhook}`, { key: token })).status).toBe(200);
    for (const path of [
      `/v1/webhooks/${globex.webhook}`,
      `/v1/events/${globex.event}`,
      `/v1/deliveries/${globex.delivery}`,
    ])
      expect([path, (await t.request("GET", path, { key: token })).status]).toEqual([path, 404]);
    const forged = await t.request("GET", "/v1/webhooks?tenant_id=globex", { key: token });
    expect(forged.status).toBe(403);
    // X-API-Key carries it the same way.
    const header = await t.request("GET", "/v1/webhooks", { key: null, headers: { "x-api-key": token } });
    expect(header.status).toBe(200);
  });

  test("each declared route lets a session in exactly when its capabilities give the route's scope", async () => {
    await start();
    const acme = await world(ACME_KEY, "acme");
    const routes = t.daemon.routes.filter((r: RouteSpec) => r.auth !== null);
    const capabilitySets: Capability[][] = [
      ["read"],
      ["read", "manage_webhooks"],
      ["read", "replay"],
      ["read", "manage_webhooks", "replay"],
    ];
    for (const capabilities of capabilitySets) {
      const { token } = await mint({ capabilities });
      const scopes = scopesOfCapabilities(capabilities);
      for (const route of routes) {
        const path = route.path
          .replace("/v1/webhooks/:id", `/v1/webhooks/${acme.webhook}`)
          .replace("/v1/events/:id", `/v1/events/${acme.event}`)
          .replace("/v1/deliveries/:id", `/v1/deliveries/${acme.delivery}`)
          .replace("/v1/portal-sessions/:id", "/v1/portal-sessions/ps_00000000000000000000000000");
        const needed = route.sessionAuth ?? route.auth;
        const allowed = needed === "any" || scopes.has(needed as never);
        const res = await t.request(route.method.toUpperCase(), path, { key: token, body: {} });
        const where = `${capabilities.join("+")} ${route.method.toUpperCase()} ${route.path}`;
        if (allowed) expect([where, res.status === 401 || res.status === 403]).toEqual([where, false]);
        else expect([where, res.status, res.body?.error?.code]).toEqual([where, 403, "forbidden"]);
      }
    }
  });

  test("never events:write nor portal:write; the test action needs replay, editing needs manage_webhooks", async () => {
    await start();
    const acme = await world(ACME_KEY, "acme");
    const manager = (await mint({ capabilities: ["manage_webhooks"] })).token;
    const replayer = (await mint({ capabilities: ["replay"] })).token;
    const all = (await mint({})).token;
    for (const token of [manager, replayer, all]) {
      expect(
        (await t.request("POST", "/v1/events", { key: token, body: { type: "a.b", data: {} } })).status,
      ).toBe(403);
      expect((await t.request("POST", "/v1/portal-sessions", { key: token, body: {} })).status).toBe(403);
      expect((await t.request("GET", "/v1/portal-sessions", { key: token })).status).toBe(403);
    }
    const test = (token: string) => t.request("POST", `/v1/webhooks/${acme.webhook}/test`, { key: token });
    expect((await test(manager)).status).toBe(403);
    expect((await test(replayer)).status).toBe(202);
    expect((await test(all)).status).toBe(202);
    const patch = (token: string) =>
      t.request("PATCH", `/v1/webhooks/${acme.webhook}`, { key: token, body: { name: "renamed" } });
    expect((await patch(replayer)).status).toBe(403);
    expect((await patch(manager)).status).toBe(200);
    const recover = (token: string) =>
      t.request("POST", `/v1/webhooks/${acme.webhook}/recover`, {
        key: token,
        body: { since: "2000-01-01" },
      });
    expect((await recover(manager)).status).toBe(403);
    expect((await recover(replayer)).status).toBe(202);
    // An API key keeps its own rule: webhooks:write tests.
    expect((await t.request("POST", `/v1/webhooks/${acme.webhook}/test`, { key: READER_KEY })).status).toBe(
      403,
    );
  });

  test("a session has its own rate-limit bucket", async () => {
    await start("rate_limits:\n  read: 3");
    const { token } = await mint({});
    for (let i = 0; i < 3; i++)
      expect((await t.request("GET", "/v1/webhooks", { key: ACME_KEY })).status).toBe(200);
    expect((await t.request("GET", "/v1/webhooks", { key: ACME_KEY })).status).toBe(429);
    for (let i = 0; i < 3; i++)
      expect((await t.request("GET", "/v1/webhooks", { key: token })).status).toBe(200);
    const refused = await t.request("GET", "/v1/webhooks", { key: token });
    expect([refused.status, refused.headers.get("retry-after") !== null]).toEqual([429, true]);
  });
});

describe("listing, revocation and expiry", () => {
  test("lists are tenant-scoped, newest first, paginated; an admin sees every tenant's or one", async () => {
    await start();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await mint({})).id);
      (t.clock as ManualClock).advance(1);
    }
    const globexSession = (await mint({}, GLOBEX_KEY)).id;
    const first = await t.request("GET", "/v1/portal-sessions?limit=2", { key: ACME_KEY });
    expect(first.body.data.map((s: Json) => s.id)).toEqual([ids[4], ids[3]]);
    expect([first.body.has_next_page, first.body.has_previous_page]).toEqual([true, false]);
    const second = await t.request("GET", `/v1/portal-sessions?limit=2&after=${first.body.end_cursor}`, {
      key: ACME_KEY,
    });
    expect(second.body.data.map((s: Json) => s.id)).toEqual([ids[2], ids[1]]);
    expect(second.body.has_previous_page).toBe(true);
    const admin = await t.request("GET", "/v1/portal-sessions?limit=100", { key: ADMIN_KEY });
    expect(admin.body.data).toHaveLength(6);
    const onlyGlobex = await t.request("GET", "/v1/portal-sessions?tenant_id=globex", { key: ADMIN_KEY });
    expect(onlyGlobex.body.data.map((s: Json) => s.id)).toEqual([globexSession]);
    expect((await t.request("GET", `/v1/portal-sessions/${globexSession}`, { key: ACME_KEY })).status).toBe(
      404,
    );
    expect(
      (await t.request("DELETE", `/v1/portal-sessions/${globexSession}`, { key: ACME_KEY })).status,
    ).toBe(404);
    expect((await t.request("GET", "/v1/portal-sessions?after=nonsense", { key: ACME_KEY })).status).toBe(
      422,
    );
  });

  test("DELETE revokes one: its token is a 401 at once, the others still work", async () => {
    await start();
    const one = await mint({});
    const two = await mint({});
    expect((await t.request("GET", "/v1/webhooks", { key: one.token })).status).toBe(200);
    const deleted = await t.request("DELETE", `/v1/portal-sessions/${one.id}`, { key: ACME_KEY });
    expect([deleted.status, deleted.text]).toEqual([204, ""]);
    const refused = await t.request("GET", "/v1/webhooks", { key: one.token });
    expect([refused.status, refused.body.error.code]).toEqual([401, "unauthorized"]);
    expect(refused.headers.get("www-authenticate")).toContain("invalid_token");
    expect((await t.request("GET", "/v1/webhooks", { key: two.token })).status).toBe(200);
    expect((await t.request("DELETE", `/v1/portal-sessions/${one.id}`, { key: ACME_KEY })).status).toBe(404);
    const list = await t.request("GET", "/v1/portal-sessions", { key: ACME_KEY });
    expect(list.body.data.map((s: Json) => s.id)).toEqual([two.id]);
  });

  test("revoke: a tenant's every session; a tenant credential only its own; an admin without tenant_id, all", async () => {
    await start();
    const acme = [await mint({}), await mint({})];
    const globex = await mint({}, GLOBEX_KEY);
    const other = await t.request("POST", "/v1/portal-sessions/revoke", {
      key: ACME_KEY,
      body: { tenant_id: "globex" },
    });
    expect(other.status).toBe(403);
    const own = await t.request("POST", "/v1/portal-sessions/revoke", { key: ACME_KEY });
    expect([own.status, own.body]).toEqual([200, { revoked: 2 }]);
    for (const s of acme) expect((await t.request("GET", "/v1/webhooks", { key: s.token })).status).toBe(401);
    expect((await t.request("GET", "/v1/webhooks", { key: globex.token })).status).toBe(200);
    const again = await t.request("POST", "/v1/portal-sessions/revoke", {
      key: ADMIN_KEY,
      body: { tenant_id: "acme" },
    });
    expect(again.body).toEqual({ revoked: 0 });
    await mint({});
    const all = await t.request("POST", "/v1/portal-sessions/revoke", { key: ADMIN_KEY, body: {} });
    expect(all.body).toEqual({ revoked: 2 });
    expect((await t.request("GET", "/v1/webhooks", { key: globex.token })).status).toBe(401);
  });

  test("revoke is per mode: a tenant credential its own mode's; an admin the mode it names, or every mode", async () => {
    await start();
    const alive = async (s: Json) =>
      (await t.request("GET", "/v1/webhooks", { key: s.token })).status === 200;
    const live = await mint({});
    const sandbox = await mint({}, ACME_TEST_KEY);
    expect(sandbox.mode).toBe("test");
    // acme's live key revokes acme's live sessions only; its test one still works.
    const own = await t.request("POST", "/v1/portal-sessions/revoke", { key: ACME_KEY });
    expect([own.status, own.body]).toEqual([200, { revoked: 1 }]);
    expect([await alive(live), await alive(sandbox)]).toEqual([false, true]);
    // An admin naming a mode revokes that mode's only.
    const liveAgain = await mint({});
    const named = await t.request("POST", "/v1/portal-sessions/revoke", {
      key: ADMIN_KEY,
      body: { tenant_id: "acme", mode: "test" },
    });
    expect(named.body).toEqual({ revoked: 1 });
    expect([await alive(liveAgain), await alive(sandbox)]).toEqual([true, false]);
    // An admin naming none revokes every mode's, whatever its own mode.
    const sandboxAgain = await mint({}, ACME_TEST_KEY);
    const all = await t.request("POST", "/v1/portal-sessions/revoke", { key: ADMIN_KEY, body: {} });
    expect(all.body).toEqual({ revoked: 2 });
    expect([await alive(liveAgain), await alive(sandboxAgain)]).toEqual([false, false]);
  });

  test("an expired session is a 401 from its expiry on, and leaves the list; retention removes its row", async () => {
    await start();
    const clock = t.clock as ManualClock;
    const { token, id } = await mint({ ttl_seconds: 60 });
    clock.advance(59_999);
    expect((await t.request("GET", "/v1/webhooks", { key: token })).status).toBe(200);
    clock.advance(1);
    expect((await t.request("GET", "/v1/webhooks", { key: token })).status).toBe(401);
    expect((await t.request("GET", "/v1/portal-sessions", { key: ACME_KEY })).body.data).toEqual([]);
    expect((await t.request("GET", `/v1/portal-sessions/${id}`, { key: ACME_KEY })).status).toBe(404);
    expect((await t.request("DELETE", `/v1/portal-sessions/${id}`, { key: ACME_KEY })).status).toBe(404);
    expect((await t.daemon.store.exportRows("portal_sessions", null, 10)).rows).toHaveLength(1);
    await t.daemon.store.sweepRetention(clock.now() + 1, 100);
    expect((await t.daemon.store.exportRows("portal_sessions", null, 10)).rows).toHaveLength(0);
  });

  test("a made-up or altered session token is a 401 that says the session is not valid", async () => {
    await start();
    const { token } = await mint({});
    for (const key of [
      `${token}x`,
      `hkp_${"A".repeat(43)}`,
      `hkc_${"A".repeat(43)}`,
      token.replace("hkp_", "hkc_"),
    ]) {
      const res = await t.request("GET", "/v1/webhooks", { key });
      expect([key.slice(0, 8), res.status, res.body.error.message]).toEqual([
        key.slice(0, 8),
        401,
        expect.stringContaining("session"),
      ]);
    }
  });
});

describe("GET /v1/whoami", () => {
  test("says what the credential is: a session's tenant, mode, scopes, capabilities and expiry; a key's", async () => {
    await start();
    const created = await mint({ capabilities: ["replay"], ttl_seconds: 600 });
    const me = await t.request("GET", "/v1/whoami", { key: created.token });
    expect([me.status, me.headers.get("cache-control")]).toEqual([200, "no-store"]);
    expect(me.body).toEqual({
      kind: "portal",
      name: `portal-session:${created.id}`,
      tenant_id: "acme",
      mode: "live",
      scopes: ["deliveries:read", "deliveries:write", "events:read", "webhooks:read"],
      capabilities: ["read", "replay"],
      session_id: created.id,
      expires_at: created.expires_at,
    });
    expect(me.text).not.toContain(created.token.slice(4));
    const key = await t.request("GET", "/v1/whoami", { key: ACME_KEY });
    expect(key.body).toEqual({
      kind: "key",
      name: "acme",
      tenant_id: "acme",
      mode: "live",
      scopes: ["*"],
      capabilities: null,
      session_id: null,
      expires_at: null,
    });
    expect((await t.request("GET", "/v1/whoami", { key: READER_KEY })).body.tenant_id).toBeNull();
    expect((await t.request("GET", "/v1/whoami", { key: null })).status).toBe(401);
    await t.request("DELETE", `/v1/portal-sessions/${created.id}`, { key: ACME_KEY });
    expect((await t.request("GET", "/v1/whoami", { key: created.token })).status).toBe(401);
  });
});

describe("keys that look like session tokens", () => {
  test("a configured key starting with hkp_ is still that key", async () => {
    t = await createTestDaemon({
      keysYaml: `${TEST_KEYS_YAML.trimEnd()}\n    - { name: lookalike, key: hkp_configured-key-0123456789, scopes: [webhooks:read] }`,
    });
    const res = await t.request("GET", "/v1/webhooks", { key: "hkp_configured-key-0123456789" });
    expect(res.status).toBe(200);
    expect(
      (await t.request("POST", "/v1/webhooks", { key: "hkp_configured-key-0123456789", body: {} })).status,
    ).toBe(403);
  });
});

describe("several instances", () => {
  test.skipIf(process.env.HOOKD_TEST_DRIVER !== "postgres")(
    "a session minted on one instance works on another, and a revocation on one is a 401 on the other at once",
    async () => {
      await start();
      const other = await createTestDaemon({ databaseUrl: t.databaseUrl as string, clock: t.clock });
      others.push(other);
      const one = await mint({});
      const two = await mint({});
      expect((await other.request("GET", "/v1/webhooks", { key: one.token })).status).toBe(200);
      expect((await other.request("DELETE", `/v1/portal-sessions/${one.id}`, { key: ACME_KEY })).status).toBe(
        204,
      );
      expect((await t.request("GET", "/v1/webhooks", { key: one.token })).status).toBe(401);
      expect((await other.request("GET", "/v1/webhooks", { key: two.token })).status).toBe(200);
      expect((await t.request("POST", "/v1/portal-sessions/revoke", { key: ACME_KEY })).body).toEqual({
        revoked: 1,
      });
      expect((await other.request("GET", "/v1/webhooks", { key: two.token })).status).toBe(401);
    },
  );
});
