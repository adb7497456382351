// Malformed input against every declared route (SPEC §2 Errors: "No input, however malformed, gets a
// 500 or crashes the process"): random JSON, mutated bodies, prototype keys, deep nesting, huge
// numbers, random bytes and invalid UTF-8 on the write routes; random query strings and cursors on
// the list routes. Every answer must be below 500 and, from 400 up, the API's error shape.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { RouteSpec } from "../../src/http/api.ts";
import { ADMIN_KEY, createTestDaemon, type TestDaemon, type TestResponse } from "../support/daemon.ts";
import { INVALID_UTF8 } from "../support/invalid-utf8.ts";

/** Runs per property and route; the whole file stays around a thousand requests. */
const RUNS = 25;
const MARKER = "hookd_polluted";

let t: TestDaemon;
let routes: readonly RouteSpec[];
let writeRoutes: RouteSpec[];
/** A real object per resource (`webhooks`, `events`, `deliveries`) for `:id`, made when first needed. */
const realIds = new Map<string, string>();
const cursors: string[] = [];

beforeAll(async () => {
  t = await createTestDaemon({
    yaml: [
      // High limits, so the fuzzing meets the validation and not the rate limiter.
      "rate_limits:\n  read: 1000000\n  write: 1000000\n  ingest: 10000000",
      "event_types:\n  - name: invoice.paid\n  - name: invoice.failed",
      "shutdown_grace: 1s",
    ].join("\n"),
  });
  routes = t.daemon.routes;
  writeRoutes = routes.filter((r) => r.method !== "get");
  for (let i = 0; i < 3; i++) await createWebhook(`seed ${i}`);
  for (const order of ["-created_at", "created_at", "name", "-name", "updated_at"]) {
    const page = await t.request("GET", `/v1/webhooks?limit=1&order=${order}`);
    expect(page.status).toBe(200);
    cursors.push(page.body.end_cursor);
  }
});
afterAll(async () => {
  await t.close();
});

async function createWebhook(name = "fuzz"): Promise<string> {
  const res = await t.request("POST", "/v1/webhooks", { body: { ...VALID_CREATE, name } });
  expect(res.status).toBe(201);
  return res.body.id;
}

// The daemon is started at the end, and its dispatcher then delivers: every target is on 127.0.0.1.
const VALID_CREATE = {
  url: "http://127.0.0.1:9/hooks",
  events: ["invoice.paid", "invoice.*"],
  name: "Billing",
  description: "d",
  account_ids: ["acct_1"],
  enabled: true,
  timeout_seconds: 30,
  headers: { "X-Team": "billing" },
  metadata: { team: "billing" },
  max_in_flight: 4,
  // Matches VALID_EVENT, so the real delivery below exists.
  filter: { "data.invoice_id": { $startsWith: "in_" }, $or: [{ account_id: "acct_1" }, { type: "x.y" }] },
  ordering: "fifo",
  rate_limit: 20,
  signature_scheme: "v1",
  secret: `whsec_${Buffer.alloc(32, 7).toString("base64")}`,
};
const { secret: _secret, ...VALID_UPDATE } = VALID_CREATE;
const VALID_EVENT = { type: "invoice.paid", data: { invoice_id: "in_1" }, account_id: "acct_1" };

/** A body each write route accepts, mutated by the properties below; `{}` for a route not listed. */
const VALID_BODIES: Record<string, Record<string, unknown>> = {
  "POST /v1/webhooks": VALID_CREATE,
  "PATCH /v1/webhooks/:id": VALID_UPDATE,
  "PUT /v1/webhooks/:id": VALID_UPDATE,
  "POST /v1/webhooks/:id/rotate-secret": { grace_period_seconds: 60 },
  "POST /v1/webhooks/:id/recover": { since: "2000-01-01T00:00:00.000Z", until: "2100-01-01T00:00:00Z" },
  "POST /v1/events": VALID_EVENT,
  "POST /v1/events/batch": { events: [VALID_EVENT, { ...VALID_EVENT, type: "invoice.failed" }] },
};
const validBodyFor = (route: RouteSpec): Record<string, unknown> => ({
  ...(VALID_BODIES[label(route)] ?? {}),
});

