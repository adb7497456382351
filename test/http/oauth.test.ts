// OAuth2 client credentials (SPEC §2, RFC 6749 §4.4): POST /oauth/token with form and JSON bodies,
// Basic and body client authentication, every §5.2 error, scope narrowing, the client's tenant,
// expiry on the manual clock, tokens across a restart (removed client, changed secret), the
// per-client rate limit, no secret or token in debug logs, and a real OAuth2 client (oauth4webapi).
import { afterEach, describe, expect, test } from "bun:test";
import * as oauth from "oauth4webapi";
import { createManualClock } from "../../src/runtime/clock.ts";
import {
  ACME_KEY,
  ADMIN_KEY,
  createTestDaemon,
  type TestDaemon,
  type TestResponse,
} from "../support/daemon.ts";
import { TEST_DRIVER } from "../support/driver.ts";

const ROBOT_SECRET = "robot-secret-0123456789";
const READER_SECRET = "reader-secret-0123456789";
const ACME_SECRET = "acme-client-secret-0123456789";
/** Characters that RFC 6749 §2.3.1's form encoding changes, so Basic decoding is exercised. */
const ODD_SECRET = "p@ss w+rd%/:=&é-0123456789";

const clientsYaml = (robotSecret = ROBOT_SECRET, extra = "") => `
auth:
  oauth_clients:
    - { client_id: ci-robot, client_secret: ${JSON.stringify(robotSecret)}, scopes: ["*"] }
    - { client_id: reader.app, client_secret: ${READER_SECRET}, scopes: [webhooks:read, events:read] }
    - { client_id: acme-service, client_secret: ${ACME_SECRET}, scopes: ["*"], tenant: acme }
    - { client_id: odd~client, client_secret: ${JSON.stringify(ODD_SECRET)}, scopes: [webhooks:read] }
    - { client_id: acme-sandbox, client_secret: ${ACME_SECRET}, scopes: ["*"], tenant: acme, mode: test }
${extra}`;

const daemons: TestDaemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.close();
});

