// Looking into what a hookd stored, on either driver: a store's rows (exportAll), and a child
// process's database once the process is stopped (or killed). SQLite: the file, read-only (a read-only connection leaves the write-ahead log as the
// crash left it for the next process to recover). PostgreSQL: an unstarted test daemon over the same
// database, through the store's exportRows. Rows come in the drivers' shared format (store.ts
// StoredRow), which is the SQLite schema's columns: `SELECT *` there is what exportRows answers.
import { Database } from "bun:sqlite";
import { type Store, type StoredRow, TABLES, type TableName } from "../../src/store/store.ts";
import { createTestDaemon } from "./daemon.ts";
import type { TestStorage } from "./driver.ts";

/** Every row of `table` through `store.exportRows`, page by page. */
export async function exportAll(store: Store, table: TableName): Promise<StoredRow[]> {
  const rows: StoredRow[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await store.exportRows(table, after, 1000);
    rows.push(...page.rows);
    if (page.rows.length === 0 || page.last === null) return rows;
    after = page.last;
  }
}

/** Opens `path` read-only for `read` and closes it again, whatever `read` does. */
export function readDatabase<T>(path: string, read: (db: Database) => T): T {
  const db = new Database(path, { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** Every row PRAGMA integrity_check answers: `["ok"]` for a sound database. SQLite only. */
export function integrityCheck(path: string): string[] {
  return readDatabase(path, (db) =>
    db
      .query<{ integrity_check: string }, []>("PRAGMA integrity_check")
      .all()
      .map((row) => row.integrity_check),
  );
}

/** What a child stored, table by table. */
export interface StoredState {
  /** Every row of `table`, in the shared format. */
  rows(table: TableName): Promise<StoredRow[]>;
  close(): Promise<void>;
}

/** Opens `storage` for reading rows; close it when done (PostgreSQL holds a connection pool). */
export async function openStoredState(storage: TestStorage): Promise<StoredState> {
  if (storage.driver === "sqlite") {
    return {
      async rows(table) {
        if (!TABLES.includes(table)) throw new Error(`not a table: ${table}`);
        return readDatabase(storage.sqlitePath, (db) =>
          db.query<StoredRow, []>(`SELECT * FROM ${table}`).all(),
        );
      },
      async close() {},
    };
  }
  if (!storage.databaseUrl) throw new Error("a PostgreSQL storage without a database URL");
  const reader = await createTestDaemon({ driver: "postgres", databaseUrl: storage.databaseUrl });
  return { rows: (table) => exportAll(reader.daemon.store, table), close: () => reader.close() };
}

/** Reads `storage` once: opens, reads, closes. */
export async function readStoredRows(storage: TestStorage, table: TableName): Promise<StoredRow[]> {
  const state = await openStoredState(storage);
  try {
    return await state.rows(table);
  } finally {
    await state.close();
  }
}

/** Deliveries still queued (pending or retrying), and deliveries under a lease. */
export function queuedAndLeased(deliveries: readonly StoredRow[]): { queued: number; leased: number } {
  return {
    queued: deliveries.filter((row) => row.status === "pending" || row.status === "retrying").length,
    leased: deliveries.filter((row) => row.lease_owner !== null).length,
  };
}

/** Deliveries that took more than one attempt. */
export function retriedCount(deliveries: readonly StoredRow[]): number {
  return deliveries.filter((row) => Number(row.attempts) > 1).length;
}
