// Whole rows in and out, in the drivers' shared format (store.ts StoredRow): for `storage copy` and
// for tests that compare what each driver stored. The SQLite columns are the shared format.
import type { Database, SQLQueryBindings } from "bun:sqlite";
import type { StoredRow, TableName } from "../store.ts";

/** The columns that order each table's rows for paging (rowid where the table has no key of its own). */
const KEYS: Record<TableName, string[]> = {
  settings: ["key"],
  webhooks: ["id"],
  webhook_previous_secrets: ["rowid"],
  events: ["id"],
  deliveries: ["id"],
  attempts: ["id"],
  idempotency_keys: ["tenant_id", "key"],
  portal_sessions: ["id"],
  webhook_stats: ["span", "webhook_id", "start", "tenant_id", "shard"],
};

export function exportRows(
  db: Database,
  table: TableName,
  after: string | null,
  limit: number,
): { rows: StoredRow[]; last: string | null } {
  const keys = KEYS[table];
  const tuple = `(${keys.join(", ")})`;
  const params: SQLQueryBindings[] = after === null ? [] : (JSON.parse(after) as SQLQueryBindings[]);
  const where = after === null ? "" : `WHERE ${tuple} > (${keys.map(() => "?").join(", ")})`;
  const select = keys.includes("rowid") ? "rowid AS __rowid, *" : "*";
  const rows = db
    .query<StoredRow, SQLQueryBindings[]>(
      `SELECT ${select} FROM ${table} ${where} ORDER BY ${keys.join(", ")} LIMIT ${Math.trunc(limit)}`,
    )
    .all(...params);
  const lastRow = rows.at(-1);
  const last = lastRow
    ? JSON.stringify(keys.map((key) => (key === "rowid" ? lastRow.__rowid : lastRow[key])))
    : null;
  for (const row of rows) delete row.__rowid;
  return { rows, last };
}

export function importRows(db: Database, table: TableName, rows: readonly StoredRow[]): void {
  const known = new Set(
    db
      .query<{ name: string }, []>(`SELECT name FROM pragma_table_info('${table}')`)
      .all()
      .map((c) => c.name),
  );
  db.transaction(() => {
    for (const row of rows) {
      const columns = Object.keys(row).filter((name) => known.has(name));
      db.query(
        `INSERT INTO ${table} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
      ).run(...columns.map((name) => row[name] as SQLQueryBindings));
    }
  }).immediate();
}

export function hasData(db: Database): boolean {
  const row = db
    .query<{ found: number }, []>(
      `SELECT EXISTS (SELECT 1 FROM webhooks) OR EXISTS (SELECT 1 FROM events)
         OR EXISTS (SELECT 1 FROM settings WHERE key <> 'heartbeat') AS found`,
    )
    .get();
  return row?.found === 1;
}
