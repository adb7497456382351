// Cursor pagination of GET /v1/webhooks (SPEC §2 Pagination): a property test that pages forwards
// and backwards through random sets, in every order, while rows are inserted, and checks every page
// against a model; then the query parameters, malformed cursors and the list filters.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createManualClock, type ManualClock, toIso } from "../../src/runtime/clock.ts";
import { WEBHOOK_ORDERS, type WebhookOrder } from "../../src/store/store.ts";
import {
  ACME_KEY,
  createTestDaemon,
  GLOBEX_KEY,
  type TestDaemon,
  type TestResponse,
} from "../support/daemon.ts";

const BASE = Date.UTC(2026, 0, 1);
const UNLIMITED = "rate_limits: {read: 1000000, write: 1000000}";
const valid = { url: "https://example.com/hooks", events: ["invoice.paid"] };

interface Row {
  id: string;
  name: string;
  createdAt: number;
  updatedAt: number;
  enabled: boolean;
}

interface PageResult {
  data: { id: string; name: string; enabled: boolean; created_at: string; updated_at: string }[];
  has_next_page: boolean;
  has_previous_page: boolean;
  start_cursor: string | null;
  end_cursor: string | null;
}

function sortValue(row: Row, order: WebhookOrder): string | number {
  const key = order.replace("-", "");
  return key === "name" ? row.name : key === "created_at" ? row.createdAt : row.updatedAt;
}

/** The requested order, ties broken by id in the same direction. */
function compare(order: WebhookOrder, a: Row, b: Row): number {
  const [va, vb] = [sortValue(a, order), sortValue(b, order)];
  const c = va < vb ? -1 : va > vb ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  return order.startsWith("-") ? -c : c;
}

/** What a page must be, from the true set of rows at the time of the request. */
function expectedPage(
  rows: readonly Row[],
  order: WebhookOrder,
  limit: number,
  position: { after?: Row; before?: Row },
): { ids: string[]; hasNext: boolean; hasPrevious: boolean } {
  const sorted = [...rows].sort((a, b) => compare(order, a, b));
  const { after, before } = position;
  if (before) {
    const earlier = sorted.filter((r) => compare(order, r, before) < 0);
    return {
      ids: earlier.slice(-limit).map((r) => r.id),
      hasPrevious: earlier.length > limit,
      hasNext: sorted.some((r) => compare(order, r, before) >= 0),
    };
  }
  const later = after ? sorted.filter((r) => compare(order, r, after) > 0) : sorted;
  return {
    ids: later.slice(0, limit).map((r) => r.id),
    hasNext: later.length > limit,
    hasPrevious: after ? sorted.some((r) => compare(order, r, after) <= 0) : false,
  };
}

const nameArb = fc.oneof(
  fc.constantFrom("alpha", "Alpha", "alpha", "beta", "a_b", "a-b", "a b", "z"),
  fc.string({ unit: fc.constantFrom("a", "b", "B", "_", " ", "0"), minLength: 1, maxLength: 3 }),
);
const newRowArb = fc.record({
  name: nameArb,
  // A few milliseconds apart at most, so equal times are common; inserts can land anywhere.
  at: fc.integer({ min: 0, max: 3 }),
  enabled: fc.boolean(),
});
const initialRowArb = fc.record({
  name: nameArb,
  at: fc.integer({ min: 0, max: 3 }),
  enabled: fc.boolean(),
  touchedAt: fc.option(fc.integer({ min: 0, max: 6 }), { nil: null }),
});

async function createRow(
  t: TestDaemon,
  clock: ManualClock,
  rows: Row[],
  spec: { name: string; at: number; enabled: boolean },
): Promise<Row> {
  clock.set(BASE + spec.at);
  const res = await t.request("POST", "/v1/webhooks", {
    body: { ...valid, name: spec.name, enabled: spec.enabled },
  });
  expect(res.status).toBe(201);
  const row = {
    id: res.body.id,
    name: spec.name,
    createdAt: BASE + spec.at,
    updatedAt: BASE + spec.at,
    enabled: spec.enabled,
  };
  expect(res.body.created_at).toBe(toIso(row.createdAt));
  rows.push(row);
  return row;
}

