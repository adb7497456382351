// The error shape (SPEC §2 Errors), body limits, operational endpoints, /openapi.json and the event
// type catalog, all through the real app.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { ADMIN_KEY, createTestDaemon, type TestDaemon, type TestResponse } from "../support/daemon.ts";

const LIMIT = 2048;
const CATALOG_YAML = `
limits:
  max_payload_bytes: ${LIMIT}
event_types:
  - name: invoice.paid
    description: An invoice was paid.
    schema: { type: object, required: [invoice_id] }
  - name: invoice.voided
    description: An invoice was voided.
  - name: customer_account.created
`;

let t: TestDaemon;
beforeEach(async () => {
  t = await createTestDaemon({ yaml: CATALOG_YAML });
});
afterEach(async () => {
  await t.close();
});

const valid = { url: "https://example.com/hooks", events: ["invoice.paid"] };

/** The one error shape: `{error: {code, message}}`, with `details` on 422 only. */
function expectError(res: TestResponse, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  expect(Object.keys(res.body)).toEqual(["error"]);
  expect(res.body.error.code).toBe(code);
  expect(typeof res.body.error.message).toBe("string");
  expect(res.body.error.message.length).toBeGreaterThan(0);
  const keys = Object.keys(res.body.error).sort();
  if (status === 422) {
    expect(keys).toEqual(["code", "details", "message"]);
    expect(Array.isArray(res.body.error.details)).toBe(true);
    for (const detail of res.body.error.details) {
      expect(typeof detail.path).toBe("string");
      expect(typeof detail.message).toBe("string");
    }
  } else {
    expect(keys).toEqual(["code", "message"]);
  }
  expect(res.text).not.toContain("    at ");
}

/** A request through the app whose body is a stream of unknown length (no content-length). */
async function streamRequest(path: string, chunks: Uint8Array[]): Promise<TestResponse & { pulled: number }> {
  let index = 0;
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[index++];
      if (!chunk) return controller.close();
      pulled += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  const response = await t.daemon.app.request(path, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
    body,
    duplex: "half",
  } as RequestInit);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: JSON.parse(text), text, pulled };
}

