// Inputs that parse as JSON but are easy to mangle: "__proto__" keys, lone surrogates, impossible
// dates, a JSON null where an object is optional.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { parseIsoTime } from "../../src/http/schemas/events.ts";
import { createTestDaemon, type TestDaemon } from "../support/daemon.ts";

let t: TestDaemon;
beforeEach(async () => {
  t = await createTestDaemon();
});
afterEach(async () => {
  await t.close();
});

test('a "__proto__" key in event data is kept in the stored and delivered payload', async () => {
  const raw = '{"type":"a.b","data":{"__proto__":{"x":1},"y":2}}';
  const res = await t.request("POST", "/v1/events", { rawBody: raw });
  expect(res.status).toBe(202);
  const event = await t.request("GET", `/v1/events/${res.body.id}`);
  expect(event.text).toContain('"__proto__":{"x":1}');
  const stored = await t.daemon.store.findEvent(res.body.id);
  expect(stored?.payload).toContain('"data":{"__proto__":{"x":1},"y":2}');
});

test("lone surrogates are refused where they would be stored as U+FFFD", async () => {
  const url = "https://example.com/h";
  for (const body of [
    `{"url":"${url}","events":"a.b","name":"x\\ud800"}`,
    `{"url":"${url}","events":"a.b","description":"\\udc00"}`,
    `{"url":"${url}","events":"a.b","metadata":{"k":"\\ud800"}}`,
    `{"url":"${url}","events":"a.b","account_ids":["\\ud800"]}`,
  ]) {
    const res = await t.request("POST", "/v1/webhooks", { rawBody: body });
    expect(res.status).toBe(422);
  }
  const ok = await t.request("POST", "/v1/webhooks", { body: { url, events: "a.b", name: "emoji 😀" } });
  expect(ok.status).toBe(201);
  expect((await t.request("GET", `/v1/webhooks/${ok.body.id}`)).body.name).toBe("emoji 😀");
});

test("impossible dates are refused; offsets and plain dates are read as UTC instants", () => {
  expect(parseIsoTime("2000-02-30")).toBeNull();
  expect(parseIsoTime("2026-13-01T00:00:00Z")).toBeNull();
  expect(parseIsoTime("2026-01-01T24:00:00Z")).toBeNull();
  expect(parseIsoTime("yesterday")).toBeNull();
  expect(parseIsoTime("2024-02-29")).toBe(Date.UTC(2024, 1, 29));
  expect(parseIsoTime("2026-01-01T01:00:00+01:00")).toBe(Date.UTC(2026, 0, 1));
  expect(parseIsoTime("2026-01-01T00:00:00.250Z")).toBe(Date.UTC(2026, 0, 1) + 250);
});

test("recover refuses an impossible date; rotate-secret refuses a JSON null body", async () => {
  const { body } = await t.request("POST", "/v1/webhooks", {
    body: { url: "https://example.com/h", events: "a.b" },
  });
  const recover = await t.request("POST", `/v1/webhooks/${body.id}/recover`, {
    body: { since: "2000-02-30" },
  });
  expect(recover.status).toBe(422);
  expect(recover.body.error.details[0].path).toBe("since");
  const rotate = await t.request("POST", `/v1/webhooks/${body.id}/rotate-secret`, { rawBody: "null" });
  expect(rotate.status).toBe(422);
  const empty = await t.request("POST", `/v1/webhooks/${body.id}/rotate-secret`);
  expect(empty.status).toBe(200);
});
