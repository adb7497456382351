// Keyset pagination in the store, on every driver: a fast-check property that pages forwards to the
// end and back to the start through listWebhooks (every order), listEvents and listDeliveries while
// rows are inserted between pages, and checks every page against a model — the exact items and
// both flags. So no page ever repeats or skips a row, whatever was inserted meanwhile, and every row
// that existed before the walk is seen exactly once each way. (The API's cursors on top of this:
// test/http/pagination.property.test.ts.)
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createManualClock, type ManualClock } from "../../../src/runtime/clock.ts";
import { createIdGenerator, type IdGenerator } from "../../../src/runtime/ids.ts";
import { cryptoRandom } from "../../../src/runtime/random.ts";
import { type Cursor, type Page, type Store, WEBHOOK_ORDERS } from "../../../src/store/store.ts";
import { newWebhook, STORE_DRIVERS, type StoreDriver, T0 } from "../../support/stores.ts";

interface Row {
  id: string;
  value: string | number;
}

/** One list of the store: how to add a row to it (and maybe a row of another tenant), and read a page. */
interface List {
  name: string;
  descending: boolean;
  insert(spec: RowSpec): Promise<Row | null>;
  page(query: { limit: number; after?: Cursor; before?: Cursor }): Promise<Page<{ id: string }>>;
}

interface RowSpec {
  name: string;
  at: number;
  /** Another tenant's row: never in the list. */
  foreign: boolean;
}

const rowSpecArb = fc.record({
  name: fc.oneof(
    fc.constantFrom("alpha", "Alpha", "beta", "a_b", "a-b", "a b", "z", "B", "é"),
    fc.string({ unit: fc.constantFrom("a", "b", "B", "_", " ", "0", "é"), minLength: 1, maxLength: 3 }),
  ),
  // A few milliseconds apart at most, so equal sort values are common; inserts land anywhere.
  at: fc.integer({ min: 0, max: 3 }),
  foreign: fc.boolean(),
});

/** The list's order: the sort value, ties broken by id in the same direction (code unit order). */
function compare(list: List, a: Row, b: Row): number {
  const c = a.value < b.value ? -1 : a.value > b.value ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  return list.descending ? -c : c;
}

function expectedPage(
  list: List,
  rows: readonly Row[],
  limit: number,
  position: { after?: Row; before?: Row },
) {
  const sorted = [...rows].sort((a, b) => compare(list, a, b));
  const { after, before } = position;
  if (before) {
    const earlier = sorted.filter((r) => compare(list, r, before) < 0);
    return {
      ids: earlier.slice(-limit).map((r) => r.id),
      hasPreviousPage: earlier.length > limit,
      hasNextPage: sorted.some((r) => compare(list, r, before) >= 0),
    };
  }
  const later = after ? sorted.filter((r) => compare(list, r, after) > 0) : sorted;
  return {
    ids: later.slice(0, limit).map((r) => r.id),
    hasNextPage: later.length > limit,
    hasPreviousPage: after ? sorted.some((r) => compare(list, r, after) <= 0) : false,
  };
}

const cursor = (row: Row): Cursor => ({ value: row.value, id: row.id });

