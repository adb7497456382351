// The delivery controls of a subscription through the real app, on the pass's driver (SPEC §2
// Webhooks): filter, ordering, rate_limit and signature_scheme on create, PATCH, PUT (null clears),
// on every answer, in the list filter `ordering` and in /openapi.json; a filter's faults with their
// paths; fan-out skipping the webhooks whose filter an event does not match (deliveries_count),
// also right after the filter changed; the test event not filtered; v1a key material (public_key,
// never a secret or the private key) on create, GET, list, rotation and a change of scheme.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { decodePublicKey, decodeSecret } from "../../src/domain/secrets.ts";
import { createTestDaemon, type TestDaemon } from "../support/daemon.ts";

let t: TestDaemon;
beforeEach(async () => {
  t = await createTestDaemon();
});
afterEach(async () => {
  await t.close();
});

// biome-ignore lint/suspicious/noExplicitAny: API bodies are inspected freely
type Json = any;

const valid = { url: "https://example.com/hooks", events: ["invoice.*"] };

async function create(body: Record<string, unknown>): Promise<Json> {
  const res = await t.request("POST", "/v1/webhooks", { body: { ...valid, ...body } });
  expect(res.status).toBe(201);
  return res.body;
}

const details = (res: { body: Json }) =>
  [...res.body.error.details].sort((a: Json, b: Json) => a.path.localeCompare(b.path));

describe("fields", () => {
  test("defaults: no filter, unordered, no rate limit, v1 with a secret and no public key", async () => {
    const created = await create({});
    expect(created).toMatchObject({
      filter: null,
      ordering: "unordered",
      rate_limit: null,
      signature_scheme: "v1",
    });
    expect(created.public_key).toBeNull();
    expect(decodeSecret(created.secret)).not.toBeNull();
  });

  test("stored and returned on create, GET, list, PATCH and PUT; null clears the nullable ones", async () => {
    const filter = { "data.amount": { $gte: 1000 }, $or: [{ account_id: "acct_1" }, { "data.vip": true }] };
    const created = await create({ filter, ordering: "fifo", rate_limit: 20 });
    expect(created).toMatchObject({ filter, ordering: "fifo", rate_limit: 20, signature_scheme: "v1" });
    const fetched = await t.request("GET", `/v1/webhooks/${created.id}`);
    expect(fetched.body).toMatchObject({ filter, ordering: "fifo", rate_limit: 20 });
    const listed = await t.request("GET", "/v1/webhooks");
    expect(listed.body.data[0]).toMatchObject({ filter, ordering: "fifo", rate_limit: 20 });

    const other = { type: { $startsWith: "invoice." } };
    const patched = await t.request("PATCH", `/v1/webhooks/${created.id}`, {
      body: { filter: other, rate_limit: 10000 },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ filter: other, ordering: "fifo", rate_limit: 10000 });
    expect(patched.body.secret).toBeUndefined();

    const put = await t.request("PUT", `/v1/webhooks/${created.id}`, {
      body: { ...patched.body, filter: null, rate_limit: null, ordering: "unordered" },
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ filter: null, ordering: "unordered", rate_limit: null });
    const again = await t.request("GET", `/v1/webhooks/${created.id}`);
    expect(again.body).toMatchObject({ filter: null, ordering: "unordered", rate_limit: null });
  });

  test("GET /v1/webhooks?ordering= lists by ordering; a bad value is a 422", async () => {
    const fifo = await create({ ordering: "fifo" });
    const plain = await create({});
    const ids = async (query: string) =>
      (await t.request("GET", `/v1/webhooks${query}`)).body.data.map((w: Json) => w.id);
    expect(await ids("?ordering=fifo")).toEqual([fifo.id]);
    expect(await ids("?ordering=unordered")).toEqual([plain.id]);
    expect((await ids("")).sort()).toEqual([fifo.id, plain.id].sort());
    const bad = await t.request("GET", "/v1/webhooks?ordering=lifo");
    expect(bad.status).toBe(422);
    expect(bad.body.error.details[0].path).toBe("ordering");
  });

  test("invalid ordering, rate_limit and signature_scheme are 422 with their paths", async () => {
    for (const [body, path] of [
      [{ ordering: "lifo" }, "ordering"],
      [{ ordering: null }, "ordering"],
      [{ rate_limit: 0 }, "rate_limit"],
      [{ rate_limit: 10001 }, "rate_limit"],
      [{ rate_limit: 1.5 }, "rate_limit"],
      [{ rate_limit: "5" }, "rate_limit"],
      [{ signature_scheme: "v2" }, "signature_scheme"],
      [{ signature_scheme: "v1a", secret: `whsec_${Buffer.alloc(32, 7).toString("base64")}` }, "secret"],
    ] as const) {
      const res = await t.request("POST", "/v1/webhooks", { body: { ...valid, ...body } });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe("validation_failed");
      expect(res.body.error.details.map((d: Json) => d.path)).toEqual([path]);
    }
    const created = await create({});
    for (const body of [{ rate_limit: -1 }, { ordering: 1 }, { signature_scheme: null }]) {
      const res = await t.request("PATCH", `/v1/webhooks/${created.id}`, { body });
      expect(res.status).toBe(422);
      expect(res.body.error.details.map((d: Json) => d.path)).toEqual(Object.keys(body));
    }
  });
});

