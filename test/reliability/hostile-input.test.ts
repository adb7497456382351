// SPEC §2 Errors ("No input, however malformed, gets a 500 or crashes the process") over real HTTP:
// hookd runs as a child process (Bun.serve on 127.0.0.1) and gets raw requests over TCP — random
// JSON, deep nesting, huge numbers, __proto__/constructor keys, invalid UTF-8 in bodies, paths,
// queries and headers, giant and numerous headers, huge query strings, malformed cursors, wrong
// content types, chunked bodies and declared lengths over the limit, on every route and method.
// Every answer comes within a bounded time and is below 500; an error from hookd is in the API's
// shape; the process keeps answering /healthz and logs no unhandled error.
//
// Some requests never reach hookd: Bun's HTTP parser answers them itself (a response without
// hookd's X-Request-Id). That is accepted when it is a 4xx, and each such case is pinned below:
// header blocks over Bun's limit (431), malformed framing (400), a Content-Length beyond Bun's
// body backstop (a bare 413), an unknown or lowercase method (connection closed, no answer), and
// one 5xx hookd cannot prevent: a request line naming HTTP/2.0 or later gets Bun's 505.
//
// HOOKD_RELIABILITY=full: 10 500 random requests; otherwise 500.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import fc from "fast-check";
import { CHILD_ADMIN_KEY, callApi, writeChildConfig } from "../support/child-api.ts";
import { type HookdProcess, killStarted, serveFromSource } from "../support/hookd-process.ts";
import { INVALID_UTF8 } from "../support/invalid-utf8.ts";
import { tempDir } from "../support/temp.ts";
import { waitFor } from "../support/wait-for.ts";
import { chunked, type RawRequest, type RawResponse, rawRequest } from "./raw-http.ts";

const FULL = process.env.HOOKD_RELIABILITY === "full";
const RUNS = FULL ? 10_500 : 500;
/** Generous: catches a hang, not a slow machine. */
const RESPONSE_CEILING_MS = 2_000;
const LIMIT = 262_144; // limits.max_payload_bytes, the default the child runs with
const HEALTH_EVERY = 100;
/** Bun answers 431 itself from a header block of about this size (request line included). */
const BUN_HEADER_LIMIT = 16 * 1024;
/** Bun.serve's maxRequestBodySize, set by src/daemon.ts as a backstop far behind hookd's own limit. */
const BUN_BODY_LIMIT = Math.max(LIMIT * 16, 64 * 1024 * 1024);
/** The random cases keep event data this shallow; deeper nesting has its own case at the end. */
const SAFE_DATA_DEPTH = 10_000;

interface Route {
  method: string;
  /** OpenAPI syntax: `/v1/webhooks/{id}`. */
  path: string;
  hasBody: boolean;
  query: string[];
}

let child: HookdProcess;
let url: string;
let port: number;
let routes: Route[];
/** Real ids per resource, for `{id}`. */
const real: Record<"webhooks" | "events" | "deliveries", string[]> = {
  webhooks: [],
  events: [],
  deliveries: [],
};
let cursors: string[] = [];
/** Answers by origin and status, printed at the end (RELIABILITY.md lists them). */
const seen = new Map<string, number>();

beforeAll(async () => {
  const dir = tempDir("hookd-hostile-");
  child = serveFromSource(await writeChildConfig(dir, { retrySchedule: ["100ms"], timeout: "1s" }), dir);
  url = await child.listening();
  port = Number(new URL(url).port);
  const doc = (await (await fetch(`${url}/openapi.json`)).json()) as {
    paths: Record<
      string,
      Record<string, { requestBody?: unknown; parameters?: { name: string; in: string }[] }>
    >;
  };
  routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      hasBody: op.requestBody !== undefined,
      query: (op.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name),
    })),
  );
  // One subscription receives the fuzzed events (to a closed port: its deliveries fail fast); the
  // others, and every one the fuzzing creates, subscribe to a type nobody publishes.
  for (let i = 0; i < 6; i++) {
    const created = await callApi(url, "POST", "/v1/webhooks", {
      name: `seed ${i}`,
      url: "http://127.0.0.1:9/hooks",
      events: [i === 0 ? "fuzz.event" : "fuzz.never"],
    });
    expect(created.status).toBe(201);
    real.webhooks.push(created.body.id);
  }
  for (let i = 0; i < 3; i++) {
    const published = await callApi(url, "POST", "/v1/events", { type: "fuzz.event", data: { i } });
    expect(published.status).toBe(202);
    real.events.push(published.body.id);
  }
  const deliveries = await callApi(url, "GET", "/v1/deliveries?limit=3");
  real.deliveries.push(...deliveries.body.data.map((d: { id: string }) => d.id));
  for (const path of ["/v1/webhooks?limit=1", "/v1/events?limit=1", "/v1/deliveries?limit=1"]) {
    cursors.push((await callApi(url, "GET", path)).body.end_cursor);
  }
  cursors = cursors.filter(Boolean);
}, 30_000);