describe("error shape", () => {
  test("an unknown route is 404 not_found, with or without a key", async () => {
    expectError(await t.request("GET", "/v1/nope"), 404, "not_found");
    expectError(await t.request("GET", "/nope", { key: null }), 404, "not_found");
    expectError(await t.request("POST", "/v1/webhooks/a/b/c", { body: {} }), 404, "not_found");
  });

  test("an unknown webhook id is 404 not_found", async () => {
    expectError(await t.request("GET", "/v1/webhooks/wh_missing"), 404, "not_found");
  });

  test("a wrong method is 405 with Allow; OPTIONS is 204 with Allow", async () => {
    const collection = await t.request("DELETE", "/v1/webhooks");
    expectError(collection, 405, "method_not_allowed");
    const allow = (collection.headers.get("allow") ?? "").split(/,\s*/).sort();
    expect(allow).toEqual(["GET", "HEAD", "OPTIONS", "POST"]);

    const item = await t.request("POST", "/v1/webhooks/wh_x");
    expect(item.status).toBe(405);
    expect((item.headers.get("allow") ?? "").split(/,\s*/).sort()).toEqual(
      ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "PUT"].sort(),
    );

    const rotate = await t.request("GET", "/v1/webhooks/wh_x/rotate-secret");
    expect(rotate.status).toBe(405);
    expect(rotate.headers.get("allow")).toBe("POST, OPTIONS");

    const options = await t.request("OPTIONS", "/v1/webhooks", { key: null });
    expect(options.status).toBe(204);
    expect(options.text).toBe("");
    expect((options.headers.get("allow") ?? "").split(/,\s*/).sort()).toEqual([
      "GET",
      "HEAD",
      "OPTIONS",
      "POST",
    ]);
  });

  test("malformed JSON, an empty body and invalid UTF-8 are 400 invalid_json", async () => {
    expectError(await t.request("POST", "/v1/webhooks", { rawBody: "{nope" }), 400, "invalid_json");
    expectError(await t.request("POST", "/v1/webhooks", { rawBody: "" }), 400, "invalid_json");
    // Valid JSON but for one byte that is not UTF-8: refused, not read as U+FFFD.
    const [head, tail] = JSON.stringify({ ...valid, name: "@" }).split("@") as [string, string];
    const encoder = new TextEncoder();
    const invalidUtf8 = new Uint8Array([...encoder.encode(head), 0xff, ...encoder.encode(tail)]);
    expectError(await t.request("POST", "/v1/webhooks", { rawBody: invalidUtf8 }), 400, "invalid_json");
    expectError(
      await t.request("PATCH", "/v1/webhooks/wh_x", { rawBody: '{"name": "a",}' }),
      400,
      "invalid_json",
    );
  });

  test("a JSON body that is not an object is 422 with path body", async () => {
    for (const raw of ["[]", '"text"', "42", "null", "true", `[${JSON.stringify(valid)}]`]) {
      const res = await t.request("POST", "/v1/webhooks", { rawBody: raw });
      expectError(res, 422, "validation_failed");
      expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual(["body"]);
    }
  });

  test("a body over limits.max_payload_bytes is 413, with a content-length", async () => {
    const big = JSON.stringify({ ...valid, description: "x".repeat(LIMIT) });
    // app.request() sends no content-length of its own: declare it as a client on the wire would.
    const declared = { "content-length": String(big.length) };
    expectError(
      await t.request("POST", "/v1/webhooks", { rawBody: big, headers: declared }),
      413,
      "payload_too_large",
    );
    // Every request, even one to a route that reads no body, or one without a key.
    expectError(
      await t.request("DELETE", "/v1/webhooks/wh_x", { rawBody: big, headers: declared }),
      413,
      "payload_too_large",
    );
    expectError(
      await t.request("POST", "/v1/nope", { key: null, rawBody: big, headers: declared }),
      413,
      "payload_too_large",
    );
    // Without a declared length the body is counted as it is read.
    expectError(await t.request("POST", "/v1/webhooks", { rawBody: big }), 413, "payload_too_large");
    // A body of exactly the limit is read and validated (description is over its 1000 characters).
    const base = JSON.stringify({ ...valid, description: "" }).length;
    const atLimit = JSON.stringify({ ...valid, description: "x".repeat(LIMIT - base) });
    expect(atLimit.length).toBe(LIMIT);
    const res = await t.request("POST", "/v1/webhooks", { rawBody: atLimit });
    expectError(res, 422, "validation_failed");
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual(["description"]);
  });

  test("a chunked body of unknown length over the limit is 413, and reading stops early", async () => {
    const head = new TextEncoder().encode('{"description":"');
    const chunks = [head, ...Array.from({ length: 100 }, () => new Uint8Array(500).fill(0x79))];
    const res = await streamRequest("/v1/webhooks", chunks);
    expectError(res, 413, "payload_too_large");
    expect(res.pulled).toBeLessThan(LIMIT + 2000);

    const small = await streamRequest("/v1/webhooks", [new TextEncoder().encode(JSON.stringify(valid))]);
    expect(small.status).toBe(201);
  });

  test("X-Request-Id is echoed when sane and generated otherwise, on errors too", async () => {
    const ok = await t.request("GET", "/healthz", { headers: { "x-request-id": "req-123.abc" } });
    expect(ok.headers.get("x-request-id")).toBe("req-123.abc");
    const err = await t.request("GET", "/v1/nope", { headers: { "x-request-id": "req-404" } });
    expect(err.status).toBe(404);
    expect(err.headers.get("x-request-id")).toBe("req-404");
    const invalid = await t.request("POST", "/v1/webhooks", {
      rawBody: "{",
      headers: { "x-request-id": "r1" },
    });
    expect(invalid.headers.get("x-request-id")).toBe("r1");
    const generated = await t.request("GET", "/healthz", { headers: { "x-request-id": "bad id\u0001" } });
    expect(generated.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("missing and invalid keys are 401 unauthorized; a missing scope is 403 forbidden", async () => {
    expectError(await t.request("GET", "/v1/webhooks", { key: null }), 401, "unauthorized");
    expectError(await t.request("GET", "/v1/webhooks", { key: "not-a-key-at-all" }), 401, "unauthorized");
    expectError(
      await t.request("GET", "/v1/webhooks", { key: null, headers: { authorization: "Basic abc" } }),
      401,
      "unauthorized",
    );
    expectError(
      await t.request("GET", "/v1/webhooks", { key: "test-noscope-key-0123456789" }),
      403,
      "forbidden",
    );
  });
});

describe("operational endpoints", () => {
  test("/healthz is 200 and /readyz reports the database and the dispatcher", async () => {
    const health = await t.request("GET", "/healthz", { key: null });
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: "ok" });
    const before = await t.request("GET", "/readyz", { key: null });
    expect(before.status).toBe(503);
    expect(before.body.error.code).toBe("unavailable");
    expect(before.body.checks).toEqual({ database: "ok", dispatcher: "not running" });
    await t.daemon.start();
    const ready = await t.request("GET", "/readyz", { key: null });
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe("ready");
    expect(ready.body.checks).toEqual({ database: "ok", dispatcher: "ok" });
  });

  test("/openapi.json is OpenAPI 3 and documents every declared route", async () => {
    const res = await t.request("GET", "/openapi.json", { key: null });
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBe("hookd");
    expect(t.daemon.routes.length).toBeGreaterThan(5);

    const documented = new Set<string>();
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(methods)) documented.add(`${method} ${path}`);
    }
    const declared = new Set(
      t.daemon.routes.map((r) => `${r.method} ${r.path.replace(/:([a-z_]+)/g, "{$1}")}`),
    );
    expect([...documented].sort()).toEqual([...declared].sort());

    for (const route of t.daemon.routes) {
      const op = doc.paths[route.path.replace(/:([a-z_]+)/g, "{$1}")][route.method];
      expect(op.responses).toBeDefined();
      if (route.body) expect(op.requestBody.content["application/json"].schema).toBeDefined();
      else expect(op.requestBody).toBeUndefined();
      if (route.auth !== null) expect(op.responses["401"]).toBeDefined();
    }

    const create = doc.paths["/v1/webhooks"].post;
    expect(create.requestBody.required).toBe(true);
    const schema = create.requestBody.content["application/json"].schema;
    expect(schema.type).toBe("object");
    expect(schema.required).toEqual(expect.arrayContaining(["url", "events"]));
    expect(schema.required).not.toContain("name");
    expect(schema.properties.events.anyOf).toEqual([
      { type: "string" },
      expect.objectContaining({ type: "array", minItems: 1, items: { type: "string" } }),
    ]);
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(["url", "events", "name", "account_ids", "headers", "metadata", "secret"]),
    );
    expect(doc.paths["/v1/webhooks/{id}/rotate-secret"].post.requestBody.required).toBe(false);

    const list = doc.paths["/v1/webhooks"].get;
    const params = list.parameters.map((p: { name: string }) => p.name);
    expect(params).toEqual(
      expect.arrayContaining([
        "limit",
        "after",
        "before",
        "order",
        "event",
        "enabled",
        "account_id",
        "tenant_id",
      ]),
    );
    const order = list.parameters.find((p: { name: string }) => p.name === "order");
    expect(order.schema.enum.sort()).toEqual(
      ["created_at", "-created_at", "updated_at", "-updated_at", "name", "-name"].sort(),
    );
    const item = doc.paths["/v1/webhooks/{id}"].get;
    expect(item.parameters).toContainEqual({
      name: "id",
      in: "path",
      required: true,
      schema: { type: "string" },
    });
  });
});

