// The payload filter (SPEC §2 `filter`, docs/filters.md): every operator matching and not, nested
// paths, $and/$or/$not, missing paths and type mismatches (no match, never an error), every
// validation fault with its path, the 4 KiB and 8-level bounds; and a property: a valid filter never
// throws on any JSON event.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import {
  compileFilter,
  type Filter,
  filterProblems,
  MAX_FILTER_BYTES,
  subjectOf,
} from "../../src/domain/filter.ts";

const event = {
  type: "invoice.paid",
  account_id: "acct_1" as string | null,
  data: {
    amount: 1250,
    currency: "EUR",
    paid: true,
    note: null,
    tags: ["vip", "eu", 7],
    customer: { country: "DE", email: "ada@example.com", address: { city: "Berlin" } },
    lines: [{ sku: "A-1", qty: 2 }, { sku: "B-2" }],
    issued_at: "2026-03-01T10:00:00.000Z",
  },
};

function matches(filter: Filter, subject: typeof event = event): boolean {
  expect(filterProblems(filter)).toEqual([]);
  return compileFilter(filter)({
    type: subject.type,
    account_id: subject.account_id,
    data: () => subject.data,
  });
}

describe("operators", () => {
  // [operator, a filter that matches, a filter that does not]
  const cases: [string, Filter, Filter][] = [
    ["literal", { "data.currency": "EUR" }, { "data.currency": "USD" }],
    [
      "literal object (deep, any key order)",
      { "data.customer.address": { city: "Berlin" } },
      { "data.customer.address": { city: "Paris" } },
    ],
    ["literal array (deep, in order)", { "data.tags": ["vip", "eu", 7] }, { "data.tags": ["eu", "vip", 7] }],
    ["literal null", { "data.note": null }, { "data.paid": null }],
    ["$eq", { "data.amount": { $eq: 1250 } }, { "data.amount": { $eq: 1251 } }],
    ["$neq", { "data.amount": { $neq: 1 } }, { "data.amount": { $neq: 1250 } }],
    ["$gt number", { "data.amount": { $gt: 1249 } }, { "data.amount": { $gt: 1250 } }],
    ["$gte number", { "data.amount": { $gte: 1250 } }, { "data.amount": { $gte: 1251 } }],
    ["$lt number", { "data.amount": { $lt: 1251 } }, { "data.amount": { $lt: 1250 } }],
    ["$lte number", { "data.amount": { $lte: 1250 } }, { "data.amount": { $lte: 1249 } }],
    ["$gt string", { "data.issued_at": { $gt: "2026-01-01" } }, { "data.issued_at": { $gt: "2026-04-01" } }],
    ["$gte string", { "data.currency": { $gte: "EUR" } }, { "data.currency": { $gte: "EURO" } }],
    ["$lt string", { "data.currency": { $lt: "USD" } }, { "data.currency": { $lt: "ABC" } }],
    ["$lte string", { "data.currency": { $lte: "EUR" } }, { "data.currency": { $lte: "EUQ" } }],
    [
      "$in",
      { "data.customer.country": { $in: ["FR", "DE"] } },
      { "data.customer.country": { $in: ["FR", "IT"] } },
    ],
    [
      "$in deep",
      { "data.customer.address": { $in: [{ city: "Berlin" }] } },
      { "data.customer.address": { $in: [{ city: "Rome" }] } },
    ],
    [
      "$nin",
      { "data.customer.country": { $nin: ["FR", "IT"] } },
      { "data.customer.country": { $nin: ["DE"] } },
    ],
    ["$exists true", { "data.note": { $exists: true } }, { "data.refund": { $exists: true } }],
    ["$exists false", { "data.refund": { $exists: false } }, { "data.amount": { $exists: false } }],
    ["$startsWith", { type: { $startsWith: "invoice." } }, { type: { $startsWith: "order." } }],
    [
      "$endsWith",
      { "data.customer.email": { $endsWith: "@example.com" } },
      { "data.customer.email": { $endsWith: "@example.org" } },
    ],
    [
      "$contains string",
      { "data.customer.email": { $contains: "ada@" } },
      { "data.customer.email": { $contains: "bob@" } },
    ],
    ["$contains array", { "data.tags": { $contains: "vip" } }, { "data.tags": { $contains: "us" } }],
    ["$contains array number", { "data.tags": { $contains: 7 } }, { "data.tags": { $contains: "7" } }],
  ];
  for (const [name, yes, no] of cases) {
    test(`${name} matches and does not match`, () => {
      expect(matches(yes)).toBe(true);
      expect(matches(no)).toBe(false);
    });
  }

  test("several operators on one path must all match (a range)", () => {
    expect(matches({ "data.amount": { $gte: 1000, $lt: 2000 } })).toBe(true);
    expect(matches({ "data.amount": { $gte: 1000, $lt: 1250 } })).toBe(false);
  });

  test("several keys in one object must all match", () => {
    expect(matches({ type: "invoice.paid", "data.currency": "EUR", account_id: "acct_1" })).toBe(true);
    expect(matches({ type: "invoice.paid", "data.currency": "EUR", account_id: "acct_2" })).toBe(false);
  });

  test("an empty filter matches every event", () => {
    expect(matches({})).toBe(true);
  });

  test("a literal object compares whole: a key more or fewer than the event's is no match", () => {
    // The event's address is {city: "Berlin"}; its customer has country, email and address.
    expect(matches({ "data.customer.address": { city: "Berlin", zip: "10115" } })).toBe(false);
    expect(matches({ "data.customer": { country: "DE" } })).toBe(false);
    expect(matches({ "data.customer.address": { $eq: { city: "Berlin", zip: "10115" } } })).toBe(false);
    expect(matches({ "data.customer.address": { $neq: { city: "Berlin", zip: "10115" } } })).toBe(true);
    expect(matches({ "data.customer.address": { $in: [{ city: "Berlin", zip: "10115" }] } })).toBe(false);
    expect(matches({ "data.lines": { $contains: { sku: "B-2", qty: 1 } } })).toBe(false);
    expect(matches({ "data.lines": { $contains: { sku: "B-2" } } })).toBe(true);
  });
});