afterAll(async () => {
  const summary = [...seen].sort().map(([k, n]) => `${k}: ${n}`);
  console.log(`hostile input answers (origin status: count): ${summary.join(", ")}`);
  await killStarted();
});

// ---- the oracle ----

type Origin = "hookd" | "bun" | "closed";
const originOf = (res: RawResponse): Origin =>
  res.status === null ? "closed" : res.headers["x-request-id"] ? "hookd" : "bun";

/** Why `res` breaks the rules, or null. `bunMay` lists what Bun may answer itself for this request. */
function problemWith(
  res: RawResponse,
  method: string,
  bunMay: (number | "closed")[] = [],
  oauth = false,
): string | null {
  const origin = originOf(res);
  seen.set(`${origin} ${res.status ?? "-"}`, (seen.get(`${origin} ${res.status ?? "-"}`) ?? 0) + 1);
  if (res.timedOut) return "no answer in time";
  if (res.ms > RESPONSE_CEILING_MS) return `answered after ${Math.round(res.ms)} ms`;
  if (origin === "closed") return bunMay.includes("closed") ? null : "connection closed without an answer";
  const status = res.status as number;
  if (origin === "bun") {
    if (status >= 400 && status < 500) return null;
    return bunMay.includes(status) ? null : `Bun answered ${status} itself`;
  }
  if (status >= 500) return `hookd answered ${status}: ${res.body.toString("utf8").slice(0, 300)}`;
  if (status < 400 || method === "HEAD") return null;
  // POST /oauth/token answers RFC 6749 §5.2's shape, except for the body limit's 413 and a 405.
  if (oauth && method === "POST" && status !== 413)
    return oauthErrorProblem(status, res.body.toString("utf8"));
  return errorShapeProblem(status, res.body.toString("utf8"));
}

function oauthErrorProblem(status: number, text: string): string | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `${status} without a JSON body: ${text.slice(0, 200)}`;
  }
  const fields = body as { error?: unknown; error_description?: unknown };
  if (!body || typeof body !== "object" || Object.keys(body).sort().join() !== "error,error_description")
    return `${status} not in RFC 6749 §5.2's shape: ${text.slice(0, 200)}`;
  if (typeof fields.error !== "string" || typeof fields.error_description !== "string")
    return `${status} without error and error_description strings: ${text.slice(0, 200)}`;
  return null;
}

function errorShapeProblem(status: number, text: string): string | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `${status} without a JSON body: ${text.slice(0, 200)}`;
  }
  const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } }).error;
  if (!body || typeof body !== "object" || Object.keys(body).join() !== "error" || !error)
    return `${status} not in the error shape: ${text.slice(0, 200)}`;
  if (typeof error.code !== "string" || typeof error.message !== "string")
    return `${status} without code and message: ${text.slice(0, 200)}`;
  if (status === 422 ? !Array.isArray(error.details) : "details" in error)
    return `${status} with details wrong for its status: ${text.slice(0, 200)}`;
  return null;
}

async function send(
  request: RawRequest,
  method: string,
  bunMay?: (number | "closed")[],
): Promise<RawResponse> {
  const res = await rawRequest(port, request);
  const head = Buffer.isBuffer(request.head) ? request.head.toString("latin1") : request.head;
  const oauth = (head.split(" ")[1] ?? "").startsWith("/oauth/");
  const problem = problemWith(res, method, bunMay, oauth);
  if (problem) {
    throw new Error(`${problem}\n  request: ${JSON.stringify(head.slice(0, 300))}`);
  }
  if (child.hasExited()) throw new Error(`hookd exited (${child.proc.exitCode ?? child.proc.signalCode})`);
  return res;
}