const label = (r: RouteSpec) => `${r.method.toUpperCase()} ${r.path}`;

// ---- ids for `:id` ----

const REAL = Symbol("the id of a real object");
type IdChoice = typeof REAL | string;
const garbageId: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 64 }).map(encodeURIComponent),
  fc.stringMatching(/^wh_[0-9A-Z]{26}$/),
  fc.constantFrom(
    "%",
    "%ZZ",
    "%00",
    "%c0%ae",
    "%ff%fe",
    "..",
    ".",
    "%2e%2e",
    "%2F",
    "wh_",
    "null",
    "__proto__",
    "constructor",
    "1e400",
    `wh_${"Z".repeat(3000)}`,
    "'; DROP TABLE webhooks; --",
  ),
);
const idChoice: fc.Arbitrary<IdChoice> = fc.oneof(fc.constant<IdChoice>(REAL), garbageId);
/** Well formed, matching every `:id` route, and naming nothing. */
const unknownId = fc.stringMatching(/^wh_[0-9A-Z]{26}$/);

const resourceOf = (route: RouteSpec) => /^\/v1\/([a-z-]+)\/:id(\/|$)/.exec(route.path)?.[1] ?? "webhooks";

async function realIdFor(resource: string): Promise<string> {
  const known = realIds.get(resource);
  if (known !== undefined) return known;
  let id: string;
  if (resource === "events" || resource === "deliveries") {
    await realIdFor("webhooks");
    const event = await t.request("POST", "/v1/events", { body: VALID_EVENT });
    expect(event.status).toBe(202);
    id = event.body.id;
    if (resource === "deliveries") {
      const list = await t.request("GET", `/v1/deliveries?event_id=${id}`);
      expect(list.body.data.length).toBeGreaterThan(0);
      id = list.body.data[0].id;
    }
  } else {
    id = await createWebhook();
  }
  realIds.set(resource, id);
  return id;
}

async function pathFor(route: RouteSpec, id: IdChoice): Promise<string> {
  if (!route.path.includes(":")) return route.path;
  return route.path.replace(/:[a-z_]+/g, id === REAL ? await realIdFor(resourceOf(route)) : id);
}

// ---- the oracle ----

type Body = { json: unknown } | { raw: string | Uint8Array };

async function call(
  route: RouteSpec,
  id: IdChoice,
  body: Body | undefined,
  headers: Record<string, string> = {},
  query = "",
): Promise<TestResponse> {
  const path = (await pathFor(route, id)) + query;
  const res = await t.request(route.method.toUpperCase(), path, {
    key: ADMIN_KEY,
    headers,
    ...(body === undefined ? {} : "json" in body ? { body: body.json } : { rawBody: body.raw }),
  });
  expectWellFormed(res, `${route.method.toUpperCase()} ${path.slice(0, 200)}`, route);
  if (route.method === "delete" && id === REAL && res.status === 204) realIds.delete(resourceOf(route));
  return res;
}

function expectWellFormed(res: TestResponse, what: string, route?: RouteSpec): void {
  if (res.status >= 500) throw new Error(`${what} answered ${res.status}: ${res.text.slice(0, 500)}`);
  if (res.status < 400) return;
  // POST /oauth/token answers RFC 6749 §5.2's shape, except for the body limit's 413.
  const oauth = route?.errorFormat === "oauth" && res.status !== 413;
  const problem = oauth ? oauthErrorProblem(res) : errorShapeProblem(res);
  if (problem) throw new Error(`${what} answered ${res.status} ${problem}: ${res.text.slice(0, 500)}`);
}

function oauthErrorProblem(res: TestResponse): string | null {
  const body = res.body;
  if (!body || typeof body !== "object" || Array.isArray(body)) return "without a JSON object body";
  if (Object.keys(body).sort().join() !== "error,error_description") return "not in RFC 6749 §5.2's shape";
  if (typeof body.error !== "string" || typeof body.error_description !== "string") return "without strings";
  return null;
}