describe("filter validation", () => {
  test("every fault is a 422 with its path under filter, on create, PATCH and PUT, and nothing changes", async () => {
    const filter = {
      amount: 1,
      "data.amount": { $gt: [], $between: 1 },
      "data.tags": { $in: "vip", $exists: 1 },
      $or: [{ "data.x": { $startsWith: 1 } }, 2],
      $nor: [],
    };
    const expected = [
      {
        path: "filter.$nor",
        message: "is not a logical operator ($and, $or, $not); a comparison goes under a path",
      },
      { path: "filter.$or[0].data.x.$startsWith", message: "must be a string" },
      { path: "filter.$or[1]", message: "must be a filter (an object)" },
      {
        path: "filter.amount",
        message: 'a path starts with one of type, account_id, data (did you mean "data.amount"?)',
      },
      { path: "filter.data.amount.$between", message: "is not an operator" },
      { path: "filter.data.amount.$gt", message: "must be a number or a string" },
      { path: "filter.data.tags.$exists", message: "must be true or false" },
      { path: "filter.data.tags.$in", message: "must be an array" },
    ];
    const res = await t.request("POST", "/v1/webhooks", { body: { ...valid, filter } });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("validation_failed");
    expect(details(res)).toEqual(expected);
    expect((await t.request("GET", "/v1/webhooks")).body.data).toEqual([]);

    const created = await create({ filter: { type: "invoice.paid" } });
    for (const method of ["PATCH", "PUT"]) {
      const bad = await t.request(method, `/v1/webhooks/${created.id}`, { body: { filter } });
      expect(bad.status).toBe(422);
      expect(details(bad)).toEqual(expected);
    }
    expect((await t.request("GET", `/v1/webhooks/${created.id}`)).body.filter).toEqual({
      type: "invoice.paid",
    });
  });

  test("not an object, over 4 KiB, over 8 levels", async () => {
    const problem = async (filter: unknown) => {
      const res = await t.request("POST", "/v1/webhooks", { body: { ...valid, filter } });
      expect(res.status).toBe(422);
      return res.body.error.details;
    };
    expect(await problem([])).toEqual([
      { path: "filter", message: "must be an object (or null for no filter)" },
    ]);
    expect(await problem("data.a")).toEqual([
      { path: "filter", message: "must be an object (or null for no filter)" },
    ]);
    const big = { "data.s": "x".repeat(4096) };
    expect(await problem(big)).toEqual([
      { path: "filter", message: `must be at most 4096 bytes as JSON (it is ${JSON.stringify(big).length})` },
    ]);
    let deep: Json = { type: "x" };
    for (let i = 0; i < 8; i++) deep = { $not: deep };
    expect(await problem(deep)).toEqual([{ path: "filter", message: "must be at most 8 levels deep" }]);
    // The largest and deepest allowed are accepted.
    const fits = { "data.s": "x".repeat(4096 - JSON.stringify({ "data.s": "" }).length) };
    expect((await create({ filter: fits })).filter).toEqual(fits);
    expect((await create({ filter: deep.$not })).filter).toEqual(deep.$not);
  });
});