describe("paths", () => {
  test("nested paths, and digits index arrays", () => {
    expect(matches({ "data.customer.address.city": "Berlin" })).toBe(true);
    expect(matches({ "data.lines.0.sku": "A-1" })).toBe(true);
    expect(matches({ "data.lines.1.sku": { $startsWith: "B" } })).toBe(true);
    expect(matches({ "data.lines.2.sku": { $exists: true } })).toBe(false);
    expect(matches({ "data.lines.01.sku": { $exists: true } })).toBe(false);
    expect(matches({ "data.lines.x": { $exists: true } })).toBe(false);
  });

  test("type and account_id are the event's own", () => {
    expect(matches({ type: "invoice.paid" })).toBe(true);
    expect(matches({ account_id: "acct_1" })).toBe(true);
    expect(matches({ account_id: null }, { ...event, account_id: null })).toBe(true);
    expect(matches({ account_id: { $exists: true } }, { ...event, account_id: null })).toBe(true);
  });

  test("a missing path matches only $neq, $nin and $exists: false", () => {
    const missing = "data.customer.vat_id";
    const onMissing = (ops: Record<string, unknown>) => matches({ [missing]: ops });
    expect(matches({ [missing]: "x" })).toBe(false);
    expect(matches({ [missing]: null })).toBe(false);
    expect(onMissing({ $eq: null })).toBe(false);
    expect(onMissing({ $neq: "x" })).toBe(true);
    expect(onMissing({ $nin: ["x"] })).toBe(true);
    expect(onMissing({ $exists: false })).toBe(true);
    expect(onMissing({ $exists: true })).toBe(false);
    for (const op of ["$gt", "$gte", "$lt", "$lte"]) expect(onMissing({ [op]: 1 })).toBe(false);
    expect(onMissing({ $in: [null] })).toBe(false);
    expect(onMissing({ $startsWith: "" })).toBe(false);
    expect(onMissing({ $endsWith: "" })).toBe(false);
    expect(onMissing({ $contains: "" })).toBe(false);
    // A path through a value that is not an object (a string, a number, null) is missing too.
    expect(matches({ "data.currency.code": { $exists: false } })).toBe(true);
    expect(matches({ "data.note.x": { $exists: false } })).toBe(true);
  });

  test("a path does not reach inherited properties", () => {
    expect(matches({ "data.customer.constructor": { $exists: false } })).toBe(true);
    expect(matches({ "data.__proto__": { $exists: false } })).toBe(true);
    expect(matches({ "data.tags.length": { $exists: false } })).toBe(true);
  });
});