describe("paging through GET /v1/webhooks", () => {
  test("forwards then backwards, with inserts in between: nothing repeated or skipped, flags exact", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...WEBHOOK_ORDERS),
        fc.integer({ min: 1, max: 7 }),
        fc.array(initialRowArb, { maxLength: 12 }),
        fc.array(fc.array(newRowArb, { maxLength: 2 }), { maxLength: 25 }),
        fc.constantFrom<boolean | undefined>(undefined, undefined, true, false),
        async (order, limit, initial, inserts, enabledFilter) => {
          const clock = createManualClock(BASE);
          const t = await createTestDaemon({ clock, yaml: UNLIMITED });
          try {
            await runPaging(t, clock, { order, limit, initial, inserts, enabledFilter });
          } finally {
            await t.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  }, 30_000);
});

async function runPaging(
  t: TestDaemon,
  clock: ManualClock,
  run: {
    order: WebhookOrder;
    limit: number;
    initial: { name: string; at: number; enabled: boolean; touchedAt: number | null }[];
    inserts: { name: string; at: number; enabled: boolean }[][];
    enabledFilter: boolean | undefined;
  },
): Promise<void> {
  const { order, limit, enabledFilter } = run;
  const rows: Row[] = [];
  for (const spec of run.initial) {
    const row = await createRow(t, clock, rows, spec);
    if (spec.touchedAt !== null) {
      clock.set(BASE + spec.touchedAt);
      const res = await t.request("PATCH", `/v1/webhooks/${row.id}`, { body: { description: "touched" } });
      expect(res.body.updated_at).toBe(toIso(BASE + spec.touchedAt));
      row.updatedAt = BASE + spec.touchedAt;
    }
  }
  const byId = new Map(rows.map((r) => [r.id, r]));
  const visible = () => rows.filter((r) => enabledFilter === undefined || r.enabled === enabledFilter);
  const existing = visible().map((r) => r.id);

  let step = 0;
  const insertSome = async () => {
    for (const spec of run.inserts[step++] ?? []) {
      const row = await createRow(t, clock, rows, spec);
      byId.set(row.id, row);
    }
  };
  const filterQuery = enabledFilter === undefined ? "" : `&enabled=${enabledFilter}`;
  const fetchPage = async (
    cursor: { after?: Row; before?: Row },
    raw: string | null,
  ): Promise<PageResult> => {
    const param = raw === null ? "" : `&${cursor.after ? "after" : "before"}=${raw}`;
    const res = await t.request("GET", `/v1/webhooks?order=${order}&limit=${limit}${filterQuery}${param}`);
    expect(res.status).toBe(200);
    const page = res.body as PageResult;
    const want = expectedPage(visible(), order, limit, cursor);
    expect(page.data.map((w) => w.id)).toEqual(want.ids);
    expect(page.has_next_page).toBe(want.hasNext);
    expect(page.has_previous_page).toBe(want.hasPrevious);
    for (const w of page.data) {
      const row = byId.get(w.id)!;
      expect([w.name, w.enabled, w.created_at, w.updated_at]).toEqual([
        row.name,
        row.enabled,
        toIso(row.createdAt),
        toIso(row.updatedAt),
      ]);
    }
    if (page.data.length === 0) {
      expect(page.start_cursor).toBeNull();
      expect(page.end_cursor).toBeNull();
    } else {
      expect(typeof page.start_cursor).toBe("string");
      expect(typeof page.end_cursor).toBe("string");
    }
    return page;
  };
  const maxPages = rows.length + run.inserts.flat().length + 3;

  // Forwards from the start to the end.
  const forward: PageResult[] = [await fetchPage({}, null)];
  for (let last = forward[0]!; last.has_next_page; last = forward[forward.length - 1]!) {
    expect(forward.length).toBeLessThan(maxPages);
    await insertSome();
    const after = byId.get(last.data[last.data.length - 1]!.id)!;
    forward.push(await fetchPage({ after }, last.end_cursor));
  }
  const lastForward = forward[forward.length - 1]!;

  // Backwards from the last page to the start.
  const backward: PageResult[] = [lastForward];
  for (let first = lastForward; first.has_previous_page; first = backward[0]!) {
    expect(backward.length).toBeLessThan(maxPages);
    await insertSome();
    const before = byId.get(first.data[0]!.id)!;
    backward.unshift(await fetchPage({ before }, first.start_cursor));
  }

  for (const pages of [forward, backward]) {
    const seen = pages.flatMap((p) => p.data.map((w) => w.id));
    // Every row that existed when paging began, exactly once; nothing at all twice.
    expect(new Set(seen).size).toBe(seen.length);
    const counts = new Map<string, number>();
    for (const id of seen) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const id of existing) expect(counts.get(id)).toBe(1);
    // In the requested order, ties broken by id.
    for (let i = 1; i < seen.length; i++) {
      expect(compare(order, byId.get(seen[i - 1]!)!, byId.get(seen[i]!)!)).toBe(-1);
    }
  }

  // Past either end: an empty page with null cursors and exact flags.
  const firstPage = backward[0]!;
  if (firstPage.data.length > 0) {
    const before = byId.get(firstPage.data[0]!.id)!;
    const empty = await fetchPage({ before }, firstPage.start_cursor);
    expect(empty.data).toEqual([]);
    expect(empty.has_next_page).toBe(true);
    const after = byId.get(lastForward.data[lastForward.data.length - 1]!.id)!;
    await fetchPage({ after }, lastForward.end_cursor);
  }
}

