import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { decodeSecret } from "../../src/domain/secrets.ts";
import { ACME_KEY, createTestDaemon, GLOBEX_KEY, type TestDaemon } from "../support/daemon.ts";

let t: TestDaemon;
beforeEach(async () => {
  t = await createTestDaemon();
});
afterEach(async () => {
  await t.close();
});

const valid = { url: "https://example.com/hooks", events: ["invoice.paid"] };

describe("POST /v1/webhooks", () => {
  test("creates a subscription and shows its full secret once", async () => {
    const created = await t.request("POST", "/v1/webhooks", {
      body: { ...valid, name: "Billing", metadata: { team: "b" } },
    });
    expect(created.status).toBe(201);
    expect(created.body.id).toMatch(/^wh_[0-9A-Z]{26}$/);
    expect(created.headers.get("location")).toBe(`/v1/webhooks/${created.body.id}`);
    expect(decodeSecret(created.body.secret)).not.toBeNull();
    expect(created.body).toMatchObject({
      tenant_id: "default",
      mode: "live",
      name: "Billing",
      description: null,
      url: valid.url,
      events: ["invoice.paid"],
      account_ids: null,
      enabled: true,
      disabled_reason: null,
      timeout_seconds: 10,
      headers: {},
      metadata: { team: "b" },
      max_in_flight: 8,
      secret_last4: created.body.secret.slice(-4),
    });
    expect(created.body.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const fetched = await t.request("GET", `/v1/webhooks/${created.body.id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body.secret).toBeUndefined();
    expect(fetched.text).not.toContain(created.body.secret);
    expect(fetched.body.secret_last4).toBe(created.body.secret_last4);

    // Nor in the list, nor after an update.
    const listed = await t.request("GET", "/v1/webhooks?limit=100");
    expect(listed.status).toBe(200);
    const item = listed.body.data.find((w: { id: string }) => w.id === created.body.id);
    expect(item).toBeDefined();
    expect(item.secret).toBeUndefined();
    expect(listed.text).not.toContain(created.body.secret);
    const updated = await t.request("PATCH", `/v1/webhooks/${created.body.id}`, { body: { name: "B2" } });
    expect(updated.status).toBe(200);
    expect(updated.body.secret).toBeUndefined();
    expect(updated.text).not.toContain(created.body.secret);
  });

  test("accepts a single event string, its own secret, and defaults the name to the host", async () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
    const created = await t.request("POST", "/v1/webhooks", {
      body: { url: valid.url, events: "invoice.*", secret },
    });
    expect(created.status).toBe(201);
    expect(created.body.events).toEqual(["invoice.*"]);
    expect(created.body.secret).toBe(secret);
    expect(created.body.name).toBe("example.com");
  });

  test("lists every invalid field in one 422", async () => {
    const res = await t.request("POST", "/v1/webhooks", {
      body: {
        url: "ftp://example.com",
        events: [],
        name: "",
        timeout_seconds: 61,
        headers: { "Content-Length": "1", "webhook-id": "x" },
        secret: "whsec_short",
        surprise: true,
      },
    });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("validation_failed");
    const paths = res.body.error.details.map((d: { path: string }) => d.path).sort();
    expect(paths).toEqual(
      [
        "events",
        "headers.Content-Length",
        "headers.webhook-id",
        "name",
        "secret",
        "surprise",
        "timeout_seconds",
        "url",
      ].sort(),
    );
  });

  test("malformed JSON is 400 invalid_json", async () => {
    const res = await t.request("POST", "/v1/webhooks", { rawBody: "{nope" });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_json");
    expect(res.body.error.details).toBeUndefined();
  });
});

describe("U+0000 (PostgreSQL text cannot hold it; both drivers refuse it alike)", () => {
  const NUL = "must not contain the NUL character (U+0000)";
  const nulFields = {
    name: "Bill\u0000ing",
    description: "\u0000",
    url: "https://example.com/hooks\u0000",
    account_ids: ["acct_1", "acct\u00002"],
  };
  const nulDetails = [
    { path: "account_ids[1]", message: NUL },
    { path: "description", message: NUL },
    { path: "name", message: NUL },
    { path: "url", message: NUL },
  ];
  const sorted = (res: { body: { error: { details: { path: string }[] } } }) =>
    [...res.body.error.details].sort((a, b) => a.path.localeCompare(b.path));

  test("in a field stored as plain text it is a 422 naming the field, and nothing is stored", async () => {
    const res = await t.request("POST", "/v1/webhooks", { body: { ...valid, ...nulFields } });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("validation_failed");
    expect(sorted(res)).toEqual(nulDetails);

    // Reported as itself, not as the format the tenant id would break.
    const tenant = await t.request("POST", "/v1/webhooks", { body: { ...valid, tenant_id: "acme\u0000" } });
    expect(tenant.status).toBe(422);
    expect(tenant.body.error.details).toEqual([{ path: "tenant_id", message: NUL }]);
    expect((await t.request("GET", "/v1/webhooks")).body.data).toEqual([]);
  });

  test("an update is refused the same way and leaves the subscription as it was", async () => {
    const created = await t.request("POST", "/v1/webhooks", { body: { ...valid, name: "Billing" } });
    for (const method of ["PATCH", "PUT"]) {
      const res = await t.request(method, `/v1/webhooks/${created.body.id}`, { body: nulFields });
      expect([method, res.status]).toEqual([method, 422]);
      expect(sorted(res)).toEqual(nulDetails);
    }
    const read = await t.request("GET", `/v1/webhooks/${created.body.id}`);
    expect(read.body).toMatchObject({
      name: "Billing",
      description: null,
      url: valid.url,
      account_ids: null,
    });
  });

  test("inside metadata, stored as JSON text, it is kept", async () => {
    const created = await t.request("POST", "/v1/webhooks", {
      body: { ...valid, metadata: { "k\u0000": "v\u0000" } },
    });
    expect(created.status).toBe(201);
    const read = await t.request("GET", `/v1/webhooks/${created.body.id}`);
    expect(read.body.metadata).toEqual({ "k\u0000": "v\u0000" });
  });
});

describe("PATCH and PUT", () => {
  test("change only the fields given; null clears nullable ones", async () => {
    const created = await t.request("POST", "/v1/webhooks", {
      body: { ...valid, description: "d", account_ids: ["a1"], timeout_seconds: 30 },
    });
    const id = created.body.id;
    for (const method of ["PATCH", "PUT"]) {
      const res = await t.request(method, `/v1/webhooks/${id}`, {
        body: { description: null, name: `n-${method}` },
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        description: null,
        name: `n-${method}`,
        account_ids: ["a1"],
        timeout_seconds: 30,
      });
    }
    const cleared = await t.request("PATCH", `/v1/webhooks/${id}`, {
      body: { account_ids: null, timeout_seconds: null },
    });
    expect(cleared.body).toMatchObject({ account_ids: null, timeout_seconds: 10 });
  });

  test("null resets max_in_flight to the configured default, like timeout_seconds", async () => {
    const { body } = await t.request("POST", "/v1/webhooks", {
      body: { ...valid, max_in_flight: 3, timeout_seconds: 30 },
    });
    expect(body).toMatchObject({ max_in_flight: 3, timeout_seconds: 30 });
    for (const method of ["PATCH", "PUT"]) {
      await t.request("PATCH", `/v1/webhooks/${body.id}`, { body: { max_in_flight: 3 } });
      const res = await t.request(method, `/v1/webhooks/${body.id}`, { body: { max_in_flight: null } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ max_in_flight: 8, timeout_seconds: 30 });
    }
  });

  test("disabling sets disabled_reason manual; re-enabling clears it", async () => {
    const { body } = await t.request("POST", "/v1/webhooks", { body: valid });
    const off = await t.request("PATCH", `/v1/webhooks/${body.id}`, { body: { enabled: false } });
    expect(off.body).toMatchObject({ enabled: false, disabled_reason: "manual" });
    const on = await t.request("PATCH", `/v1/webhooks/${body.id}`, { body: { enabled: true } });
    expect(on.body).toMatchObject({ enabled: true, disabled_reason: null });
  });

  test("a PUT of the object read back is accepted (read-only fields ignored), secret is refused", async () => {
    const { body } = await t.request("POST", "/v1/webhooks", { body: valid });
    const read = await t.request("GET", `/v1/webhooks/${body.id}`);
    expect((await t.request("PUT", `/v1/webhooks/${body.id}`, { body: read.body })).status).toBe(200);
    const res = await t.request("PATCH", `/v1/webhooks/${body.id}`, { body: { secret: body.secret } });
    expect(res.status).toBe(422);
    expect(res.body.error.details[0].path).toBe("secret");
    expect(res.text).not.toContain(body.secret);
  });
});

describe("DELETE and rotate-secret", () => {
  test("delete answers 204 and then 404", async () => {
    const { body } = await t.request("POST", "/v1/webhooks", { body: valid });
    expect((await t.request("DELETE", `/v1/webhooks/${body.id}`)).status).toBe(204);
    expect((await t.request("GET", `/v1/webhooks/${body.id}`)).status).toBe(404);
    expect((await t.request("DELETE", `/v1/webhooks/${body.id}`)).status).toBe(404);
  });

  test("rotation keeps the old secret during the grace period", async () => {
    const { body } = await t.request("POST", "/v1/webhooks", { body: valid });
    const rotated = await t.request("POST", `/v1/webhooks/${body.id}/rotate-secret`, {
      body: { grace_period_seconds: 3600 },
    });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(body.secret);
    expect(rotated.body.previous_secret_expires_at).toBe(new Date(t.clock.now() + 3600_000).toISOString());
    const stored = await t.daemon.store.findWebhook(body.id);
    expect(stored?.secret).toBe(rotated.body.secret);
    expect(stored?.previousSecrets).toEqual([{ secret: body.secret, expiresAt: t.clock.now() + 3600_000 }]);

    // A second rotation never extends an earlier secret: it ends with the new grace period at the latest.
    const shorter = await t.request("POST", `/v1/webhooks/${body.id}/rotate-secret`, {
      body: { grace_period_seconds: 60 },
    });
    const chained = await t.daemon.store.findWebhook(body.id);
    expect(chained?.secret).toBe(shorter.body.secret);
    expect(chained?.previousSecrets.map((p) => [p.secret, p.expiresAt]).sort()).toEqual(
      [
        [body.secret, t.clock.now() + 60_000],
        [rotated.body.secret, t.clock.now() + 60_000],
      ].sort(),
    );

    // Grace 0: only the new secret signs from now on.
    const immediate = await t.request("POST", `/v1/webhooks/${body.id}/rotate-secret`);
    expect(immediate.status).toBe(200);
    expect(immediate.body.previous_secret_expires_at).toBeNull();
    const after = await t.daemon.store.findWebhook(body.id);
    expect(after?.previousSecrets).toEqual([]);
  });

  test("grace period outside 0-604800 is a 422", async () => {
    const { body } = await t.request("POST", "/v1/webhooks", { body: valid });
    const res = await t.request("POST", `/v1/webhooks/${body.id}/rotate-secret`, {
      body: { grace_period_seconds: 604801 },
    });
    expect(res.status).toBe(422);
    expect(res.body.error.details[0].path).toBe("grace_period_seconds");
  });
});

describe("tenancy", () => {
  test("a tenant key sees only its tenant; another tenant's object is a 404", async () => {
    const acme = await t.request("POST", "/v1/webhooks", { key: ACME_KEY, body: valid });
    expect(acme.body.tenant_id).toBe("acme");
    expect((await t.request("GET", `/v1/webhooks/${acme.body.id}`, { key: GLOBEX_KEY })).status).toBe(404);
    expect(
      (await t.request("PATCH", `/v1/webhooks/${acme.body.id}`, { key: GLOBEX_KEY, body: { name: "x" } }))
        .status,
    ).toBe(404);
    expect((await t.request("GET", `/v1/webhooks/${acme.body.id}`)).status).toBe(200);
    const list = await t.request("GET", "/v1/webhooks", { key: GLOBEX_KEY });
    expect(list.body.data).toEqual([]);
    const forged = await t.request("POST", "/v1/webhooks", {
      key: ACME_KEY,
      body: { ...valid, tenant_id: "globex" },
    });
    expect(forged.status).toBe(403);
    const admin = await t.request("POST", "/v1/webhooks", { body: { ...valid, tenant_id: "globex" } });
    expect(admin.body.tenant_id).toBe("globex");
    const filtered = await t.request("GET", "/v1/webhooks?tenant_id=globex");
    expect(filtered.body.data.map((w: { id: string }) => w.id)).toEqual([admin.body.id]);
  });
});

describe("GET /v1/webhooks?search", () => {
  test("matches the name, URL, id or description in any case, across pages, and nothing else", async () => {
    const made = [];
    for (const [name, url, description] of [
      ["Billing sync", "https://billing.example.com/hooks", null],
      ["Orders", "https://orders.example.com/in", "Feeds the BILLING dashboard"],
      ["Shipping", "https://ship.example.com/x", null],
    ] as const) {
      const res = await t.request("POST", "/v1/webhooks", {
        body: { url, events: ["*"], name, description },
      });
      expect(res.status).toBe(201);
      made.push(res.body.id as string);
    }
    const ids = async (query: string) => {
      const res = await t.request("GET", `/v1/webhooks?${query}`);
      expect(res.status).toBe(200);
      return res.body;
    };
    expect((await ids("search=billing")).data.map((w: { id: string }) => w.id).sort()).toEqual(
      [made[0], made[1]].sort(),
    );
    expect((await ids("search=SHIP.example")).data.map((w: { id: string }) => w.id)).toEqual([made[2]]);
    expect(
      (await ids(`search=${made[2]!.slice(-10).toLowerCase()}`)).data.map((w: { id: string }) => w.id),
    ).toEqual([made[2]]);
    expect((await ids("search=nothing-like-this")).data).toEqual([]);
    // Paged: one match a page, the second page has the other, and no more.
    const first = await ids("search=billing&limit=1");
    expect([first.data.length, first.has_next_page]).toEqual([1, true]);
    const second = await ids(`search=billing&limit=1&after=${first.end_cursor}`);
    expect([second.data.length, second.has_next_page]).toEqual([1, false]);
    expect(second.data[0].id).not.toBe(first.data[0].id);
    const empty = await t.request("GET", "/v1/webhooks?search=");
    expect([empty.status, empty.body.error.details[0].path]).toEqual([422, "search"]);
  });
});
