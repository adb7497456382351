// Multi-row statements: their SQL text built once per row count (bun:sqlite finds a prepared
// statement by its text, so a long text is made once for each size it is used at), and the rows
// written a statement per chunk.
import type { Database, SQLQueryBindings } from "bun:sqlite";

/** Rows a multi-row INSERT takes at most: 50 rows a statement halved ingest's cost of one a row. */
export const ROWS_PER_INSERT = 50;

/** make(rows), kept per row count. */
export function perRows(make: (rows: number) => string): (rows: number) => string {
  const made = new Map<number, string>();
  return (rows) => {
    const known = made.get(rows);
    if (known !== undefined) return known;
    const sql = make(rows);
    made.set(rows, sql);
    return sql;
  };
}

/** `row` (a parenthesised list of placeholders) `rows` times, comma-separated: a VALUES list. */
export const valuesList = (rows: number, row: string): string =>
  Array.from({ length: rows }, () => row).join(", ");

/** Runs `sql(n)` once per chunk of at most `size` rows, bound to the chunk's `values`, in order. */
export function runInChunks<T>(
  db: Database,
  rows: readonly T[],
  size: number,
  sql: (rows: number) => string,
  values: (row: T) => SQLQueryBindings[],
): void {
  for (let at = 0; at < rows.length; at += size) {
    const chunk = rows.slice(at, at + size);
    db.query<never, SQLQueryBindings[]>(sql(chunk.length)).run(...chunk.flatMap(values));
  }
}
