// Keyset pagination over (sort column, id) for PostgreSQL: stable under inserts, exact in both
// directions. The same rules as the SQLite driver's keyset.ts, with numbered parameters.
import type { Cursor, Page, PageQuery } from "../store.ts";
import type { Query } from "./client.ts";

export interface KeysetSpec<Row, T> {
  /** `SELECT ... FROM table alias` without WHERE. */
  select: string;
  /** Conditions joined with AND, written with `?` for each parameter, and their parameters in order. */
  where: string[];
  params: unknown[];
  column: string;
  idColumn: string;
  descending: boolean;
  map: (row: Row) => T;
}

/** Numbers `?` placeholders as $1, $2, … (the SQL here never holds a literal `?`). */
export function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

export async function keysetPage<Row, T>(
  q: Query,
  spec: KeysetSpec<Row, T>,
  page: PageQuery<string>,
): Promise<Page<T>> {
  const key = `(${spec.column}, ${spec.idColumn})`;
  const d = spec.descending;
  const op = {
    after: d ? "<" : ">",
    before: d ? ">" : "<",
    notAfter: d ? ">=" : "<=",
    notBefore: d ? "<=" : ">=",
  };
  const forward = d ? "DESC" : "ASC";
  const backward = d ? "ASC" : "DESC";
  const limit = page.limit + 1;
  const run = (extra: string[], extraParams: unknown[], direction: string) => {
    const where = [...spec.where, ...extra];
    const text =
      `${spec.select}${where.length ? ` WHERE ${where.join(" AND ")}` : ""}` +
      ` ORDER BY ${spec.column} ${direction}, ${spec.idColumn} ${direction} LIMIT ${limit}`;
    return q<Row>(numbered(text), [...spec.params, ...extraParams]);
  };
  const exists = async (extra: string, cursor: Cursor) => {
    const where = [...spec.where, extra];
    const text = `SELECT EXISTS (${spec.select} WHERE ${where.join(" AND ")}) AS found`;
    const [row] = await q<{ found: boolean }>(numbered(text), [...spec.params, cursor.value, cursor.id]);
    return row?.found === true;
  };
  if (page.before) {
    const rows = await run([`${key} ${op.before} (?, ?)`], [page.before.value, page.before.id], backward);
    const hasPreviousPage = rows.length > page.limit;
    const items = rows.slice(0, page.limit).reverse().map(spec.map);
    return {
      items,
      hasPreviousPage,
      hasNextPage: await exists(`${key} ${op.notBefore} (?, ?)`, page.before),
    };
  }
  const rows = page.after
    ? await run([`${key} ${op.after} (?, ?)`], [page.after.value, page.after.id], forward)
    : await run([], [], forward);
  return {
    items: rows.slice(0, page.limit).map(spec.map),
    hasNextPage: rows.length > page.limit,
    hasPreviousPage: page.after ? await exists(`${key} ${op.notAfter} (?, ?)`, page.after) : false,
  };
}

/** A bigint column as a number (Bun answers values beyond 32 bits as strings). */
export const num = (value: unknown): number => (typeof value === "number" ? value : Number(value));
export const numOrNull = (value: unknown): number | null =>
  value === null || value === undefined ? null : num(value);