describe("fan-out", () => {
  async function publish(type: string, data: Json, extra: Json = {}) {
    const res = await t.request("POST", "/v1/events", { body: { type, data, ...extra } });
    expect(res.status).toBe(202);
    return res.body;
  }
  const webhooksOf = async (eventId: string) =>
    (await t.request("GET", `/v1/deliveries?limit=100&event_id=${eventId}`)).body.data
      .map((d: Json) => d.webhook_id)
      .sort();

  test("a non-matching event creates no delivery for that webhook, and deliveries_count says so", async () => {
    const all = await create({});
    const big = await create({ filter: { "data.amount": { $gte: 1000 } } });
    const german = await create({ filter: { "data.customer.country": "DE", account_id: "acct_1" } });
    const notTest = await create({ events: ["*"], filter: { $not: { type: { $endsWith: ".test" } } } });

    const small = await publish(
      "invoice.paid",
      { amount: 10, customer: { country: "DE" } },
      { account_id: "acct_1" },
    );
    expect(small.deliveries_count).toBe(3);
    expect(await webhooksOf(small.id)).toEqual([all.id, german.id, notTest.id].sort());

    const large = await publish("invoice.paid", { amount: 5000, customer: { country: "FR" } });
    expect(large.deliveries_count).toBe(3);
    expect(await webhooksOf(large.id)).toEqual([all.id, big.id, notTest.id].sort());

    // A type mismatch is no match, not an error.
    const odd = await publish("invoice.paid", { amount: "5000", customer: "DE" });
    expect(odd.deliveries_count).toBe(2);
    expect(await webhooksOf(odd.id)).toEqual([all.id, notTest.id].sort());

    const other = await publish("order.test", { amount: 5000 });
    expect(other.deliveries_count).toBe(0);

    // In a batch, each event is matched on its own data.
    const batch = await t.request("POST", "/v1/events/batch", {
      body: {
        events: [
          { type: "invoice.paid", data: { amount: 1 } },
          { type: "invoice.paid", data: { amount: 1000 } },
        ],
      },
    });
    expect(batch.status).toBe(202);
    expect(batch.body.data.map((e: Json) => e.deliveries_count)).toEqual([2, 3]);
    // The event's own view says the same.
    const event = await t.request("GET", `/v1/events/${small.id}`);
    expect(event.body.deliveries_count).toBe(3);
  });

  test("a changed or cleared filter applies to the next event at once", async () => {
    const hook = await create({ filter: { "data.n": 1 } });
    expect((await publish("invoice.paid", { n: 2 })).deliveries_count).toBe(0);
    await t.request("PATCH", `/v1/webhooks/${hook.id}`, { body: { filter: { "data.n": 2 } } });
    expect((await publish("invoice.paid", { n: 2 })).deliveries_count).toBe(1);
    expect((await publish("invoice.paid", { n: 1 })).deliveries_count).toBe(0);
    await t.request("PATCH", `/v1/webhooks/${hook.id}`, { body: { filter: null } });
    expect((await publish("invoice.paid", { n: 1 })).deliveries_count).toBe(1);
  });

  test("the test event is not filtered", async () => {
    const hook = await create({ filter: { "data.never": true } });
    const res = await t.request("POST", `/v1/webhooks/${hook.id}/test`);
    expect(res.status).toBe(202);
    expect(res.body.webhook_id).toBe(hook.id);
  });
});