async function daemon(options: Parameters<typeof createTestDaemon>[0] = {}): Promise<TestDaemon> {
  const made = await createTestDaemon({ yaml: clientsYaml(), ...options });
  daemons.push(made);
  return made;
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;
/** RFC 6749 §2.3.1: each part form-encoded, then Basic. */
const formEncode = (text: string) => new URLSearchParams({ x: text }).toString().slice(2);
const basicEncoded = (id: string, secret: string) => basic(formEncode(id), formEncode(secret));

interface TokenRequest {
  form?: Record<string, string>;
  json?: unknown;
  raw?: string | Uint8Array;
  contentType?: string;
  authorization?: string;
}

function requestToken(t: TestDaemon, request: TokenRequest): Promise<TestResponse> {
  const headers: Record<string, string> = {};
  if (request.authorization !== undefined) headers.authorization = request.authorization;
  let rawBody: string | Uint8Array | undefined = request.raw;
  if (request.form) {
    rawBody = new URLSearchParams(request.form).toString();
    headers["content-type"] = "application/x-www-form-urlencoded";
  } else if (request.json !== undefined) {
    rawBody = JSON.stringify(request.json);
    headers["content-type"] = "application/json";
  }
  if (request.contentType !== undefined) headers["content-type"] = request.contentType;
  return t.request("POST", "/oauth/token", {
    key: null,
    headers,
    ...(rawBody !== undefined ? { rawBody } : {}),
  });
}

async function tokenFor(t: TestDaemon, id: string, secret: string, scope?: string): Promise<string> {
  const res = await requestToken(t, {
    authorization: basic(id, secret),
    form: { grant_type: "client_credentials", ...(scope !== undefined ? { scope } : {}) },
  });
  expect(res.status).toBe(200);
  return res.body.access_token;
}

function expectOAuthError(res: TestResponse, status: number, error: string): void {
  expect({ status: res.status, error: res.body?.error }).toEqual({ status, error });
  expect(Object.keys(res.body).sort()).toEqual(["error", "error_description"]);
  expect(typeof res.body.error_description).toBe("string");
  expect(res.body.error_description.length).toBeGreaterThan(0);
  expect(res.headers.get("content-type")).toContain("application/json");
  expect(res.headers.get("cache-control")).toBe("no-store");
  if (error === "invalid_client") expect(res.headers.get("www-authenticate")).toBe('Basic realm="hookd"');
  else expect(res.headers.get("www-authenticate")).toBeNull();
}

function expectUnauthorized(res: TestResponse): void {
  expect(res.status).toBe(401);
  expect(res.body).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
  expect(res.headers.get("www-authenticate")).toContain("Bearer");
}

const VALID_WEBHOOK = { url: "https://example.com/hooks", events: ["invoice.paid"] };
const GRANT = { grant_type: "client_credentials" };

describe("POST /oauth/token", () => {
  test("HTTP Basic with a form body: 200 with a Bearer token, no-store, that works on /v1", async () => {
    const t = await daemon();
    const res = await requestToken(t, { authorization: basic("ci-robot", ROBOT_SECRET), form: GRANT });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      access_token: expect.stringMatching(/^hkt_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/),
      token_type: "Bearer",
      expires_in: 3600,
      scope: "*",
    });
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("pragma")).toBe("no-cache");
    expect(res.headers.get("content-type")).toContain("application/json");
    const token = res.body.access_token;
    const created = await t.request("POST", "/v1/webhooks", { key: token, body: VALID_WEBHOOK });
    expect(created.status).toBe(201);
    expect(created.body.tenant_id).toBe("default");
    expect((await t.request("GET", `/v1/webhooks/${created.body.id}`, { key: token })).status).toBe(200);
    // Like a key, it may also come as X-API-Key.
    const viaHeader = await t.request("GET", "/v1/webhooks", { key: null, headers: { "x-api-key": token } });
    expect(viaHeader.status).toBe(200);
  });

  test("client_id and client_secret in a form body, and in a JSON body", async () => {
    const t = await daemon();
    const credentials = { client_id: "ci-robot", client_secret: ROBOT_SECRET };
    for (const request of [
      { form: { ...GRANT, ...credentials } },
      { json: { ...GRANT, ...credentials } },
      { json: { ...GRANT, ...credentials }, contentType: "application/json; charset=utf-8" },
    ]) {
      const res = await requestToken(t, request);
      expect([request, res.status]).toEqual([request, 200]);
      expect(res.body.token_type).toBe("Bearer");
      expect((await t.request("GET", "/v1/webhooks", { key: res.body.access_token })).status).toBe(200);
    }
  });

  test("Basic credentials are form-decoded (RFC 6749 §2.3.1), and also taken as sent", async () => {
    const t = await daemon();
    for (const authorization of [basicEncoded("odd~client", ODD_SECRET), basic("odd~client", ODD_SECRET)]) {
      const res = await requestToken(t, { authorization, form: GRANT });
      expect([authorization, res.status]).toEqual([authorization, 200]);
    }
    // A body client_id that repeats Basic's is allowed.
    const repeated = await requestToken(t, {
      authorization: basicEncoded("odd~client", ODD_SECRET),
      form: { ...GRANT, client_id: "odd~client" },
    });
    expect(repeated.status).toBe(200);
  });

  test("the Basic scheme name is case-insensitive (RFC 7617 §2)", async () => {
    const t = await daemon();
    const credentials = Buffer.from(`ci-robot:${ROBOT_SECRET}`).toString("base64");
    for (const scheme of ["basic", "BASIC", "bAsIc"]) {
      const res = await requestToken(t, { authorization: `${scheme} ${credentials}`, form: GRANT });
      expect([scheme, res.status]).toEqual([scheme, 200]);
    }
  });

  describe("RFC 6749 §5.2 errors", () => {
    const robot = basic("ci-robot", ROBOT_SECRET);
    const cases: [string, TokenRequest, number, string][] = [
      ["no grant_type", { authorization: robot, form: {} }, 400, "invalid_request"],
      ["an empty grant_type", { authorization: robot, form: { grant_type: "" } }, 400, "invalid_request"],
      ["no grant_type (JSON)", { authorization: robot, json: { scope: "*" } }, 400, "invalid_request"],
      [
        "grant_type password",
        { authorization: robot, form: { grant_type: "password" } },
        400,
        "unsupported_grant_type",
      ],
      [
        "grant_type authorization_code",
        { json: { grant_type: "authorization_code", client_id: "ci-robot", client_secret: ROBOT_SECRET } },
        400,
        "unsupported_grant_type",
      ],
      [
        "a wrong secret by Basic",
        { authorization: basic("ci-robot", `${ROBOT_SECRET}x`), form: GRANT },
        401,
        "invalid_client",
      ],
      [
        "a wrong secret in the body",
        { form: { ...GRANT, client_id: "ci-robot", client_secret: READER_SECRET } },
        401,
        "invalid_client",
      ],
      [
        "a wrong secret in a JSON body",
        { json: { ...GRANT, client_id: "ci-robot", client_secret: "" } },
        401,
        "invalid_client",
      ],
      [
        "an unknown client by Basic",
        { authorization: basic("nobody", ROBOT_SECRET), form: GRANT },
        401,
        "invalid_client",
      ],
      [
        "an unknown client in the body",
        { form: { ...GRANT, client_id: "nobody", client_secret: ROBOT_SECRET } },
        401,
        "invalid_client",
      ],
      ["no client authentication", { form: GRANT }, 401, "invalid_client"],
      ["a client_id without a secret", { form: { ...GRANT, client_id: "ci-robot" } }, 401, "invalid_client"],
      [
        "a Bearer Authorization header",
        { authorization: `Bearer ${ADMIN_KEY}`, form: GRANT },
        401,
        "invalid_client",
      ],
      ["malformed Basic", { authorization: "Basic !!!", form: GRANT }, 401, "invalid_client"],
      [
        "Basic without a colon",
        { authorization: `Basic ${btoa("ci-robot")}`, form: GRANT },
        401,
        "invalid_client",
      ],
      [
        "both Basic and a body secret",
        {
          authorization: robot,
          form: { ...GRANT, client_id: "ci-robot", client_secret: ROBOT_SECRET },
        },
        400,
        "invalid_request",
      ],
      [
        "Basic and a different body client_id",
        { authorization: robot, form: { ...GRANT, client_id: "reader.app" } },
        400,
        "invalid_request",
      ],
      [
        "a scope outside the client's",
        {
          authorization: basic("reader.app", READER_SECRET),
          form: { ...GRANT, scope: "webhooks:read webhooks:write" },
        },
        400,
        "invalid_scope",
      ],
      [
        "* for a client without it",
        { authorization: basic("reader.app", READER_SECRET), form: { ...GRANT, scope: "*" } },
        400,
        "invalid_scope",
      ],
      [
        "an unknown scope",
        { authorization: robot, form: { ...GRANT, scope: "everything" } },
        400,
        "invalid_scope",
      ],
      [
        "malformed JSON",
        { authorization: robot, raw: '{"grant_type":', contentType: "application/json" },
        400,
        "invalid_request",
      ],
      ["a JSON array", { authorization: robot, json: [GRANT] }, 400, "invalid_request"],
      ["JSON null", { authorization: robot, json: null }, 400, "invalid_request"],
      [
        "a non-string grant_type",
        { authorization: robot, json: { grant_type: ["client_credentials"] } },
        400,
        "invalid_request",
      ],
      [
        "a numeric client_secret",
        { json: { ...GRANT, client_id: "ci-robot", client_secret: 12 } },
        400,
        "invalid_request",
      ],
      [
        "an empty body",
        { authorization: robot, raw: "", contentType: "application/x-www-form-urlencoded" },
        400,
        "invalid_request",
      ],
      [
        "no content type",
        { authorization: robot, raw: "grant_type=client_credentials" },
        400,
        "invalid_request",
      ],
      [
        "text/plain",
        { authorization: robot, raw: "grant_type=client_credentials", contentType: "text/plain" },
        400,
        "invalid_request",
      ],
      [
        "grant_type twice",
        {
          authorization: robot,
          raw: "grant_type=client_credentials&grant_type=client_credentials",
          contentType: "application/x-www-form-urlencoded",
        },
        400,
        "invalid_request",
      ],
      [
        "invalid UTF-8",
        {
          authorization: robot,
          raw: new Uint8Array([...Buffer.from("grant_type=client_credentials&scope="), 0xc3, 0x28]),
          contentType: "application/x-www-form-urlencoded",
        },
        400,
        "invalid_request",
      ],
      [
        "deeply nested JSON",
        {
          authorization: robot,
          raw: `${"[".repeat(50_000)}${"]".repeat(50_000)}`,
          contentType: "application/json",
        },
        400,
        "invalid_request",
      ],
    ];
    for (const [name, request, status, error] of cases) {
      test(`${name}: ${status} ${error}`, async () => {
        const t = await daemon();
        expectOAuthError(await requestToken(t, request), status, error);
      });
    }

    test("with no client configured, every token request is invalid_client", async () => {
      const t = await daemon({ yaml: "" });
      expectOAuthError(
        await requestToken(t, { authorization: basic("ci-robot", ROBOT_SECRET), form: GRANT }),
        401,
        "invalid_client",
      );
    });

    test("a body over the limit keeps the API's 413", async () => {
      const t = await daemon({ yaml: `${clientsYaml()}\nlimits:\n  max_payload_bytes: 1024` });
      const res = await requestToken(t, {
        authorization: basic("ci-robot", ROBOT_SECRET),
        form: { ...GRANT, pad: "x".repeat(2000) },
      });
      expect(res.status).toBe(413);
      expect(res.body.error.code).toBe("payload_too_large");
    });
  });
});