async function expectHealthy(): Promise<void> {
  const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(RESPONSE_CEILING_MS) });
  expect(health.status).toBe(200);
  expect(child.hasExited()).toBe(false);
}

// ---- building requests ----

const AUTH = `Authorization: Bearer ${CHILD_ADMIN_KEY}`;

function head(method: string, target: string | Buffer, headers: (string | Buffer)[]): Buffer {
  const line = Buffer.concat([
    Buffer.from(`${method} `),
    Buffer.isBuffer(target) ? target : Buffer.from(target, "latin1"),
    Buffer.from(" HTTP/1.1"),
  ]);
  const lines = [
    line,
    ...["Host: 127.0.0.1", ...headers].map((h) => (Buffer.isBuffer(h) ? h : Buffer.from(h, "latin1"))),
  ];
  return Buffer.concat(lines.flatMap((l, i) => (i === 0 ? [l] : [Buffer.from("\r\n"), l])));
}

/** A body with its framing: a declared length, or chunks of random sizes. */
function framed(body: Buffer, chunks: number[] | null): { headers: string[]; pieces: Buffer[] } {
  if (chunks === null) return { headers: [`Content-Length: ${body.byteLength}`], pieces: [body] };
  const pieces: Buffer[] = [];
  let at = 0;
  for (const size of chunks) {
    if (at >= body.byteLength) break;
    pieces.push(body.subarray(at, at + size));
    at += size;
  }
  if (at < body.byteLength) pieces.push(body.subarray(at));
  return { headers: ["Transfer-Encoding: chunked"], pieces: chunked(pieces) };
}

const VALID_BODIES: Record<string, unknown> = {
  "POST /v1/webhooks": { url: "http://127.0.0.1:9/fuzz", events: ["fuzz.never"], name: "fuzz" },
  "PATCH /v1/webhooks/{id}": { name: "renamed", metadata: { k: "v" } },
  "PUT /v1/webhooks/{id}": { name: "renamed", events: ["fuzz.never"] },
  "POST /v1/webhooks/{id}/rotate-secret": { grace_period_seconds: 60 },
  "POST /v1/webhooks/{id}/recover": { since: "2000-01-01T00:00:00.000Z" },
  "POST /v1/events": { type: "fuzz.event", data: { n: 1 }, account_id: "acct_1" },
  "POST /v1/events/batch": { events: [{ type: "fuzz.event", data: {} }] },
};

// ---- arbitraries ----

const REAL = "\u0000real";
const resourceOf = (path: string) =>
  (/^\/v1\/(webhooks|events|deliveries)\/\{id\}/.exec(path)?.[1] ?? "webhooks") as keyof typeof real;

// Besides the shared cases, 0xfe 0xff (a UTF-16 byte-order mark: neither byte ever occurs in UTF-8).
const invalidUtf8 = fc.constantFrom(...INVALID_UTF8, [0xfe, 0xff]);

const idArb: fc.Arbitrary<string | Buffer> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(REAL) },
  fc.stringMatching(/^(wh|evt|dlv)_[0-9A-Z]{26}$/),
  fc.constantFrom("%", "%ZZ", "%00", "%ff%fe", "%c0%ae", "..", "%2e%2e", "%2F", "__proto__", "constructor"),
  fc.integer({ min: 300, max: 6000 }).map((n) => `wh_${"Z".repeat(n)}`),
  fc.string({ unit: "binary", maxLength: 40 }).map(encodeURIComponent),
  invalidUtf8.map((bytes) => Buffer.concat([Buffer.from("wh_"), Buffer.from(bytes)])),
);

const queryValue: fc.Arbitrary<string | Buffer> = fc.oneof(
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
  fc.constantFrom(
    "0",
    "-1",
    "101",
    "1e400",
    "NaN",
    "true",
    "",
    "%",
    "%zz",
    "2000-13-45T99:99:99Z",
    "-created_at",
  ),
  fc
    .constantFrom(...["a", "b"])
    .chain(() => (cursors.length > 0 ? fc.constantFrom(...cursors) : fc.constant("c"))),
  fc
    .tuple(
      fc.constantFrom(...(cursors.length > 0 ? cursors : ["c"])),
      fc.nat(40),
      fc.string({ minLength: 1, maxLength: 1 }),
    )
    .map(([cursor, at, c]) => encodeURIComponent(cursor.slice(0, at) + c + cursor.slice(at + 1))),
  fc.base64String({ maxLength: 200 }).map(encodeURIComponent),
  fc.integer({ min: 1000, max: 6000 }).map((n) => "x".repeat(n)),
  invalidUtf8.map((bytes) => Buffer.from(bytes)),
);