describe("signature_scheme v1a", () => {
  test("create shows public_key and no secret; GET and list show the same public key, never the private key", async () => {
    const created = await create({ signature_scheme: "v1a" });
    expect(created.signature_scheme).toBe("v1a");
    expect(created.secret).toBeUndefined();
    expect(created.public_key).toMatch(/^whpk_[A-Za-z0-9+/]{43}=$/);
    expect(decodePublicKey(created.public_key)).not.toBeNull();
    expect(created.secret_last4).toBe(created.public_key.slice(-4));
    const fetched = await t.request("GET", `/v1/webhooks/${created.id}`);
    expect(fetched.body.public_key).toBe(created.public_key);
    const listed = await t.request("GET", "/v1/webhooks");
    expect(listed.body.data[0].public_key).toBe(created.public_key);
    // The private key is stored, and in no answer.
    const stored = await t.daemon.store.findWebhook(created.id);
    expect(stored?.secret).toMatch(/^whsk_/);
    const seed = stored!.secret.slice(5);
    for (const text of [JSON.stringify(created), fetched.text, listed.text]) {
      expect(text).not.toContain(seed);
      expect(text).not.toContain("whsk_");
    }
  });

  test("rotation makes a new pair; previous_public_keys lists the old one while it still signs", async () => {
    const created = await create({ signature_scheme: "v1a" });
    const rotated = await t.request("POST", `/v1/webhooks/${created.id}/rotate-secret`, {
      body: { grace_period_seconds: 3600 },
    });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toBeUndefined();
    expect(rotated.body.public_key).toMatch(/^whpk_/);
    expect(rotated.body.public_key).not.toBe(created.public_key);
    const expiresAt = new Date(t.clock.now() + 3600_000).toISOString();
    expect(rotated.body.previous_public_keys).toEqual([
      { public_key: created.public_key, expires_at: expiresAt },
    ]);
    expect(rotated.body.previous_secret_expires_at).toBe(expiresAt);
    expect(rotated.text).not.toContain("whsk_");

    const again = await t.request("POST", `/v1/webhooks/${created.id}/rotate-secret`, {
      body: { grace_period_seconds: 0 },
    });
    expect(again.body.previous_public_keys).toEqual([]);
    expect((await t.request("GET", `/v1/webhooks/${created.id}`)).body.public_key).toBe(
      again.body.public_key,
    );

    // A v1a webhook takes no secret of its own.
    const own = await t.request("POST", `/v1/webhooks/${created.id}/rotate-secret`, {
      body: { secret: `whsec_${Buffer.alloc(32, 7).toString("base64")}` },
    });
    expect(own.status).toBe(422);
    expect(own.body.error.details.map((d: Json) => d.path)).toEqual(["secret"]);
  });

  test("a PATCH of signature_scheme makes the new key material at once and shows it once", async () => {
    const created = await create({});
    await t.request("POST", `/v1/webhooks/${created.id}/rotate-secret`, {
      body: { grace_period_seconds: 3600 },
    });
    const toV1a = await t.request("PATCH", `/v1/webhooks/${created.id}`, {
      body: { signature_scheme: "v1a" },
    });
    expect(toV1a.status).toBe(200);
    expect(toV1a.body).toMatchObject({ signature_scheme: "v1a" });
    expect(toV1a.body.public_key).toMatch(/^whpk_/);
    expect(toV1a.body.secret).toBeUndefined();
    // The old secrets stop signing at once.
    const stored = await t.daemon.store.findWebhook(created.id);
    expect(stored?.secret).toMatch(/^whsk_/);
    expect(stored?.previousSecrets).toEqual([]);

    // The same scheme again changes nothing.
    const same = await t.request("PATCH", `/v1/webhooks/${created.id}`, {
      body: { signature_scheme: "v1a" },
    });
    expect(same.body.public_key).toBe(toV1a.body.public_key);

    const toV1 = await t.request("PUT", `/v1/webhooks/${created.id}`, {
      body: { ...same.body, signature_scheme: "v1" },
    });
    expect(toV1.status).toBe(200);
    expect(toV1.body.signature_scheme).toBe("v1");
    expect(toV1.body.public_key).toBeNull();
    expect(decodeSecret(toV1.body.secret)).not.toBeNull();
    expect(toV1.body.secret).not.toBe(created.secret);
    expect((await t.request("GET", `/v1/webhooks/${created.id}`)).body.secret).toBeUndefined();
  });
});

test("/openapi.json documents the controls on requests and answers", async () => {
  const doc = (await t.request("GET", "/openapi.json")).body;
  const text = JSON.stringify(doc);
  const op = doc.paths["/v1/webhooks"].post;
  const request = op.requestBody.content["application/json"].schema;
  for (const field of ["filter", "ordering", "rate_limit", "signature_scheme"]) {
    expect(request.properties[field]).toBeDefined();
  }
  expect(request.properties.ordering.enum).toEqual(["unordered", "fifo"]);
  expect(request.properties.signature_scheme.enum).toEqual(["v1", "v1a"]);
  expect(request.properties.rate_limit).toMatchObject({ minimum: 1, maximum: 10000 });
  expect(request.properties.filter.description).toContain("$startsWith");
  const answer = op.responses["201"].content["application/json"].schema;
  for (const field of ["filter", "ordering", "rate_limit", "signature_scheme", "public_key"]) {
    expect(answer.properties[field]).toBeDefined();
  }
  const patch = doc.paths["/v1/webhooks/{id}"].patch.requestBody.content["application/json"].schema;
  expect(patch.properties.filter).toBeDefined();
  expect(text).toContain("previous_public_keys");
  const list = doc.paths["/v1/webhooks"].get.parameters.map((p: Json) => p.name);
  expect(list).toContain("ordering");
});
