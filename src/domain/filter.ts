// Payload filters (SPEC §2 Webhooks, docs/filters.md): validation with the path of every fault, and
// compilation into a predicate once per subscription, so fan-out never re-reads a filter per event.
// Evaluation never throws: a missing path or a value of another type is "no match", never an error.

/** A filter as stored: a JSON object (validated by `filterProblems`). */
export type Filter = Record<string, unknown>;

/** What a filter is matched against: the event's `{type, account_id, data}`. */
export interface FilterSubject {
  type: string;
  account_id: string | null;
  /** The event's data; a function so that it is parsed only when a filter reads it. */
  data: () => unknown;
}

export type FilterPredicate = (subject: FilterSubject) => boolean;

/** What fan-out matches on: the event's type, account and (for filters) data. */
export interface FanoutEvent {
  type: string;
  accountId: string | null;
  /** The delivery body, `{…, "data": …}`: where the data is read from when `data` is absent. */
  payload: string;
  data?: unknown;
}

/**
 * The subject of an event at fan-out: its data as given, or read from its payload (`{…, "data"}`)
 * the first time a filter asks, and then kept for the other subscriptions.
 */
export function subjectOf(event: FanoutEvent): FilterSubject {
  let data: unknown = event.data;
  let read = event.data !== undefined;
  return {
    type: event.type,
    account_id: event.accountId,
    data: () => {
      if (!read) {
        read = true;
        try {
          data = (JSON.parse(event.payload) as { data?: unknown }).data;
        } catch {
          data = undefined; // not JSON: no data path exists, so filters on data do not match
        }
      }
      return data;
    },
  };
}

export const MAX_FILTER_BYTES = 4096;
export const MAX_FILTER_DEPTH = 8;
/** The fields of the event a path may start with. */
export const FILTER_ROOTS = ["type", "account_id", "data"] as const;

const COMPARISONS = ["$gt", "$gte", "$lt", "$lte"] as const;
const STRING_OPERATORS = ["$startsWith", "$endsWith"] as const;
const OPERATORS = new Set<string>([
  "$eq",
  "$neq",
  ...COMPARISONS,
  "$in",
  "$nin",
  "$exists",
  ...STRING_OPERATORS,
  "$contains",
]);
const MAX_LIST = 1000;