function queryArb(route: Route): fc.Arbitrary<Buffer> {
  const names = fc.oneof(
    { weight: 3, arbitrary: route.query.length > 0 ? fc.constantFrom(...route.query) : fc.constant("limit") },
    fc.constantFrom("after", "before", "limit", "tenant_id", "__proto__", "constructor", "a[b]", "x"),
    fc.string({ maxLength: 10 }).map(encodeURIComponent),
  );
  return fc.array(fc.tuple(names, queryValue), { maxLength: 6 }).map((pairs) => {
    if (pairs.length === 0) return Buffer.alloc(0);
    const parts = pairs.map(([name, value]) => Buffer.concat([Buffer.from(`${name}=`), Buffer.from(value)]));
    return Buffer.concat([
      Buffer.from("?"),
      ...parts.flatMap((p, i) => (i === 0 ? [p] : [Buffer.from("&"), p])),
    ]);
  });
}

const headerName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,30}$/);
const headerValue: fc.Arbitrary<string> = fc.oneof(
  fc
    .string({ maxLength: 60 })
    .map((s) => [...s].filter((ch) => ch.charCodeAt(0) >= 0x20 && ch.charCodeAt(0) !== 0x7f).join("")),
  fc
    .uint8Array({ minLength: 1, maxLength: 20 })
    .map((bytes) => Buffer.from(bytes.map((b) => (b < 0x20 || b === 0x7f ? 0x41 : b))).toString("latin1")),
  fc.integer({ min: 1000, max: 8000 }).map((n) => "v".repeat(n)),
);
const authHeader = fc.constantFrom(
  [AUTH],
  [AUTH],
  [AUTH],
  [AUTH],
  [AUTH],
  [AUTH],
  [AUTH],
  [],
  ["Authorization: Bearer not-a-configured-key-0123456789"],
  [`X-API-Key: ${CHILD_ADMIN_KEY}`],
  [`Authorization: Basic ${Buffer.from(`admin:${CHILD_ADMIN_KEY}`).toString("base64")}`],
  [`Authorization: Bearer ${"k".repeat(5000)}`],
  [AUTH, `Authorization: Bearer ${CHILD_ADMIN_KEY}x`],
);
const contentType = fc.constantFrom(
  [],
  ["Content-Type: application/json"],
  ["Content-Type: application/json"],
  ["Content-Type: text/plain"],
  ["Content-Type: application/x-www-form-urlencoded"],
  ["Content-Type: multipart/form-data; boundary=x"],
  ["Content-Type: application/json; charset=utf-16"],
  ["Content-Type: ;;;"],
  ["Content-Type: application/json", "Content-Type: text/xml"],
);
const extraHeaders = fc.array(
  fc.oneof(
    fc.tuple(headerName, headerValue).map(([n, v]) => `${n}: ${v}`),
    fc.string({ maxLength: 300 }).map((v) => `Idempotency-Key: ${v.replace(/[\r\n]/g, "")}`),
    fc.string({ maxLength: 200 }).map((v) => `X-Request-Id: ${v.replace(/[\r\n]/g, "")}`),
    fc.constantFrom("Accept: */*", "Accept-Encoding: gzip, br", "Expect: 100-continue", "Range: bytes=0-1"),
  ),
  { maxLength: 12 },
);