describe("type mismatches are no match, never an error", () => {
  test("numbers and strings never compare with each other", () => {
    expect(matches({ "data.amount": { $gt: "1" } })).toBe(false);
    expect(matches({ "data.amount": { $lt: "9999" } })).toBe(false);
    expect(matches({ "data.currency": { $gt: 0 } })).toBe(false);
    expect(matches({ "data.amount": "1250" })).toBe(false);
    expect(matches({ "data.amount": { $in: ["1250"] } })).toBe(false);
  });

  test("string operators on non-strings, comparisons on booleans, objects and arrays", () => {
    expect(matches({ "data.amount": { $startsWith: "12" } })).toBe(false);
    expect(matches({ "data.paid": { $endsWith: "ue" } })).toBe(false);
    expect(matches({ "data.customer": { $contains: "DE" } })).toBe(false);
    expect(matches({ "data.amount": { $contains: 1 } })).toBe(false);
    expect(matches({ "data.currency": { $contains: 1 } })).toBe(false);
    expect(matches({ "data.paid": { $gt: 0 } })).toBe(false);
    expect(matches({ "data.customer": { $lt: "z" } })).toBe(false);
    expect(matches({ "data.tags": { $gte: 0 } })).toBe(false);
  });

  test("$neq and $nin match a value of another type (it is not equal)", () => {
    expect(matches({ "data.amount": { $neq: "1250" } })).toBe(true);
    expect(matches({ "data.amount": { $nin: ["1250"] } })).toBe(true);
  });

  test("data that is not an object", () => {
    for (const data of [null, 3, "text", [1, 2], true]) {
      const subject = { ...event, data: data as never };
      expect(matches({ "data.amount": { $exists: false } }, subject)).toBe(true);
      expect(matches({ "data.amount": 1 }, subject)).toBe(false);
    }
    expect(matches({ data: [1, 2] }, { ...event, data: [1, 2] as never })).toBe(true);
    expect(matches({ "data.1": 2 }, { ...event, data: [1, 2] as never })).toBe(true);
  });
});

describe("$and, $or, $not", () => {
  test("$and needs every filter", () => {
    expect(matches({ $and: [{ "data.amount": { $gt: 1000 } }, { "data.currency": "EUR" }] })).toBe(true);
    expect(matches({ $and: [{ "data.amount": { $gt: 1000 } }, { "data.currency": "USD" }] })).toBe(false);
  });

  test("$or needs one", () => {
    expect(matches({ $or: [{ "data.currency": "USD" }, { "data.customer.country": "DE" }] })).toBe(true);
    expect(matches({ $or: [{ "data.currency": "USD" }, { "data.customer.country": "FR" }] })).toBe(false);
  });

  test("$not inverts one filter", () => {
    expect(matches({ $not: { "data.currency": "USD" } })).toBe(true);
    expect(matches({ $not: { "data.currency": "EUR" } })).toBe(false);
    expect(matches({ $not: { "data.missing": 1 } })).toBe(true);
  });

  test("nested and combined with plain keys", () => {
    const filter = {
      type: { $startsWith: "invoice." },
      $or: [
        { $and: [{ "data.currency": "EUR" }, { "data.amount": { $gte: 1000 } }] },
        { $not: { "data.customer.country": { $in: ["DE", "FR"] } } },
      ],
    };
    expect(matches(filter)).toBe(true);
    expect(matches(filter, { ...event, data: { ...event.data, amount: 10 } })).toBe(false);
    expect(matches(filter, { ...event, type: "order.paid" })).toBe(false);
  });
});