function errorShapeProblem(res: TestResponse): string | null {
  const body = res.body;
  if (!body || typeof body !== "object" || Array.isArray(body)) return "without a JSON object body";
  if (Object.keys(body).join() !== "error") return "with keys other than error";
  const error = body.error;
  if (typeof error?.code !== "string" || typeof error.message !== "string") return "without code and message";
  if (res.status === 422) {
    if (error.code !== "validation_failed") return "with a code other than validation_failed";
    if (!Array.isArray(error.details) || error.details.length === 0) return "without details";
    for (const detail of error.details) {
      if (typeof detail?.path !== "string" || typeof detail.message !== "string")
        return "with a malformed detail";
    }
  } else if ("details" in error) {
    return "with details on a status other than 422";
  }
  return null;
}

// ---- arbitraries ----

const smallJson = fc.jsonValue({ maxDepth: 4 });
const hugeNumber = fc.constantFrom(
  "1e400",
  "-1e400",
  "1e-400",
  "-0",
  "9007199254740993",
  "123456789012345678901234567890123456789",
  "0.1e1",
  "1E2",
  "60.0000000000000001",
);
const longString = fc.oneof(
  fc.integer({ min: 256, max: 5000 }).map((n) => "x".repeat(n)),
  fc.integer({ min: 100_000, max: 400_000 }).map((n) => "é".repeat(n)),
  fc.string({ unit: "binary", minLength: 200, maxLength: 2000 }),
);
const contentType = fc.constantFrom<Record<string, string>>(
  {},
  { "content-type": "application/json" },
  { "content-type": "text/plain" },
  { "content-type": "application/x-www-form-urlencoded" },
  { "content-type": "multipart/form-data; boundary=x" },
  { "content-type": "application/json; charset=latin1" },
);