function bodyArb(route: Route): fc.Arbitrary<Buffer | null> {
  const valid = VALID_BODIES[`${route.method} ${route.path}`] ?? {};
  const entries = (extra: string) =>
    `{${[...Object.entries(valid).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`), extra]
      .filter(Boolean)
      .join(",")}}`;
  const fields = [...Object.keys(valid), "data", "events", "url", "tenant_id", "id", "metadata", "headers"];
  const text = (s: string) => Buffer.from(s, "utf8");
  return fc.oneof(
    fc.constant(null),
    fc.constant(text(JSON.stringify(valid))),
    fc.jsonValue({ maxDepth: 5 }).map((v) => text(JSON.stringify(v) ?? "null")),
    // One field replaced: huge numbers, long strings, wrong types.
    fc
      .tuple(
        fc.constantFrom(...fields),
        fc.oneof(
          fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? "null"),
          fc.constantFrom(
            "1e400",
            "-1e400",
            "9007199254740993",
            "123456789012345678901234567890",
            "-0",
            "1E2",
          ),
          fc.integer({ min: 256, max: 200_000 }).map((n) => JSON.stringify("é".repeat(n))),
        ),
      )
      .map(([field, value]) => text(entries(`${JSON.stringify(field)}:${value}`))),
    // Prototype keys at the top and inside object fields.
    fc
      .tuple(
        fc.constantFrom("", "data", "metadata", "headers"),
        fc.constantFrom("__proto__", "constructor", "prototype"),
        fc.constantFrom('{"polluted":"yes"}', '{"prototype":{"polluted":1}}', "null", '"x"', "[]"),
      )
      .map(([where, key, value]) =>
        text(entries(where === "" ? `"${key}":${value}` : `"${where}":{"${key}":${value}}`)),
      ),
    // Deep nesting, up to the body limit; inside an event's data only as deep as hookd copes with
    // today (a known bug, pinned at the end of this file).
    fc
      .tuple(fc.integer({ min: 1, max: 120_000 }), fc.constantFrom("[", '{"a":', '{"data":', '{"__proto__":'))
      .map(([depth, open]) => {
        const close = open === "[" ? "]" : "}";
        const nested = (n: number) => `${open.repeat(n)}1${close.repeat(n)}`;
        if (open === "[" && depth % 2 === 0)
          return text(`{"type":"fuzz.event","data":{"x":${nested(Math.min(depth, SAFE_DATA_DEPTH))}}}`);
        return text(nested(depth));
      }),
    // Invalid UTF-8 inside otherwise plausible JSON, and random bytes.
    fc
      .tuple(
        fc.constantFrom('{"name":"', '{"type":"fuzz.event","data":{"', '{"'),
        invalidUtf8,
        fc.constantFrom('"}', '":1}}', ""),
      )
      .map(([a, bad, b]) => Buffer.concat([text(a), Buffer.from(bad), text(b)])),
    fc.uint8Array({ maxLength: 600 }).map((bytes) => Buffer.from(bytes)),
    // Over the limit.
    fc.integer({ min: LIMIT + 1, max: 2 * LIMIT }).map((n) => text(`{"pad":"${"p".repeat(n)}"}`)),
  );
}

const chunking = fc.option(fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 8 }), {
  freq: 3,
});

interface Case {
  route: Route;
  method: string;
  id: string | Buffer;
  query: Buffer;
  headers: string[];
  body: Buffer | null;
  chunks: number[] | null;
}

const caseArb: fc.Arbitrary<Case> = fc.constant(null).chain(() =>
  fc.constantFrom(...routes).chain((route) =>
    fc.record({
      route: fc.constant(route),
      method: fc.oneof(
        { weight: 6, arbitrary: fc.constant(route.method) },
        fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"),
      ),
      id: idArb,
      query: queryArb(route),
      headers: fc
        .tuple(authHeader, contentType, extraHeaders)
        .map(([auth, type, extra]) => [...auth, ...type, ...extra]),
      body: bodyArb(route),
      chunks: chunking,
    }),
  ),
);

function requestOf(c: Case): RawRequest {
  const id =
    c.id === REAL
      ? Buffer.from(real[resourceOf(c.route.path)][0] ?? "missing")
      : Buffer.isBuffer(c.id)
        ? c.id
        : Buffer.from(c.id, "latin1");
  const [before, after = ""] = c.route.path.split("{id}");
  const target = c.route.path.includes("{id}")
    ? Buffer.concat([Buffer.from(before ?? ""), id, Buffer.from(after), c.query])
    : Buffer.concat([Buffer.from(c.route.path), c.query]);
  if (c.body === null) return { head: head(c.method, target, c.headers) };
  const { headers, pieces } = framed(c.body, c.chunks);
  return { head: head(c.method, target, [...c.headers, ...headers]), body: pieces };
}

// ---- the tests ----

test(
  `${RUNS} random requests over real HTTP: never a 5xx, errors in the API's shape, bounded time, the process keeps answering`,
  async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const request = requestOf(c);
        // Bun refuses a header block over its limit before hookd sees it: a 431, or a reset when
        // it closes with the rest of the request unread.
        const bunMay: (number | "closed")[] = [];
        if (request.head.length > BUN_HEADER_LIMIT - 64) bunMay.push(431, "closed");
        // So is a body beyond Bun's backstop, declared or chunked, even where hookd
        // answers without reading it: Bun will not drain that much, and closes.
        if ((c.body?.byteLength ?? 0) > BUN_BODY_LIMIT) bunMay.push(413, "closed");
        await send(request, c.method, bunMay);
        if (++n % HEALTH_EVERY === 0) await expectHealthy();
      }),
      { numRuns: RUNS, interruptAfterTimeLimit: FULL ? 500_000 : 90_000, markInterruptAsFailure: true },
    );
    expect(n).toBeGreaterThanOrEqual(RUNS);
    await expectHealthy();
  },
  FULL ? 560_000 : 120_000,
);