describe("validation: every fault with its path", () => {
  const problems = (filter: unknown) => filterProblems(filter);

  test("the filter must be an object", () => {
    for (const bad of [[], "x", 1, true]) {
      expect(problems(bad)).toEqual([{ path: "", message: "must be an object (or null for no filter)" }]);
    }
  });

  test("each operator's operand", () => {
    expect(
      problems({
        "data.amount": { $gt: true, $gte: null, $lt: [1], $lte: {} },
        "data.a": { $in: 1, $nin: "x" },
        "data.b": { $exists: "yes", $startsWith: 1, $endsWith: null },
        "data.c": { $between: [1, 2] },
      }),
    ).toEqual([
      { path: "data.amount.$gt", message: "must be a number or a string" },
      { path: "data.amount.$gte", message: "must be a number or a string" },
      { path: "data.amount.$lt", message: "must be a number or a string" },
      { path: "data.amount.$lte", message: "must be a number or a string" },
      { path: "data.a.$in", message: "must be an array" },
      { path: "data.a.$nin", message: "must be an array" },
      { path: "data.b.$exists", message: "must be true or false" },
      { path: "data.b.$startsWith", message: "must be a string" },
      { path: "data.b.$endsWith", message: "must be a string" },
      { path: "data.c.$between", message: "is not an operator" },
    ]);
    expect(problems({ "data.a": { $in: Array.from({ length: 1001 }, (_, i) => i) } })).toEqual([
      { path: "data.a.$in", message: "must have at most 1000 items" },
    ]);
  });

  test("operators mixed with fields", () => {
    expect(problems({ "data.a": { $gt: 1, b: 2 } })).toEqual([
      {
        path: "data.a.b",
        message:
          "an object mixing operators and fields is ambiguous: use only operators, or use $eq for a literal",
      },
    ]);
  });

  test("paths", () => {
    expect(problems({ amount: 1, "data..x": 1, "type.name": "x", "account_id.x": 1, "": 1 })).toEqual([
      {
        path: "amount",
        message: 'a path starts with one of type, account_id, data (did you mean "data.amount"?)',
      },
      { path: "data..x", message: "is not a dotted path (an empty segment)" },
      { path: "type.name", message: "type is a string: it has no fields" },
      { path: "account_id.x", message: "account_id is a string: it has no fields" },
      { path: "", message: "is not a dotted path (an empty segment)" },
    ]);
  });

  test("logical operators", () => {
    expect(
      problems({
        $and: [],
        $or: [{ "data.a": { $gt: [] } }, 3],
        $not: [],
        $nor: [],
      }),
    ).toEqual([
      { path: "$and", message: "must be a non-empty array of filters" },
      { path: "$or[0].data.a.$gt", message: "must be a number or a string" },
      { path: "$or[1]", message: "must be a filter (an object)" },
      { path: "$not", message: "must be a filter (an object)" },
      {
        path: "$nor",
        message: "is not a logical operator ($and, $or, $not); a comparison goes under a path",
      },
    ]);
    expect(problems({ $or: {} })).toEqual([{ path: "$or", message: "must be a non-empty array of filters" }]);
    expect(problems({ $not: { $and: [{ amount: 1 }] } })[0]?.path).toBe("$not.$and[0].amount");
  });

  test("at most 4 KiB as JSON", () => {
    const fits = (n: number) => ({ "data.s": "x".repeat(n) });
    const overhead = JSON.stringify(fits(0)).length;
    expect(problems(fits(MAX_FILTER_BYTES - overhead))).toEqual([]);
    expect(problems(fits(MAX_FILTER_BYTES - overhead + 1))).toEqual([
      { path: "", message: "must be at most 4096 bytes as JSON (it is 4097)" },
    ]);
    // Bytes, not characters: "é" is two.
    expect(problems({ "data.s": "é".repeat(2100) })[0]?.message).toContain("at most 4096 bytes");
  });

  test("at most 8 levels deep", () => {
    // Level 1 is the filter; each $not adds one.
    const nest = (levels: number): Filter => (levels === 1 ? { type: "x" } : { $not: nest(levels - 1) });
    expect(problems(nest(8))).toEqual([]);
    expect(problems(nest(9))).toEqual([{ path: "", message: "must be at most 8 levels deep" }]);
    // Arrays count as levels, and so do literal objects.
    expect(problems({ $and: [{ $and: [{ $and: [{ "data.a": [1] }] }] }] })).toEqual([]);
    expect(problems({ $and: [{ $and: [{ $and: [{ "data.a": [[1]] }] }] }] })).toEqual([
      { path: "", message: "must be at most 8 levels deep" },
    ]);
    // A very deep input is refused without walking it all.
    let deep: Filter = { type: "x" };
    for (let i = 0; i < 50_000; i++) deep = { $not: deep };
    expect(problems(deep)).toEqual([{ path: "", message: "must be at most 8 levels deep" }]);
  });
});

describe("fan-out subjects", () => {
  test("the data is read from the payload once, when a filter first needs it", () => {
    const payload = JSON.stringify({ id: "evt_1", type: "t.x", timestamp: "x", data: { n: 2 } });
    const subject = subjectOf({ type: "t.x", accountId: null, payload });
    expect(subject.data()).toEqual({ n: 2 });
    expect(subject.data()).toBe(subject.data());
    expect(compileFilter({ "data.n": { $gt: 1 } })(subject)).toBe(true);
    expect(subjectOf({ type: "t.x", accountId: null, payload: "not json" }).data()).toBeUndefined();
    expect(subjectOf({ type: "t.x", accountId: null, payload: "", data: { n: 3 } }).data()).toEqual({ n: 3 });
  });
});