describe("the token on /v1", () => {
  test("scope narrows the token: webhooks:read only reads; absent scope grants all the client's", async () => {
    const t = await daemon();
    const narrow = await requestToken(t, {
      authorization: basic("ci-robot", ROBOT_SECRET),
      form: { ...GRANT, scope: "webhooks:read" },
    });
    expect(narrow.status).toBe(200);
    expect(narrow.body.scope).toBe("webhooks:read");
    const token = narrow.body.access_token;
    expect((await t.request("GET", "/v1/webhooks", { key: token })).status).toBe(200);
    const write = await t.request("POST", "/v1/webhooks", { key: token, body: VALID_WEBHOOK });
    expect(write.status).toBe(403);
    expect(write.body.error.code).toBe("forbidden");
    expect((await t.request("GET", "/v1/events", { key: token })).status).toBe(403);

    const all = await requestToken(t, { authorization: basic("reader.app", READER_SECRET), form: GRANT });
    expect(all.body.scope).toBe("webhooks:read events:read");
    const two = await requestToken(t, {
      authorization: basic("ci-robot", ROBOT_SECRET),
      form: { ...GRANT, scope: "events:read  webhooks:read events:read" },
    });
    expect(two.body.scope).toBe("events:read webhooks:read");
    expect((await t.request("GET", "/v1/events", { key: two.body.access_token })).status).toBe(200);
  });

  test("a tenant client acts in its tenant only: another tenant's webhook is a 404", async () => {
    const t = await daemon();
    const token = await tokenFor(t, "acme-service", ACME_SECRET);
    const globex = await t.request("POST", "/v1/webhooks", {
      body: { ...VALID_WEBHOOK, tenant_id: "globex" },
    });
    expect(globex.status).toBe(201);
    const acme = await t.request("POST", "/v1/webhooks", { key: ACME_KEY, body: VALID_WEBHOOK });
    expect(acme.status).toBe(201);

    const other = await t.request("GET", `/v1/webhooks/${globex.body.id}`, { key: token });
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe("not_found");
    expect((await t.request("GET", `/v1/webhooks/${acme.body.id}`, { key: token })).status).toBe(200);
    const list = await t.request("GET", "/v1/webhooks", { key: token });
    expect(list.body.data.map((w: { id: string }) => w.id)).toEqual([acme.body.id]);
    const created = await t.request("POST", "/v1/webhooks", { key: token, body: VALID_WEBHOOK });
    expect(created.body.tenant_id).toBe("acme");
    const elsewhere = await t.request("POST", "/v1/webhooks", {
      key: token,
      body: { ...VALID_WEBHOOK, tenant_id: "globex" },
    });
    expect(elsewhere.status).toBe(403);
  });

  test("expires after auth.token_ttl (manual clock): then 401 unauthorized", async () => {
    const clock = createManualClock(Date.UTC(2026, 3, 1));
    const t = await daemon({ clock, yaml: clientsYaml(ROBOT_SECRET, "  token_ttl: 90s") });
    const res = await requestToken(t, { authorization: basic("ci-robot", ROBOT_SECRET), form: GRANT });
    expect(res.body.expires_in).toBe(90);
    const token = res.body.access_token;
    clock.advance(89_999);
    expect((await t.request("GET", "/v1/webhooks", { key: token })).status).toBe(200);
    clock.advance(1);
    const expired = await t.request("GET", "/v1/webhooks", { key: token });
    expectUnauthorized(expired);
    expect(expired.headers.get("www-authenticate")).toContain('error="invalid_token"');
    // A new one works.
    expect(
      (await t.request("GET", "/v1/webhooks", { key: await tokenFor(t, "ci-robot", ROBOT_SECRET) })).status,
    ).toBe(200);
  });

  test("a forged or altered token is 401: signature, claims, prefix", async () => {
    const t = await daemon();
    const token = await tokenFor(t, "reader.app", READER_SECRET);
    const [signed, signature] = token.split(".") as [string, string];
    const claims = JSON.parse(Buffer.from(signed.slice(4), "base64url").toString());
    const widened = `hkt_${Buffer.from(JSON.stringify({ ...claims, scp: ["*"] })).toString("base64url")}`;
    // The first character: the last one of a 32-byte MAC also holds padding bits a decoder ignores.
    const flip = (text: string) => (text.startsWith("A") ? "B" : "A") + text.slice(1);
    for (const forged of [
      `${widened}.${signature}`,
      `${signed}.${flip(signature)}`,
      `${signed}.`,
      signed,
      `${signed}.${signature}.${signature}`,
      `hkt_${"A".repeat(5000)}.${signature}`,
      "hkt_",
      "hkt_.x",
    ]) {
      expectUnauthorized(await t.request("GET", "/v1/webhooks", { key: forged }));
    }
    // A token signed by another database's key is refused too.
    const elsewhere = await daemon();
    expectUnauthorized(await elsewhere.request("GET", "/v1/webhooks", { key: token }));
  });

  test("a token counts against its client's rate limit buckets", async () => {
    const t = await daemon({ yaml: `${clientsYaml()}\nrate_limits: { read: 2, write: 5 }` });
    const first = await tokenFor(t, "ci-robot", ROBOT_SECRET);
    const second = await tokenFor(t, "ci-robot", ROBOT_SECRET);
    expect((await t.request("GET", "/v1/webhooks", { key: first })).headers.get("ratelimit-remaining")).toBe(
      "1",
    );
    expect((await t.request("GET", "/v1/webhooks", { key: second })).status).toBe(200);
    const refused = await t.request("GET", "/v1/webhooks", { key: first });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe("rate_limited");
    // Another client, and an API key, have buckets of their own.
    expect(
      (await t.request("GET", "/v1/webhooks", { key: await tokenFor(t, "reader.app", READER_SECRET) }))
        .status,
    ).toBe(200);
    expect((await t.request("GET", "/v1/webhooks")).status).toBe(200);
  });
});