export interface FilterProblem {
  /** Relative to the filter, e.g. `data.amount.$gt` or `$or[1].type`; "" for the filter itself. */
  path: string;
  message: string;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** An object whose keys are all operators (`{"$gt": 5}`), as opposed to a literal object. */
const isOperatorObject = (v: unknown): v is Record<string, unknown> => {
  if (!isObject(v)) return false;
  const keys = Object.keys(v);
  return keys.length > 0 && keys.some((k) => k.startsWith("$"));
};

/** JSON nesting depth of objects and arrays; the filter object itself is level 1. */
function depthOf(value: unknown, limit: number): number {
  if (typeof value !== "object" || value === null) return 0;
  if (limit <= 0) return 1;
  let deepest = 0;
  for (const child of Object.values(value)) deepest = Math.max(deepest, depthOf(child, limit - 1));
  return deepest + 1;
}

const join = (base: string, key: string) => (base === "" ? key : `${base}.${key}`);

function pathProblem(path: string): string | null {
  const segments = path.split(".");
  if (segments.some((s) => s === "")) return "is not a dotted path (an empty segment)";
  const root = segments[0] as string;
  if (!(FILTER_ROOTS as readonly string[]).includes(root)) {
    return `a path starts with one of ${FILTER_ROOTS.join(", ")} (did you mean "data.${path}"?)`;
  }
  if (root !== "data" && segments.length > 1) return `${root} is a string: it has no fields`;
  return null;
}

/** Every fault of `filter`, each with its path; empty when it is a valid filter. */
export function filterProblems(filter: unknown): FilterProblem[] {
  if (!isObject(filter)) return [{ path: "", message: "must be an object (or null for no filter)" }];
  // Depth first: it stops at the bound, so a deeply nested input is never walked further.
  if (depthOf(filter, MAX_FILTER_DEPTH + 1) > MAX_FILTER_DEPTH) {
    return [{ path: "", message: `must be at most ${MAX_FILTER_DEPTH} levels deep` }];
  }
  const bytes = Buffer.byteLength(JSON.stringify(filter), "utf8");
  if (bytes > MAX_FILTER_BYTES) {
    return [{ path: "", message: `must be at most ${MAX_FILTER_BYTES} bytes as JSON (it is ${bytes})` }];
  }
  const problems: FilterProblem[] = [];
  checkFilter(filter, "", problems);
  return problems;
}

function checkFilter(filter: Record<string, unknown>, at: string, out: FilterProblem[]): void {
  for (const [key, value] of Object.entries(filter)) {
    const here = join(at, key);
    if (key === "$and" || key === "$or") {
      if (!Array.isArray(value) || value.length === 0) {
        out.push({ path: here, message: "must be a non-empty array of filters" });
        continue;
      }
      value.forEach((item, index) => {
        if (isObject(item)) checkFilter(item, `${here}[${index}]`, out);
        else out.push({ path: `${here}[${index}]`, message: "must be a filter (an object)" });
      });
    } else if (key === "$not") {
      if (isObject(value)) checkFilter(value, here, out);
      else out.push({ path: here, message: "must be a filter (an object)" });
    } else if (key.startsWith("$")) {
      out.push({
        path: here,
        message: "is not a logical operator ($and, $or, $not); a comparison goes under a path",
      });
    } else {
      const problem = pathProblem(key);
      if (problem) out.push({ path: here, message: problem });
      if (isOperatorObject(value)) checkOperators(value, here, out);
    }
  }
}

function checkOperators(ops: Record<string, unknown>, at: string, out: FilterProblem[]): void {
  for (const [op, operand] of Object.entries(ops)) {
    const here = join(at, op);
    if (!OPERATORS.has(op)) {
      out.push({
        path: here,
        message: op.startsWith("$")
          ? "is not an operator"
          : "an object mixing operators and fields is ambiguous: use only operators, or use $eq for a literal",
      });
    } else if ((COMPARISONS as readonly string[]).includes(op)) {
      if (typeof operand !== "number" && typeof operand !== "string") {
        out.push({ path: here, message: "must be a number or a string" });
      }
    } else if (op === "$in" || op === "$nin") {
      if (!Array.isArray(operand)) out.push({ path: here, message: "must be an array" });
      else if (operand.length > MAX_LIST) {
        out.push({ path: here, message: `must have at most ${MAX_LIST} items` });
      }
    } else if (op === "$exists") {
      if (typeof operand !== "boolean") out.push({ path: here, message: "must be true or false" });
    } else if ((STRING_OPERATORS as readonly string[]).includes(op)) {
      if (typeof operand !== "string") out.push({ path: here, message: "must be a string" });
    }
    // $eq, $neq and $contains take any JSON value.
  }
}

/** Deep JSON equality: arrays in order, objects by their own keys whatever their order. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((item, i) => jsonEqual(item, other[i]));
  }
  const left = Object.keys(a);
  const right = b as Record<string, unknown>;
  if (left.length !== Object.keys(right).length) return false;
  return left.every((k) => Object.hasOwn(right, k) && jsonEqual((a as Record<string, unknown>)[k], right[k]));
}

const MISSING = Symbol("missing");
type Value = unknown | typeof MISSING;
type Test = (value: Value) => boolean;

/** Follows `segments` into a JSON value: object keys, and digits as array indexes. */
function follow(value: unknown, segments: readonly string[]): Value {
  let current: unknown = value;
  for (const segment of segments) {
    if (Array.isArray(current)) {
      if (!/^(0|[1-9]\d*)$/.test(segment)) return MISSING;
      const index = Number(segment);
      if (index >= current.length) return MISSING;
      current = current[index];
    } else if (isObject(current) && Object.hasOwn(current, segment)) {
      current = current[segment];
    } else {
      return MISSING;
    }
  }
  return current === undefined ? MISSING : current;
}

function resolver(path: string): (subject: FilterSubject) => Value {
  const [root, ...rest] = path.split(".");
  if (root === "type") return (s) => s.type;
  if (root === "account_id") return (s) => s.account_id;
  return (s) => follow(s.data(), rest);
}

const sameKind = (a: unknown, b: number | string) =>
  (typeof a === "number" && typeof b === "number") || (typeof a === "string" && typeof b === "string");

function compileOperator(op: string, operand: unknown): Test {
  switch (op) {
    case "$eq":
      return (v) => v !== MISSING && jsonEqual(v, operand);
    case "$neq":
      return (v) => v === MISSING || !jsonEqual(v, operand);
    case "$gt":
      return (v) => sameKind(v, operand as number | string) && (v as number) > (operand as number);
    case "$gte":
      return (v) => sameKind(v, operand as number | string) && (v as number) >= (operand as number);
    case "$lt":
      return (v) => sameKind(v, operand as number | string) && (v as number) < (operand as number);
    case "$lte":
      return (v) => sameKind(v, operand as number | string) && (v as number) <= (operand as number);
    case "$in": {
      const list = operand as unknown[];
      return (v) => v !== MISSING && list.some((item) => jsonEqual(v, item));
    }
    case "$nin": {
      const list = operand as unknown[];
      return (v) => v === MISSING || !list.some((item) => jsonEqual(v, item));
    }
    case "$exists":
      return operand === true ? (v) => v !== MISSING : (v) => v === MISSING;
    case "$startsWith":
      return (v) => typeof v === "string" && v.startsWith(operand as string);
    case "$endsWith":
      return (v) => typeof v === "string" && v.endsWith(operand as string);
    case "$contains":
      return (v) =>
        typeof v === "string"
          ? typeof operand === "string" && v.includes(operand)
          : Array.isArray(v) && v.some((item) => jsonEqual(item, operand));
    default:
      return () => false;
  }
}

/**
 * The predicate of a filter `filterProblems` found valid; null (no filter) matches every event.
 * Compiled once: paths are split and operators chosen here, not per event.
 */
export function compileFilter(filter: Filter | null): FilterPredicate {
  if (filter === null) return () => true;
  return compileObject(filter);
}

function compileObject(filter: Record<string, unknown>): FilterPredicate {
  const parts: FilterPredicate[] = Object.entries(filter).map(([key, value]) => {
    if (key === "$and") {
      const all = (value as Record<string, unknown>[]).map(compileObject);
      return (s) => all.every((p) => p(s));
    }
    if (key === "$or") {
      const any = (value as Record<string, unknown>[]).map(compileObject);
      return (s) => any.some((p) => p(s));
    }
    if (key === "$not") {
      const inner = compileObject(value as Record<string, unknown>);
      return (s) => !inner(s);
    }
    const read = resolver(key);
    const tests: Test[] = isOperatorObject(value)
      ? Object.entries(value).map(([op, operand]) => compileOperator(op, operand))
      : [compileOperator("$eq", value)];
    return (s) => {
      const v = read(s);
      return tests.every((t) => t(v));
    };
  });
  if (parts.length === 1) return parts[0] as FilterPredicate;
  return (s) => parts.every((p) => p(s));
}