// A generator of valid filters: paths under type/account_id/data, every operator with a valid
// operand, $and/$or/$not, kept within the bounds.
const segment = fc.constantFrom("a", "b", "amount", "items", "0", "1", "x.y".split(".")[0] as string);
const dataPath = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `data.${s.join(".")}`);
const path = fc.oneof(dataPath, fc.constantFrom("type", "account_id", "data"));
const scalar = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
);
const literal = fc.oneof(
  scalar,
  fc.array(scalar, { maxLength: 3 }),
  fc.dictionary(fc.string(), scalar, { maxKeys: 3 }),
);
const orderable = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string());
// One or two operators, so that each gets evaluated often (the first that fails ends the rest).
const operator = fc.oneof(
  fc.tuple(fc.constantFrom("$eq", "$neq", "$contains"), literal),
  fc.tuple(fc.constantFrom("$gt", "$gte", "$lt", "$lte"), orderable),
  fc.tuple(fc.constantFrom("$in", "$nin"), fc.array(literal, { maxLength: 3 })),
  fc.tuple(fc.constant("$exists"), fc.boolean()),
  fc.tuple(fc.constantFrom("$startsWith", "$endsWith"), fc.string({ maxLength: 2 })),
);
const operators = fc
  .array(operator, { minLength: 1, maxLength: 2 })
  .map((pairs) => Object.fromEntries(pairs) as Record<string, unknown>);
const condition = fc.tuple(
  path,
  fc.oneof(
    literal.filter(
      (v) => !(typeof v === "object" && v !== null && Object.keys(v).some((k) => k.startsWith("$"))),
    ),
    operators,
  ),
);
const { filter: validFilter } = fc.letrec<{ filter: Filter }>((tie) => ({
  filter: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.array(condition, { maxLength: 3 }).map((pairs) => Object.fromEntries(pairs) as Filter),
    fc.array(tie("filter"), { minLength: 1, maxLength: 3 }).map((all) => ({ $and: all })),
    fc.array(tie("filter"), { minLength: 1, maxLength: 3 }).map((any) => ({ $or: any })),
    tie("filter").map((inner) => ({ $not: inner })),
  ),
}));

// Event data shaped like the paths above (so that they often exist), or any JSON at all.
const { data: shapedData } = fc.letrec<{ data: unknown }>((tie) => ({
  data: fc.oneof(
    { depthSize: "small" },
    scalar,
    fc.array(tie("data"), { maxLength: 3 }),
    fc.dictionary(segment, tie("data"), { maxKeys: 4 }),
  ),
}));

test("property: a valid filter never throws on any JSON event", () => {
  fc.assert(
    fc.property(
      validFilter.filter((f) => filterProblems(f).length === 0),
      fc.string(),
      fc.option(fc.string(), { nil: null }),
      fc.oneof(shapedData, fc.jsonValue()),
      (filter, type, accountId, data) => {
        const predicate = compileFilter(filter);
        const result = predicate({ type, account_id: accountId, data: () => data });
        expect(typeof result).toBe("boolean");
        // And through a payload, as fan-out reads it.
        const payload = `{"id":"evt_1","type":${JSON.stringify(type)},"data":${JSON.stringify(data) ?? "null"}}`;
        expect(typeof predicate(subjectOf({ type, accountId, payload }))).toBe("boolean");
      },
    ),
    { numRuns: 2000 },
  );
});

test("property: the generator makes mostly valid filters (the property above is not vacuous)", () => {
  const samples = fc.sample(validFilter, 500);
  const valid = samples.filter((f) => filterProblems(f).length === 0);
  // The rest are too deep (the generator does not count levels); the property skips those.
  expect(valid.length).toBeGreaterThan(250);
  expect(samples.every((f) => filterProblems(f).every((p) => p.message.includes("levels deep")))).toBe(true);
});

test("docs/filters.md: every example in its table says what the evaluator does", () => {
  const doc = readFileSync(join(import.meta.dir, "..", "..", "docs", "filters.md"), "utf8");
  const example = {
    type: "invoice.paid",
    account_id: "acct_42",
    data: {
      amount: 1250,
      currency: "EUR",
      paid: true,
      note: null,
      tags: ["vip", "eu"],
      issued_at: "2026-03-01T10:00:00.000Z",
      customer: { country: "DE", email: "ada@example.com" },
      lines: [{ sku: "A-1", qty: 2 }],
    },
  };
  const rows = [...doc.matchAll(/^\| `(\{.*\})` \| (yes|no)/gm)];
  expect(rows.length).toBeGreaterThanOrEqual(26);
  for (const [, text, want] of rows) {
    const filter = JSON.parse(text as string) as Filter;
    expect([text, filterProblems(filter)]).toEqual([text, []]);
    expect([text, matches(filter, example as never)]).toEqual([text, want === "yes"]);
  }
  // And the operators the table covers are all of them.
  for (const op of [
    "$eq",
    "$neq",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$startsWith",
    "$endsWith",
    "$contains",
    "$and",
    "$or",
    "$not",
  ]) {
    expect(rows.some(([, text]) => text?.includes(`"${op}"`))).toBe(true);
  }
});