describe("across a restart over the same database", () => {
  const restart = (first: TestDaemon, yaml: string) =>
    daemon({ dir: first.dir, ...(first.databaseUrl ? { databaseUrl: first.databaseUrl } : {}), yaml });

  test("a test-mode client acts in test mode only; a token stops working once its client's mode changes", async () => {
    const t = await daemon();
    const token = await tokenFor(t, "acme-sandbox", ACME_SECRET);
    const liveHook = await t.request("POST", "/v1/webhooks", { key: ACME_KEY, body: VALID_WEBHOOK });
    const created = await t.request("POST", "/v1/webhooks", { key: token, body: VALID_WEBHOOK });
    expect([created.status, created.body.tenant_id, created.body.mode]).toEqual([201, "acme", "test"]);
    expect((await t.request("GET", `/v1/webhooks/${liveHook.body.id}`, { key: token })).status).toBe(404);
    const list = await t.request("GET", "/v1/webhooks", { key: token });
    expect(list.body.data.map((w: { id: string }) => w.id)).toEqual([created.body.id]);
    const asLive = await t.request("GET", "/v1/webhooks?mode=live", { key: token });
    expect(asLive.status).toBe(403);
    await t.close();
    const moved = await restart(
      t,
      `
auth:
  oauth_clients:
    - { client_id: acme-sandbox, client_secret: ${ACME_SECRET}, scopes: ["*"], tenant: acme, mode: live }
`,
    );
    expectUnauthorized(await moved.request("GET", "/v1/webhooks", { key: token }));
  });

  test("tokens outlive a restart; a removed client's and a changed secret's are refused", async () => {
    const first = await daemon();
    const robot = await tokenFor(first, "ci-robot", ROBOT_SECRET);
    const reader = await tokenFor(first, "reader.app", READER_SECRET);
    const acme = await tokenFor(first, "acme-service", ACME_SECRET);
    await first.close();

    const same = await restart(first, clientsYaml());
    for (const token of [robot, reader, acme])
      expect((await same.request("GET", "/v1/webhooks", { key: token })).status).toBe(200);
    await same.close();

    const NEW_SECRET = "robot-secret-rotated-0123456789";
    const changed = await restart(
      first,
      `
auth:
  oauth_clients:
    - { client_id: ci-robot, client_secret: ${NEW_SECRET}, scopes: ["*"] }
    - { client_id: acme-service, client_secret: ${ACME_SECRET}, scopes: [webhooks:read], tenant: acme }
`,
    );
    expectUnauthorized(await changed.request("GET", "/v1/webhooks", { key: robot }));
    expectUnauthorized(await changed.request("GET", "/v1/webhooks", { key: reader }));
    // Unchanged secret, narrower scopes: the token keeps only what the client still has.
    expect((await changed.request("GET", "/v1/webhooks", { key: acme })).status).toBe(200);
    expect((await changed.request("POST", "/v1/webhooks", { key: acme, body: VALID_WEBHOOK })).status).toBe(
      403,
    );
    // The old secret no longer gets a token; the new one does.
    expectOAuthError(
      await requestToken(changed, { authorization: basic("ci-robot", ROBOT_SECRET), form: GRANT }),
      401,
      "invalid_client",
    );
    const fresh = await tokenFor(changed, "ci-robot", NEW_SECRET);
    expect((await changed.request("GET", "/v1/webhooks", { key: fresh })).status).toBe(200);
  });

  test("a token stops working once its client's tenant changes, or the client becomes an admin", async () => {
    const first = await daemon();
    const token = await tokenFor(first, "acme-service", ACME_SECRET);
    expect((await first.request("GET", "/v1/webhooks", { key: token })).status).toBe(200);
    await first.close();
    for (const tenant of [", tenant: globex", ""]) {
      const moved = await restart(
        first,
        `
auth:
  oauth_clients:
    - { client_id: acme-service, client_secret: ${ACME_SECRET}, scopes: ["*"]${tenant} }
`,
      );
      // Same client, same secret, another tenant (or none: an admin): the acme token is refused.
      expectUnauthorized(await moved.request("GET", "/v1/webhooks?tenant_id=globex", { key: token }));
      expectUnauthorized(await moved.request("GET", "/v1/whoami", { key: token }));
      await moved.close();
    }
  });

  test("a token none of whose scopes its client still has is refused, even where any credential may go", async () => {
    const first = await daemon();
    const token = await tokenFor(first, "reader.app", READER_SECRET, "webhooks:read");
    expect((await first.request("GET", "/v1/whoami", { key: token })).status).toBe(200);
    await first.close();
    const narrowed = await restart(
      first,
      `
auth:
  oauth_clients:
    - { client_id: reader.app, client_secret: ${READER_SECRET}, scopes: [events:read] }
`,
    );
    for (const path of ["/v1/whoami", "/v1/event-types", "/v1/webhooks"])
      expect([path, (await narrowed.request("GET", path, { key: token })).status]).toEqual([path, 401]);
  });

  test("a client secret given as client_secret_sha256 works the same", async () => {
    const hash = new Bun.CryptoHasher("sha256").update(ROBOT_SECRET).digest("hex");
    const t = await daemon({
      yaml: `auth:\n  oauth_clients:\n    - { client_id: ci-robot, client_secret_sha256: ${hash}, scopes: ["*"] }\n`,
    });
    const token = await tokenFor(t, "ci-robot", ROBOT_SECRET);
    expect((await t.request("GET", "/v1/webhooks", { key: token })).status).toBe(200);
    // Switching between the plain and the hashed form of the same secret keeps its tokens.
    await t.close();
    const plain = await restart(t, clientsYaml());
    expect((await plain.request("GET", "/v1/webhooks", { key: token })).status).toBe(200);
  });

  test.skipIf(TEST_DRIVER !== "postgres")(
    "PostgreSQL: a token minted through one instance works on another",
    async () => {
      const one = await daemon();
      const two = await daemon({ databaseUrl: one.databaseUrl as string });
      const token = await tokenFor(one, "acme-service", ACME_SECRET);
      const created = await two.request("POST", "/v1/webhooks", { key: token, body: VALID_WEBHOOK });
      expect(created.status).toBe(201);
      expect(created.body.tenant_id).toBe("acme");
      const back = await tokenFor(two, "acme-service", ACME_SECRET);
      expect((await one.request("GET", `/v1/webhooks/${created.body.id}`, { key: back })).status).toBe(200);
    },
  );
});