describe("bodies over the limit, on every route and every method", () => {
  const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];
  const pathOf = (route: Route) => route.path.replace("{id}", real[resourceOf(route.path)][0] ?? "missing");

  test("a declared Content-Length over the limit: 413 in the API's shape, before the body is read", async () => {
    for (const route of routes) {
      for (const method of METHODS) {
        const res = await send(
          {
            head: head(method, pathOf(route), [
              AUTH,
              "Content-Type: application/json",
              `Content-Length: ${LIMIT + 1}`,
            ]),
            body: [Buffer.alloc(LIMIT + 1, 0x20)],
          },
          method,
        );
        expect([method, route.path, originOf(res), res.status]).toEqual([method, route.path, "hookd", 413]);
      }
    }
  }, 60_000);

  test("a chunked body over the limit: 413 where a body is read, and never a 5xx or a hang anywhere", async () => {
    const pieces = chunked(Array.from({ length: 40 }, () => Buffer.alloc(16_384, 0x61)));
    for (const route of routes) {
      for (const method of METHODS) {
        const res = await send(
          {
            head: head(method, pathOf(route), [
              AUTH,
              "Content-Type: application/json",
              "Transfer-Encoding: chunked",
            ]),
            body: pieces,
          },
          method,
        );
        expect([method, route.path, originOf(res)]).toEqual([method, route.path, "hookd"]);
        if (route.hasBody && method === route.method)
          expect([method, route.path, res.status]).toEqual([method, route.path, 413]);
      }
    }
    await expectHealthy();
  }, 60_000);

  test("a Content-Length beyond Bun's own backstop is refused with a 413 (or a close) by Bun", async () => {
    const res = await send(
      {
        head: head("POST", "/v1/events", [
          AUTH,
          "Content-Type: application/json",
          `Content-Length: ${BUN_BODY_LIMIT + 1024 * 1024}`,
        ]),
        body: Array.from({ length: 4 }, () => Buffer.alloc(65_536, 0x20)),
      },
      "POST",
      [413, "closed"],
    );
    expect([413, null]).toContain(res.status);
  });
});