describe("event types", () => {
  test("GET /v1/event-types lists the configured catalog and the built-ins", async () => {
    expectError(await t.request("GET", "/v1/event-types", { key: null }), 401, "unauthorized");
    const res = await t.request("GET", "/v1/event-types", { key: "test-noscope-key-0123456789" });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual([
      {
        name: "invoice.paid",
        description: "An invoice was paid.",
        schema: { type: "object", required: ["invoice_id"] },
      },
      { name: "invoice.voided", description: "An invoice was voided." },
      { name: "customer_account.created", description: "" },
      { name: "webhook.test", description: expect.any(String) },
      { name: "webhook.disabled", description: expect.any(String) },
    ]);
  });

  test("with a catalog, unknown types and prefixes matching nothing are 422 unknown_event_type", async () => {
    for (const events of [
      ["*"],
      ["invoice.*"],
      ["webhook.*"],
      ["webhook.test", "webhook.disabled"],
      ["customer_account.*"],
    ]) {
      const res = await t.request("POST", "/v1/webhooks", { body: { ...valid, events } });
      expect(res.status).toBe(201);
    }
    for (const [events, path] of [
      [["invoice.refunded"], "events[0]"],
      [["invoice.paid", "order.*"], "events[1]"],
      ["nope.*", "events"],
      [["invoice"], "events[0]"],
      [["customerXaccount.*"], "events[0]"],
      [["invoice.paid.*"], "events[0]"],
    ] as const) {
      const res = await t.request("POST", "/v1/webhooks", { body: { ...valid, events } });
      expectError(res, 422, "validation_failed");
      expect(res.body.error.details).toEqual([
        { path, message: expect.any(String), code: "unknown_event_type" },
      ]);
    }
    const { body } = await t.request("POST", "/v1/webhooks", { body: valid });
    const patched = await t.request("PATCH", `/v1/webhooks/${body.id}`, {
      body: { events: ["invoice.nope"] },
    });
    expect(patched.status).toBe(422);
    expect(patched.body.error.details[0]).toMatchObject({ path: "events[0]", code: "unknown_event_type" });
  });

  test("without a catalog any well-formed type is accepted", async () => {
    const open = await createTestDaemon();
    try {
      const res = await open.request("POST", "/v1/webhooks", {
        body: { ...valid, events: ["anything.goes", "x.*"] },
      });
      expect(res.status).toBe(201);
      const types = await open.request("GET", "/v1/event-types");
      expect(types.body.data.map((e: { name: string }) => e.name)).toEqual([
        "webhook.test",
        "webhook.disabled",
      ]);
      const bad = await open.request("POST", "/v1/webhooks", { body: { ...valid, events: ["not a type"] } });
      expect(bad.status).toBe(422);
      expect(bad.body.error.details[0].code).toBeUndefined();
    } finally {
      await open.close();
    }
  });
});