/** A valid body with one field replaced by something else, or removed, or one unknown field added. */
function mutatedBody(route: RouteSpec): fc.Arbitrary<Body> {
  const base = validBodyFor(route);
  const fields = [
    ...Object.keys(base),
    ...Object.keys(VALID_CREATE),
    "tenant_id",
    "id",
    "secret_last4",
    "extra",
  ];
  const replacement: fc.Arbitrary<{ text: string } | { value: unknown } | "remove"> = fc.oneof(
    smallJson.map((value) => ({ value })),
    longString.map((value) => ({ value })),
    hugeNumber.map((text) => ({ text })),
    fc.constantFrom<{ value: unknown } | "remove">(
      "remove",
      { value: null },
      { value: "" },
      { value: [] },
      { value: {} },
      { value: -1 },
      { value: 0 },
      { value: 1.5 },
      { value: true },
      { value: "http://127.0.0.1/" },
      { value: "https://[::1]/" },
      { value: "javascript:alert(1)" },
      { value: ["*", "a..b", ""] },
      { value: { "Content-Length": "1" } },
      { value: { "X-A": "a\r\nX-B: b" } },
      { value: "whsec_AAAA" },
      { value: "\u0000" },
      { value: "\ud800" },
    ),
  );
  return fc.tuple(fc.constantFrom(...fields), replacement).map(([field, change]) => {
    const entries = Object.entries(base)
      .filter(([key]) => key !== field)
      .map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`);
    if (change !== "remove") {
      entries.push(
        `${JSON.stringify(field)}:${"text" in change ? change.text : JSON.stringify(change.value)}`,
      );
    }
    return { raw: `{${entries.join(",")}}` };
  });
}

/** `__proto__`, `constructor` and `prototype` keys at the top level and inside every object field. */
function prototypeBody(route: RouteSpec): fc.Arbitrary<Body> {
  const base = validBodyFor(route);
  const poison = fc.constantFrom(
    `{"${MARKER}":"yes"}`,
    `{"prototype":{"${MARKER}":"yes"}}`,
    `{"__proto__":{"${MARKER}":"yes"}}`,
    `"${MARKER}"`,
    "null",
    "[]",
  );
  return fc
    .tuple(
      fc.constantFrom(
        "",
        "metadata",
        "headers",
        "id",
        "created_at",
        "account_ids",
        "events",
        "url",
        "filter",
      ),
      fc.constantFrom("__proto__", "constructor", "prototype"),
      poison,
    )
    .map(([where, key, value]) => {
      const entries = Object.entries(base).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
      const injected = `"${key}":${value}`;
      entries.push(where === "" ? injected : `"${where}":{${injected}}`);
      return { raw: `{${entries.join(",")}}` };
    });
}

const deepBody: fc.Arbitrary<Body> = fc
  .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom("[", '{"a":', '{"metadata":', '{"__proto__":'))
  .map(([depth, open]) => {
    const close = open === "[" ? "]" : "}";
    return { raw: `${open.repeat(depth)}1${close.repeat(depth)}` };
  });

const invalidUtf8 = fc.constantFrom(...INVALID_UTF8);
const invalidUtf8Body: fc.Arbitrary<Body> = fc
  .tuple(
    fc.constantFrom('{"name":"', '{"url":"https://', '{"', ""),
    invalidUtf8,
    fc.constantFrom('"}', "", '":1}'),
  )
  .map(([head, bad, tail]) => ({
    raw: Buffer.concat([Buffer.from(head), Buffer.from(bad), Buffer.from(tail)]),
  }));
const byteBody: fc.Arbitrary<Body> = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((raw) => ({ raw })),
  fc.constantFrom<Body>(
    { raw: "" },
    { raw: " " },
    { raw: "\u0000" },
    { raw: "{" },
    { raw: "nul" },
    { raw: "{}}" },
    { raw: Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]) },
  ),
);

// ---- write routes ----

describe("write routes never answer 5xx and always answer errors in the API's shape", () => {
  const each = async <Ts extends unknown[]>(
    property: (route: RouteSpec) => fc.IAsyncPropertyWithHooks<Ts>,
    on: readonly RouteSpec[] = writeRoutes,
  ) => {
    expect(on.length).toBeGreaterThanOrEqual(3);
    for (const route of on) {
      try {
        await fc.assert(property(route), { numRuns: RUNS });
      } catch (error) {
        throw new Error(`${label(route)}: ${(error as Error).message}`);
      }
    }
  };

  test("random JSON values", async () => {
    await each((route) =>
      fc.asyncProperty(idChoice, smallJson, contentType, async (id, json, headers) => {
        await call(route, id, { json }, headers);
      }),
    );
  });

  test("objects with random keys, and known keys with random values", async () => {
    const keys = fc.oneof(
      fc.string(),
      fc.constantFrom(...Object.keys(VALID_CREATE), "tenant_id", "grace_period_seconds"),
    );
    await each((route) =>
      fc.asyncProperty(idChoice, fc.dictionary(keys, smallJson, { maxKeys: 8 }), async (id, json) => {
        await call(route, id, { json });
      }),
    );
  });

  test("valid bodies with one field mutated (huge numbers, long strings, wrong types)", async () => {
    await each((route) =>
      fc.asyncProperty(idChoice, mutatedBody(route), async (id, body) => {
        await call(route, id, body);
      }),
    );
  });

  test("__proto__, constructor and prototype keys do not pollute Object.prototype", async () => {
    await each((route) =>
      fc.asyncProperty(idChoice, prototypeBody(route), async (id, body) => {
        await call(route, id, body);
        expect(MARKER in {}).toBe(false);
      }),
    );
  });

  test("deep nesting", async () => {
    await each((route) =>
      fc.asyncProperty(idChoice, deepBody, async (id, body) => {
        await call(route, id, body);
      }),
    );
  });

  test("random bytes", async () => {
    await each((route) =>
      fc.asyncProperty(idChoice, byteBody, contentType, async (id, body, headers) => {
        await call(route, id, body, headers);
      }),
    );
  });

  test("invalid UTF-8 is 400 invalid_json wherever a body is read, before the id is looked up", async () => {
    await each(
      (route) =>
        fc.asyncProperty(
          fc.oneof(fc.constant<IdChoice>(REAL), unknownId),
          invalidUtf8Body,
          async (id, body) => {
            const res = await call(route, id, body);
            if (route.errorFormat === "oauth")
              expect([res.status, res.body.error]).toEqual([400, "invalid_request"]);
            else expect([res.status, res.body.error.code]).toEqual([400, "invalid_json"]);
          },
        ),
      writeRoutes.filter((r) => r.body),
    );
  });

  test("a write route that takes no body never reads one: invalid UTF-8 there leaves a 404 for an unknown id", async () => {
    await each(
      (route) =>
        fc.asyncProperty(unknownId, invalidUtf8Body, async (id, body) => {
          const res = await call(route, id, body);
          expect([res.status, res.body.error.code]).toEqual([404, "not_found"]);
        }),
      writeRoutes.filter((r) => !r.body),
    );
  });

  test("invalid UTF-8 inside an otherwise valid body is 400 invalid_json", async () => {
    const route = routes.find((r) => r.method === "post" && r.path === "/v1/webhooks") as RouteSpec;
    const raw = Buffer.concat([
      Buffer.from('{"url":"https://example.com/","events":"invoice.paid","name":"'),
      Buffer.from([0xff]),
      Buffer.from('"}'),
    ]);
    const res = await call(route, REAL, { raw });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_json");
  });

  test("a body over limits.max_payload_bytes is 413 before parsing", async () => {
    const route = routes.find((r) => r.method === "post" && r.path === "/v1/webhooks") as RouteSpec;
    const res = await call(route, REAL, {
      raw: `{"name":"${"a".repeat(t.config.limits.max_payload_bytes)}"}`,
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("payload_too_large");
  });

  test("prototype keys inside string maps are refused, not silently dropped", async () => {
    for (const field of ["metadata", "headers"]) {
      for (const key of ["__proto__", "constructor", "prototype"]) {
        const raw = `{"url":"https://example.com/","events":"invoice.paid","${field}":{"${key}":"x","ok":"y"}}`;
        const res = await t.request("POST", "/v1/webhooks", { rawBody: raw });
        expect([field, key, res.status]).toEqual([field, key, 422]);
        expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(`${field}.${key}`);
      }
    }
  });
});

// ---- read routes: queries, cursors, ids ----

describe("read routes never answer 5xx to random queries, cursors and ids", () => {
  // Every paginated or filtered list, including those under an object (`:id` is then a real one).
  const listRoutes = () => routes.filter((r) => r.method === "get" && r.query);

  const cursor: fc.Arbitrary<string> = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.constantFrom("", "=", "eyJ9", "bnVsbA", "W10", "MQ", "IiI", "eyJvIjoibmFtZSJ9"),
    fc
      .record(
        {
          o: fc.oneof(
            fc.constantFrom("-created_at", "created_at", "name", "-name", "updated_at", "-updated_at"),
            smallJson,
          ),
          v: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(1e300), smallJson),
          i: fc.oneof(fc.string(), fc.stringMatching(/^wh_[0-9A-Z]{26}$/), smallJson),
        },
        { requiredKeys: [] },
      )
      .map((body) => Buffer.from(JSON.stringify(body)).toString("base64url")),
    fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString("base64url")),
    fc.tuple(fc.nat(), fc.nat(), fc.string({ minLength: 1, maxLength: 1 })).map(([which, at, ch]) => {
      const real = cursors[which % cursors.length] as string;
      const i = at % (real.length + 1);
      return real.slice(0, i) + ch + real.slice(i + 1);
    }),
    fc.nat().map((which) => cursors[which % cursors.length] as string),
  );

  const queryString = (route: RouteSpec): fc.Arbitrary<string> => {
    const known = Object.keys(route.query?.shape ?? {});
    const value = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom(
        "",
        "0",
        "1",
        "100",
        "101",
        "-1",
        "1.5",
        "1e2",
        "true",
        "false",
        "TRUE",
        "*",
        "a..b",
        "invoice.*",
        "order",
      ),
      fc.constantFrom("-created_at", "created_at", "name", "-name", "updated_at", "-updated_at", "random"),
      cursor,
    );
    const pair = fc
      .tuple(fc.oneof(fc.constantFrom(...known), fc.string({ maxLength: 12 })), value)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
    const raw = fc.constantFrom(
      "%",
      "%%",
      "%E0%A4%A",
      "%ff",
      "&&",
      "=",
      "a=b=c",
      "limit",
      "limit=",
      "after=",
      "before=",
      "after=x&before=y",
      "a[b]=c",
      "__proto__[x]=1",
      "__proto__=1",
      "constructor[prototype][x]=1",
      "limit=1&limit=1000",
    );
    return fc
      .array(fc.oneof(pair, raw), { maxLength: 6 })
      .map((parts) => (parts.length ? `?${parts.join("&")}` : ""));
  };

  test("random query strings and malformed cursors on list routes", async () => {
    expect(listRoutes().length).toBeGreaterThan(0);
    for (const route of listRoutes()) {
      await fc.assert(
        fc.asyncProperty(queryString(route), async (query) => {
          const res = await call(route, REAL, undefined, {}, query);
          // A page (or the statistics' series), or the query refused as a whole: nothing in between.
          const outcome = Array.isArray(res.body.data ?? res.body.series)
            ? `${res.status} page`
            : `${res.status} ${res.body.error?.code}`;
          expect(["200 page", "422 validation_failed"]).toContain(outcome);
        }),
        { numRuns: RUNS * 8 },
      );
    }
  });

  test("every malformed cursor is a 422 naming the cursor parameter", async () => {
    const garbage = fc.oneof(
      fc.string({ minLength: 1, maxLength: 80 }).filter((s) => !cursors.includes(s)),
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString("base64url")),
    );
    const paged = listRoutes().filter((r) => "after" in (r.query?.shape ?? {}));
    expect(paged.map(label)).toContain("GET /v1/webhooks");
    for (const route of paged) {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom("after", "before"), garbage, async (param, value) => {
          const res = await call(route, REAL, undefined, {}, `?${param}=${encodeURIComponent(value)}`);
          expect([label(route), res.status]).toEqual([label(route), 422]);
          expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual([param]);
        }),
        { numRuns: RUNS * 2 },
      );
    }
  });

  test("random ids on every route with an id are 404 not_found", async () => {
    const withIds = routes.filter((r) => r.path.includes(":"));
    // `..` and `.` are path segments the URL resolves away, so they name no id: the request goes to
    // another route (or none), and is left out here.
    const ids = garbageId.filter((id) => !/^(\.|%2e){1,2}$/i.test(id));
    for (const route of withIds) {
      await fc.assert(
        fc.asyncProperty(ids, async (id) => {
          const res = await call(route, id, route.body ? { json: validBodyFor(route) } : undefined);
          expect([label(route), res.status, res.body.error.code]).toEqual([label(route), 404, "not_found"]);
        }),
        { numRuns: RUNS },
      );
    }
  });
});

// ---- afterwards ----

describe("after the fuzzing", () => {
  test("Object.prototype and Array.prototype are untouched", () => {
    expect(Object.getOwnPropertyNames(Object.prototype).filter((name) => name.includes(MARKER))).toEqual([]);
    expect(MARKER in {}).toBe(false);
    expect(MARKER in []).toBe(false);
    expect(({} as Record<string, unknown>).constructor).toBe(Object);
  });

  test("nothing was logged as an unhandled error", () => {
    expect(t.logs.filter((line) => line.includes("unhandled"))).toEqual([]);
  });

  test("the daemon still answers, over the app and over a real socket", async () => {
    expect((await t.request("GET", "/healthz", { key: null })).status).toBe(200);
    const id = await createWebhook("after fuzzing");
    expect((await t.request("GET", `/v1/webhooks/${id}`)).body.name).toBe("after fuzzing");

    const { url } = await t.daemon.start();
    expect(url).toStartWith("http://127.0.0.1:");
    // A few raw byte bodies over the real listener, then a normal request on the same server.
    for (const [raw, status, code] of [
      [Buffer.from([0xff, 0xfe, 0x00]), 400, "invalid_json"],
      [Buffer.from("{".repeat(10_000)), 422, "validation_failed"],
      [Buffer.from('{"__proto__":{}}'), 422, "validation_failed"],
    ] as const) {
      const res = await fetch(`${url}/v1/webhooks`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
        body: raw,
      });
      const body = (await res.json()) as { error?: { code?: string } };
      expect([res.status, body.error?.code]).toEqual([status, code]);
    }
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    // Started, the dispatcher runs too, so the daemon reports itself ready.
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });
});