/** The lists of one store, each on rows made at T0 + `at`. */
function lists(store: Store, clock: ManualClock, ids: IdGenerator): (kind: string) => List {
  const at = (spec: RowSpec) => {
    clock.set(T0 + spec.at);
    return T0 + spec.at;
  };
  const tenant = (spec: RowSpec) => (spec.foreign ? "t2" : "t1");
  const webhooks = (order: (typeof WEBHOOK_ORDERS)[number]): List => {
    const key = order.replace("-", "");
    return {
      name: `webhooks ${order}`,
      descending: order.startsWith("-"),
      async insert(spec) {
        const createdAt = at(spec);
        const w = await store.insertWebhook(
          newWebhook(ids, createdAt, { name: spec.name, tenantId: tenant(spec) }),
        );
        // Touch half of them later, so updated_at differs from created_at.
        if (spec.name.length % 2 === 0) {
          clock.set(createdAt + 2);
          await store.updateWebhook(w.id, undefined, { description: "touched" }, createdAt + 2);
        }
        if (spec.foreign) return null;
        const value =
          key === "name"
            ? spec.name
            : key === "created_at"
              ? createdAt
              : spec.name.length % 2 === 0
                ? createdAt + 2
                : createdAt;
        return { id: w.id, value };
      },
      page: (query) => store.listWebhooks({ tenantId: "t1" }, { order, ...query }),
    };
  };
  let subscribed = false;
  const publish = async (spec: RowSpec) => {
    if (!subscribed) {
      // One subscription per tenant, so each event has exactly one delivery.
      await store.insertWebhook(newWebhook(ids, T0, { tenantId: "t1" }));
      await store.insertWebhook(newWebhook(ids, T0, { tenantId: "t2" }));
      subscribed = true;
    }
    const createdAt = at(spec);
    const id = ids.next("evt");
    const result = await store.ingest({
      tenantId: tenant(spec),
      now: createdAt,
      events: [{ id, type: "a.b", accountId: null, payload: "{}", createdAt }],
    });
    expect(result.kind).toBe("accepted");
    return { id, createdAt };
  };
  return (kind) => {
    if (kind === "events")
      return {
        name: "events -created_at",
        descending: true,
        async insert(spec) {
          const { id, createdAt } = await publish(spec);
          return spec.foreign ? null : { id, value: createdAt };
        },
        page: (query) => store.listEvents({ tenantId: "t1" }, { order: "-created_at", ...query }),
      };
    if (kind === "deliveries")
      return {
        name: "deliveries -created_at",
        descending: true,
        async insert(spec) {
          const { id, createdAt } = await publish(spec);
          if (spec.foreign) return null;
          const page = await store.listDeliveries({ eventId: id }, { order: "-created_at", limit: 10 });
          expect(page.items.length).toBe(1);
          return { id: page.items[0]!.id, value: createdAt };
        },
        page: (query) => store.listDeliveries({ tenantId: "t1" }, { order: "-created_at", ...query }),
      };
    return webhooks(kind as (typeof WEBHOOK_ORDERS)[number]);
  };
}

async function walk(list: List, limit: number, initial: RowSpec[], inserts: RowSpec[][]): Promise<void> {
  const rows: Row[] = [];
  const add = async (spec: RowSpec) => {
    const row = await list.insert(spec);
    if (row) rows.push(row);
  };
  for (const spec of initial) await add(spec);
  const existing = rows.map((r) => r.id);
  const byId = () => new Map(rows.map((r) => [r.id, r]));
  let step = 0;
  const insertSome = async () => {
    for (const spec of inserts[step++] ?? []) await add(spec);
  };
  const fetch = async (position: { after?: Row; before?: Row }) => {
    const page = await list.page({
      limit,
      ...(position.after ? { after: cursor(position.after) } : {}),
      ...(position.before ? { before: cursor(position.before) } : {}),
    });
    const want = expectedPage(list, rows, limit, position);
    expect({
      ids: page.items.map((i) => i.id),
      hasNextPage: page.hasNextPage,
      hasPreviousPage: page.hasPreviousPage,
    }).toEqual(want);
    return page.items.map((i) => byId().get(i.id)!);
  };

  // Forwards to the end.
  const forward: string[] = [];
  let items = await fetch({});
  forward.push(...items.map((r) => r.id));
  while (items.length > 0) {
    await insertSome();
    const last = items.at(-1)!;
    items = await fetch({ after: last });
    forward.push(...items.map((r) => r.id));
  }
  // Backwards from the last row seen to the start.
  const backward: string[] = [];
  let first: Row | undefined = byId().get(forward.at(-1) ?? "");
  if (first) backward.push(first.id);
  while (first) {
    await insertSome();
    const page = await fetch({ before: first });
    backward.unshift(...page.map((r) => r.id));
    first = page[0];
  }
  for (const walked of [forward, backward]) {
    expect(new Set(walked).size).toBe(walked.length); // nothing repeated
    for (const id of existing) expect(walked).toContain(id); // nothing that existed skipped
  }
}

const KINDS = [...WEBHOOK_ORDERS, "events", "deliveries"] as const;

for (const driver of STORE_DRIVERS) {
  describe(driver.name, () => {
    test("paging forwards then backwards with inserts in between: exact pages, nothing repeated or skipped", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...KINDS),
          fc.integer({ min: 1, max: 5 }),
          fc.array(rowSpecArb, { maxLength: 12 }),
          fc.array(fc.array(rowSpecArb, { maxLength: 2 }), { maxLength: 20 }),
          async (kind, limit, initial, inserts) => run(driver, kind, limit, initial, inserts),
        ),
        { numRuns: 50 },
      );
    }, 120_000);
  });
}

async function run(
  driver: StoreDriver,
  kind: string,
  limit: number,
  initial: RowSpec[],
  inserts: RowSpec[][],
) {
  const clock = createManualClock(T0);
  const ids = createIdGenerator(clock, cryptoRandom);
  const store = await driver.create({ ids, clock });
  try {
    await walk(lists(store, clock, ids)(kind), limit, initial, inserts);
  } finally {
    await store.close();
  }
}