describe("rate limit on /oauth/token", () => {
  test("per client_id, like writes: the 3rd request in the same instant is a 429 with Retry-After", async () => {
    const clock = createManualClock(Date.UTC(2026, 3, 1));
    const t = await daemon({ clock, yaml: `${clientsYaml()}\nrate_limits: { write: 2 }` });
    const robot = { authorization: basic("ci-robot", ROBOT_SECRET), form: GRANT };
    const ok = await requestToken(t, robot);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("ratelimit-limit")).toBe("2");
    expect(ok.headers.get("ratelimit-remaining")).toBe("1");
    // A wrong secret counts too: guessing a client's secret is limited.
    expectOAuthError(
      await requestToken(t, { authorization: basic("ci-robot", "wrong-secret-0123456789"), form: GRANT }),
      401,
      "invalid_client",
    );
    const refused = await requestToken(t, robot);
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ error: "rate_limited", error_description: expect.any(String) });
    expect(refused.headers.get("retry-after")).toBe("30");
    expect(refused.headers.get("ratelimit-remaining")).toBe("0");
    expect(refused.headers.get("cache-control")).toBe("no-store");
    // Another client is not affected; nor are the client's own API writes.
    expect(
      (await requestToken(t, { authorization: basic("reader.app", READER_SECRET), form: GRANT })).status,
    ).toBe(200);
    // Body authentication counts against the same client.
    expect(
      (await requestToken(t, { form: { ...GRANT, client_id: "ci-robot", client_secret: ROBOT_SECRET } }))
        .status,
    ).toBe(429);
    clock.advance(30_000);
    expect((await requestToken(t, robot)).status).toBe(200);
  });
});