describe("requests Bun answers itself: a 4xx (or a closed connection), and the process lives on", () => {
  const cases: [string, RawRequest, Origin, number | null, (number | "closed")[]?][] = [
    [
      "a 64 KiB header value",
      { head: head("GET", "/v1/webhooks", [AUTH, `X-Big: ${"a".repeat(65_536)}`]) },
      "bun",
      431,
    ],
    [
      "a 1 MiB header block",
      {
        head: head("GET", "/v1/webhooks", [
          AUTH,
          ...Array.from({ length: 256 }, (_, i) => `X-H${i}: ${"b".repeat(4096)}`),
        ]),
      },
      "bun",
      431,
    ],
    [
      "1000 headers",
      { head: head("GET", "/v1/webhooks", [AUTH, ...Array.from({ length: 1000 }, (_, i) => `X-H${i}: v`)]) },
      "bun",
      431,
    ],
    [
      "100 headers",
      { head: head("GET", "/v1/webhooks", [AUTH, ...Array.from({ length: 100 }, (_, i) => `X-H${i}: v`)]) },
      "hookd",
      200,
    ],
    [
      "an 8 KiB query string",
      { head: head("GET", `/v1/webhooks?event=${"a".repeat(8192)}`, [AUTH]) },
      "hookd",
      422,
    ],
    [
      "a 64 KiB query string",
      { head: head("GET", `/v1/webhooks?event=${"a".repeat(65_536)}`, [AUTH]) },
      "bun",
      431,
    ],
    [
      "a 1 MiB query string",
      { head: head("GET", `/v1/events?after=${"a".repeat(1 << 20)}`, [AUTH]) },
      "bun",
      431,
    ],
    [
      "invalid UTF-8 in the path",
      { head: head("GET", Buffer.from([...Buffer.from("/v1/webhooks/wh_"), 0xff, 0xfe]), [AUTH]) },
      "hookd",
      404,
    ],
    [
      "invalid UTF-8 in a cursor",
      { head: head("GET", Buffer.from([...Buffer.from("/v1/events?after="), 0xc0, 0xaf]), [AUTH]) },
      "hookd",
      422,
    ],
    [
      "invalid UTF-8 in a header value",
      {
        head: Buffer.concat([
          head("GET", "/v1/webhooks", [AUTH]),
          Buffer.from("\r\nX-A: "),
          Buffer.from([0xff, 0xfe, 0x80]),
        ]),
      },
      "hookd",
      200,
    ],
    [
      "invalid UTF-8 in the key",
      {
        head: Buffer.concat([
          head("GET", "/v1/webhooks", []),
          Buffer.from("\r\nAuthorization: Bearer "),
          Buffer.from([0xff, 0xfe]),
        ]),
      },
      "hookd",
      401,
    ],
    [
      "a control character in a header",
      { head: head("GET", "/v1/webhooks", [AUTH, "X-A: a\u0001b"]) },
      "bun",
      400,
    ],
    [
      "Content-Length and Transfer-Encoding together",
      {
        head: head("POST", "/v1/events", [AUTH, "Content-Length: 5", "Transfer-Encoding: chunked"]),
        body: ["0\r\n\r\n"],
      },
      "bun",
      400,
    ],
    [
      "two different Content-Lengths",
      {
        head: head("POST", "/v1/events", [AUTH, "Content-Length: 5", "Content-Length: 6"]),
        body: ["{}{}{}"],
      },
      "bun",
      400,
    ],
    [
      "a Content-Length that is not a number",
      { head: head("POST", "/v1/events", [AUTH, "Content-Length: abc"]), body: ["{}"] },
      "bun",
      400,
    ],
    [
      "a negative Content-Length",
      { head: head("POST", "/v1/events", [AUTH, "Content-Length: -1"]), body: ["{}"] },
      "bun",
      400,
    ],
    [
      "a 20-digit Content-Length",
      { head: head("POST", "/v1/events", [AUTH, "Content-Length: 99999999999999999999"]), body: ["{}"] },
      "bun",
      400,
    ],
    [
      "a malformed chunk size",
      {
        head: head("POST", "/v1/events", [AUTH, "Transfer-Encoding: chunked"]),
        body: ["zz\r\nabc\r\n0\r\n\r\n"],
      },
      "bun",
      400,
    ],
    [
      "no Host header",
      { head: Buffer.from(`GET /v1/webhooks HTTP/1.1\r\n${AUTH}\r\nConnection: close`) },
      "bun",
      400,
    ],
    ["bytes that are not HTTP", { head: Buffer.from("\u0000\u0001\u0002garbage") }, "bun", 400],
    ["OPTIONS *", { head: head("OPTIONS", "*", [AUTH]) }, "bun", 400],
    ["an unknown method", { head: head("FOO", "/v1/events", [AUTH]) }, "closed", null, ["closed"]],
    ["a lowercase method", { head: head("get", "/v1/webhooks", [AUTH]) }, "closed", null, ["closed"]],
    [
      "HTTP/2.0 in the request line",
      { head: Buffer.from(`GET /v1/webhooks HTTP/2.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n${AUTH}`) },
      "bun",
      505,
      [505],
    ],
    [
      "HTTP/1.0",
      { head: Buffer.from(`GET /v1/webhooks HTTP/1.0\r\nHost: 127.0.0.1\r\n${AUTH}`) },
      "hookd",
      200,
    ],
    ["an absolute URI", { head: head("GET", "http://other.example/v1/webhooks", [AUTH]) }, "hookd", 200],
  ];
  for (const [name, request, origin, status, bunMay] of cases) {
    test(name, async () => {
      const res = await send(request, "GET", bunMay ?? []);
      expect([originOf(res), res.status]).toEqual([origin, status]);
      await expectHealthy();
    });
  }
});

