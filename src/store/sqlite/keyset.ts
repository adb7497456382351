// Keyset pagination over (sort column, id): stable under inserts, exact in both directions.
import type { Database, SQLQueryBindings } from "bun:sqlite";
import type { Cursor, Page, PageQuery } from "../store.ts";

export interface KeysetSpec<Row, T> {
  /** `SELECT ... FROM table alias` without WHERE. */
  select: string;
  /** Conditions joined with AND, and their parameters in order. */
  where: string[];
  params: SQLQueryBindings[];
  /** The sort column, qualified as in `select`. */
  column: string;
  idColumn: string;
  descending: boolean;
  map: (row: Row) => T;
}

export function keysetPage<Row, T>(db: Database, spec: KeysetSpec<Row, T>, page: PageQuery<string>): Page<T> {
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

  const run = (extra: string[], extraParams: SQLQueryBindings[], direction: string) => {
    const where = [...spec.where, ...extra];
    const sql =
      `${spec.select}${where.length ? ` WHERE ${where.join(" AND ")}` : ""}` +
      ` ORDER BY ${spec.column} ${direction}, ${spec.idColumn} ${direction} LIMIT ${limit}`;
    return db.query<Row, SQLQueryBindings[]>(sql).all(...spec.params, ...extraParams);
  };
  const exists = (extra: string, cursor: Cursor) => {
    const where = [...spec.where, extra];
    const sql = `SELECT EXISTS (${spec.select} WHERE ${where.join(" AND ")}) AS found`;
    const row = db
      .query<{ found: number }, SQLQueryBindings[]>(sql)
      .get(...spec.params, cursor.value, cursor.id);
    return row?.found === 1;
  };

  if (page.before) {
    const rows = run([`${key} ${op.before} (?, ?)`], [page.before.value, page.before.id], backward);
    const hasPreviousPage = rows.length > page.limit;
    const items = rows.slice(0, page.limit).reverse().map(spec.map);
    return { items, hasPreviousPage, hasNextPage: exists(`${key} ${op.notBefore} (?, ?)`, page.before) };
  }
  const rows = page.after
    ? run([`${key} ${op.after} (?, ?)`], [page.after.value, page.after.id], forward)
    : run([], [], forward);
  return {
    items: rows.slice(0, page.limit).map(spec.map),
    hasNextPage: rows.length > page.limit,
    hasPreviousPage: page.after ? exists(`${key} ${op.notAfter} (?, ?)`, page.after) : false,
  };
}