describe("secrets and tokens stay out of the logs", () => {
  test("at log level debug, through successes and every kind of failure", async () => {
    const t = await daemon({ logLevel: "debug" });
    const secrets = [ROBOT_SECRET, READER_SECRET, ACME_SECRET, ODD_SECRET, formEncode(ODD_SECRET)];
    const wrong = "wrong-client-secret-0123456789";
    secrets.push(wrong);
    const tokens: string[] = [];
    for (const request of [
      { authorization: basic("ci-robot", ROBOT_SECRET), form: GRANT },
      { authorization: basicEncoded("odd~client", ODD_SECRET), form: GRANT },
      { form: { ...GRANT, client_id: "acme-service", client_secret: ACME_SECRET } },
      { json: { ...GRANT, client_id: "reader.app", client_secret: READER_SECRET } },
    ]) {
      const res = await requestToken(t, request);
      expect(res.status).toBe(200);
      tokens.push(res.body.access_token);
    }
    for (const request of [
      { authorization: basic("ci-robot", wrong), form: GRANT },
      { form: { ...GRANT, client_id: "ci-robot", client_secret: wrong } },
      { authorization: basic("ci-robot", ROBOT_SECRET), form: { ...GRANT, client_secret: ROBOT_SECRET } },
      { authorization: basic(wrong, ROBOT_SECRET), form: { grant_type: ROBOT_SECRET } },
      { authorization: basic("ci-robot", ROBOT_SECRET), form: { ...GRANT, scope: ROBOT_SECRET } },
      {
        authorization: basic("ci-robot", ROBOT_SECRET),
        raw: `{"client_secret": "${ROBOT_SECRET}"`,
        contentType: "application/json",
      },
    ]) {
      const res = await requestToken(t, request);
      expect(res.status).toBeGreaterThanOrEqual(400);
      // Nor in the answer: a misplaced secret is never echoed.
      for (const secret of secrets) expect(res.text).not.toContain(secret);
    }
    for (const token of tokens) {
      await t.request("GET", "/v1/webhooks", { key: token });
      await t.request("POST", "/v1/webhooks", { key: token, body: { url: token, events: [token] } });
      await t.request("GET", "/v1/webhooks", { key: `${token}x` });
    }
    const clock = t.clock as ReturnType<typeof createManualClock>;
    clock.advance(3_600_000);
    const expired = await t.request("GET", "/v1/webhooks", { key: tokens[0] });
    expect(expired.status).toBe(401);
    for (const token of tokens) expect(expired.text).not.toContain(token);

    expect(t.logs.length).toBeGreaterThan(10);
    const leaks = t.logs.filter((line) => [...secrets, ...tokens].some((value) => line.includes(value)));
    expect(leaks).toEqual([]);
    // The request log names the client, as it names a key.
    const requests = t.logs.map((line) => JSON.parse(line)).filter((line) => line.msg === "request");
    expect(requests.some((line) => line.route === "/oauth/token" && line.key_name === "ci-robot")).toBe(true);
    expect(requests.some((line) => line.route === "/v1/webhooks" && line.key_name === "acme-service")).toBe(
      true,
    );
  });
});