/** Log lines of an unhandled error or a 500, except a request body cut off by the client (below). */
function unhandledLines(): string[] {
  const aborted = new Set<string>();
  const lines = child.lines.filter((line) => line.includes('"status":500') || line.includes("unhandled"));
  for (const line of lines) {
    const entry = JSON.parse(line) as { err?: { name?: string }; req_id?: string };
    if (entry.err?.name === "AbortError" && entry.req_id) aborted.add(entry.req_id);
  }
  return lines.filter((line) => !aborted.has((JSON.parse(line) as { req_id?: string }).req_id ?? ""));
}

test("the process answered everything and logged no unhandled error", async () => {
  await expectHealthy();
  expect(unhandledLines()).toEqual([]);
  expect(child.stderr()).toBe("");
});

// ---- known bugs, kept failing on purpose until fixed (they run last: their 500s are in the log) ----

describe("once known bugs, now fixed", () => {
  // src/http/routes/events.ts (toNewEvent) re-serialises `data` with JSON.stringify, which throws
  // RangeError (call stack) on data nested some 50 000 levels deep: a body well under the limit
  // gets a 500. JSON.parse accepts it, so a depth check belongs where the body is parsed
  // (src/http/body.ts readJson, as a 422) or around the stringify.
  test("event data nested 100 000 levels deep is refused with a 422 naming the body, not a 500", async () => {
    const nested = `${"[".repeat(100_000)}1${"]".repeat(100_000)}`;
    const body = Buffer.from(`{"type":"fuzz.event","data":{"x":${nested}}}`);
    const res = await rawRequest(port, {
      head: head("POST", "/v1/events", [
        AUTH,
        "Content-Type: application/json",
        `Content-Length: ${body.byteLength}`,
      ]),
      body: [body],
    });
    expect([originOf(res), res.status]).toEqual(["hookd", 422]);
    expect(JSON.parse(res.body.toString("utf8")).error).toEqual({
      code: "validation_failed",
      message: "the request is not valid",
      details: [{ path: "body", message: "is nested more than 256 levels deep" }],
    });
  });

  // src/http/body.ts (readBody) or src/http/app.ts (onError): a client that closes the connection
  // in the middle of its body (or a chunked body Bun's parser refuses after hookd began reading
  // it) makes the body stream throw an AbortError, which the error handler logs as an unhandled
  // error and records as a 500 in the access log. Nobody receives that 500, but it is an
  // error-level line and a 500 for what is the client's doing.
  test("a body cut off by the client is a 400 in the log, not an unhandled error or a 500", async () => {
    const requestId = `cut-off-${crypto.randomUUID()}`;
    const socket = net.connect({ host: "127.0.0.1", port });
    try {
      await new Promise((connected) => socket.once("connect", connected));
      let answered = "";
      socket.on("data", (data: Buffer) => {
        answered += data.toString("latin1");
      });
      // The 100 Continue says the server took the head and waits for the body: the client then
      // sends part of it and goes away.
      socket.write(
        `POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n${AUTH}\r\nX-Request-Id: ${requestId}\r\n` +
          "Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n",
      );
      await waitFor(() => answered.startsWith("HTTP/1.1 100 "), { what: "the 100 Continue" });
      await new Promise((written) => socket.write('{"type":', written));
    } finally {
      socket.destroy();
    }
    // The access log line is written last, after any error line of the same request.
    const line = await waitFor(
      () => child.lines.find((l) => l.includes(`"req_id":"${requestId}"`) && l.includes('"msg":"request"')),
      { what: "the access log line of the cut-off request" },
    );
    expect((JSON.parse(line) as { status: number }).status).toBe(400);
    expect(child.lines.filter((l) => l.includes(requestId) && l !== line)).toEqual([]);
  });
});