describe("query parameters", () => {
  let t: TestDaemon;
  beforeEach(async () => {
    t = await createTestDaemon({ yaml: UNLIMITED });
  });
  afterEach(async () => {
    await t.close();
  });

  const expect422 = (res: TestResponse, path: string) => {
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
  };

  test("limit must be 1-100; the default is 20", async () => {
    for (const limit of ["0", "101", "abc", "-1", "1.5", "", "1e1", "99999999999999999999"]) {
      expect422(await t.request("GET", `/v1/webhooks?limit=${limit}`), "limit");
    }
    for (let i = 0; i < 21; i++) await t.request("POST", "/v1/webhooks", { body: valid });
    const standard = await t.request("GET", "/v1/webhooks");
    expect(standard.body.data).toHaveLength(20);
    expect(standard.body.has_next_page).toBe(true);
    expect((await t.request("GET", "/v1/webhooks?limit=100")).body.data).toHaveLength(21);
    expect((await t.request("GET", "/v1/webhooks?limit=1")).body.data).toHaveLength(1);
  });

  test("an unknown order is 422", async () => {
    expect422(await t.request("GET", "/v1/webhooks?order=url"), "order");
    expect422(await t.request("GET", "/v1/webhooks?order=--name"), "order");
  });

  test("malformed cursors are 422 validation_failed, never 500", async () => {
    await t.request("POST", "/v1/webhooks", { body: { ...valid, name: "a" } });
    await t.request("POST", "/v1/webhooks", { body: { ...valid, name: "b" } });
    const byName = await t.request("GET", "/v1/webhooks?order=name&limit=1");
    const nameCursor = byName.body.end_cursor as string;
    const b64 = (text: string) => Buffer.from(text).toString("base64url");
    const malformed = [
      "garbage!",
      "not a cursor",
      "%00",
      b64("hello, not JSON"),
      b64("42"),
      b64("null"),
      b64("[]"),
      b64('{"o":"-created_at","v":"x","i":"wh_1"}'),
      b64('{"o":"-created_at","v":1.5,"i":"wh_1"}'),
      b64('{"o":"-created_at","v":1e300,"i":"wh_1"}'),
      b64('{"o":"-created_at","v":1}'),
      b64('{"o":"-created_at","v":1,"i":7}'),
      "A",
      "x".repeat(1025),
    ];
    for (const cursor of malformed) {
      for (const field of ["after", "before"]) {
        expect422(await t.request("GET", `/v1/webhooks?${field}=${encodeURIComponent(cursor)}`), field);
      }
    }
    // A cursor of another order, or of the same key in the other direction.
    expect422(await t.request("GET", `/v1/webhooks?after=${nameCursor}`), "after");
    expect422(await t.request("GET", `/v1/webhooks?order=-name&before=${nameCursor}`), "before");
    expect((await t.request("GET", `/v1/webhooks?order=name&after=${nameCursor}`)).status).toBe(200);
    // Both directions at once.
    const both = await t.request("GET", `/v1/webhooks?order=name&after=${nameCursor}&before=${nameCursor}`);
    expect(both.status).toBe(422);
    expect(both.body.error.code).toBe("validation_failed");
  });

  test("random cursors in every order are answered 200 or 422, never 500", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...WEBHOOK_ORDERS),
        fc.constantFrom("after", "before"),
        fc.oneof(
          fc.string({ maxLength: 40 }),
          fc.json().map((json) => Buffer.from(json).toString("base64url")),
          fc
            .record({ o: fc.constantFrom(...WEBHOOK_ORDERS), v: fc.jsonValue(), i: fc.jsonValue() })
            .map((body) => Buffer.from(JSON.stringify(body)).toString("base64url")),
        ),
        async (order, field, cursor) => {
          const res = await t.request(
            "GET",
            `/v1/webhooks?order=${order}&${field}=${encodeURIComponent(cursor)}`,
          );
          expect([200, 422]).toContain(res.status);
          if (res.status === 422) expect(res.body.error.code).toBe("validation_failed");
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("filters", () => {
  let t: TestDaemon;
  beforeEach(async () => {
    t = await createTestDaemon();
  });
  afterEach(async () => {
    await t.close();
  });

  const create = async (name: string, fields: Record<string, unknown>, key?: string) => {
    const res = await t.request("POST", "/v1/webhooks", { key, body: { ...valid, name, ...fields } });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  const names = async (query: string, key?: string): Promise<string[]> => {
    const res = await t.request("GET", `/v1/webhooks?order=name&limit=100${query}`, { key });
    expect(res.status).toBe(200);
    return res.body.data.map((w: { name: string }) => w.name);
  };

  test("event: exact types, '*', 'prefix.*'; '_' is not a wildcard", async () => {
    await create("exact", { events: ["invoice.paid"] });
    await create("star", { events: ["*"] });
    await create("prefix", { events: ["invoice.*"] });
    await create("underscore", { events: ["invoice_paid"] });
    await create("underscore-prefix", { events: ["in_oice.*"] });
    await create("several", { events: ["customer.created", "invoice.paid.late"] });
    await create("deeper-prefix", { events: ["invoice.paid.*"] });

    expect(await names("&event=invoice.paid")).toEqual(["exact", "prefix", "star"]);
    expect(await names("&event=invoice.paid.late")).toEqual(["deeper-prefix", "prefix", "several", "star"]);
    expect(await names("&event=invoiceXpaid")).toEqual(["star"]);
    expect(await names("&event=invoice_paid")).toEqual(["star", "underscore"]);
    expect(await names("&event=inXoice.sent")).toEqual(["star"]);
    expect(await names("&event=in_oice.sent")).toEqual(["star", "underscore-prefix"]);
    expect(await names("&event=invoice")).toEqual(["star"]);
    expect(await names("&event=customer.created")).toEqual(["several", "star"]);
    for (const bad of ["*", "invoice.*", "a..b", "", "invoice%25"]) {
      const res = await t.request("GET", `/v1/webhooks?event=${bad}`);
      expect(res.status).toBe(422);
      expect(res.body.error.details[0].path).toBe("event");
    }
  });

  test("enabled", async () => {
    await create("on", {});
    await create("off", { enabled: false });
    expect(await names("&enabled=true")).toEqual(["on"]);
    expect(await names("&enabled=false")).toEqual(["off"]);
    expect(await names("")).toEqual(["off", "on"]);
    const res = await t.request("GET", "/v1/webhooks?enabled=yes");
    expect(res.status).toBe(422);
    expect(res.body.error.details[0].path).toBe("enabled");
  });

  test("account_id includes subscriptions with no account_ids", async () => {
    await create("every-account", {});
    await create("acc-1", { account_ids: ["acc_1"] });
    await create("acc-1-2", { account_ids: ["acc_1", "acc_2"] });
    await create("acc-3", { account_ids: ["acc_3"] });
    expect(await names("&account_id=acc_1")).toEqual(["acc-1", "acc-1-2", "every-account"]);
    expect(await names("&account_id=acc_2")).toEqual(["acc-1-2", "every-account"]);
    expect(await names("&account_id=accX1")).toEqual(["every-account"]);
    expect(await names("&account_id=acc_%25")).toEqual(["every-account"]);
    expect(await names("&account_id=acc_3&event=invoice.paid&enabled=true")).toEqual([
      "acc-3",
      "every-account",
    ]);
  });

  test("tenant_id is for admin keys; a tenant key asking for another tenant is 403", async () => {
    await create("default-1", {});
    await create("acme-1", {}, ACME_KEY);
    await create("globex-1", {}, GLOBEX_KEY);
    expect(await names("")).toEqual(["acme-1", "default-1", "globex-1"]);
    expect(await names("&tenant_id=acme")).toEqual(["acme-1"]);
    expect(await names("&tenant_id=nobody")).toEqual([]);
    expect(await names("", ACME_KEY)).toEqual(["acme-1"]);
    expect(await names("&tenant_id=acme", ACME_KEY)).toEqual(["acme-1"]);
    const other = await t.request("GET", "/v1/webhooks?tenant_id=globex", { key: ACME_KEY });
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe("forbidden");
    const bad = await t.request("GET", "/v1/webhooks?tenant_id=not%20valid");
    expect(bad.status).toBe(422);
    expect(bad.body.error.details[0].path).toBe("tenant_id");
  });
});