describe("OpenAPI", () => {
  test("/oauth/token is documented with its body types, §5.2 errors and Basic security", async () => {
    const t = await daemon();
    const doc = (await t.request("GET", "/openapi.json", { key: null })).body;
    const op = doc.paths["/oauth/token"].post;
    expect(Object.keys(op.requestBody.content).sort()).toEqual(
      ["application/json", "application/x-www-form-urlencoded"].sort(),
    );
    expect(op.requestBody.content["application/x-www-form-urlencoded"].schema.required).toEqual([
      "grant_type",
    ]);
    expect(Object.keys(op.responses).sort()).toEqual(["200", "400", "401", "413", "429"]);
    expect(op.responses["400"].content["application/json"].schema.properties.error.enum).toContain(
      "invalid_scope",
    );
    expect(op.security).toEqual([{ clientBasic: [] }, {}]);
    expect(doc.components.securitySchemes.oauth2.flows.clientCredentials.tokenUrl).toBe("/oauth/token");
    expect(doc.paths["/v1/webhooks"].post.security).toContainEqual({ oauth2: ["webhooks:write"] });
  });
});

describe("interoperability: oauth4webapi's client credentials grant", () => {
  test("a token from a widely used OAuth2 client works on /v1, with Basic and with body authentication", async () => {
    const t = await daemon({ clock: createManualClock(Date.now()) });
    const { url } = await t.daemon.start();
    const as: oauth.AuthorizationServer = { issuer: url, token_endpoint: `${url}/oauth/token` };
    const options = { [oauth.allowInsecureRequests]: true };

    for (const [client, auth, scope] of [
      [{ client_id: "ci-robot" }, oauth.ClientSecretBasic(ROBOT_SECRET), "webhooks:read webhooks:write"],
      [{ client_id: "odd~client" }, oauth.ClientSecretBasic(ODD_SECRET), ""],
      [{ client_id: "acme-service" }, oauth.ClientSecretPost(ACME_SECRET), ""],
    ] as const) {
      const parameters = new URLSearchParams(scope ? { scope } : {});
      const response = await oauth.clientCredentialsGrantRequest(as, client, auth, parameters, options);
      const result = await oauth.processClientCredentialsResponse(as, client, response);
      expect(result.token_type).toBe("bearer"); // oauth4webapi lower-cases it
      expect(result.expires_in).toBe(3600);
      const listed = await fetch(`${url}/v1/webhooks`, {
        headers: { authorization: `Bearer ${result.access_token}` },
      });
      expect([client.client_id, listed.status]).toEqual([client.client_id, 200]);
    }

    // And it reads hookd's §5.2 errors as OAuth2 errors: invalid_scope from the body, and
    // invalid_client's 401 as the Basic challenge it carries.
    const client = { client_id: "reader.app" };
    const attempt = async (secret: string, scope: string) => {
      const response = await oauth.clientCredentialsGrantRequest(
        as,
        client,
        oauth.ClientSecretBasic(secret),
        new URLSearchParams({ scope }),
        options,
      );
      try {
        await oauth.processClientCredentialsResponse(as, client, response);
      } catch (error) {
        return error;
      }
      throw new Error("expected an OAuth2 error");
    };
    const badScope = await attempt(READER_SECRET, "events:write");
    expect(badScope).toBeInstanceOf(oauth.ResponseBodyError);
    expect((badScope as oauth.ResponseBodyError).error).toBe("invalid_scope");
    expect((badScope as oauth.ResponseBodyError).status).toBe(400);
    const badSecret = await attempt("not-the-secret-0123456789", "webhooks:read");
    expect(badSecret).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    const challenge = badSecret as oauth.WWWAuthenticateChallengeError;
    expect(challenge.status).toBe(401);
    expect(challenge.cause[0]?.scheme).toBe("basic");
    expect(await challenge.response.json()).toEqual({
      error: "invalid_client",
      error_description: expect.any(String),
    });
  });
});
