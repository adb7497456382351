// Looking into a hookd child's SQLite file from the test, read-only, once the process is stopped (or
// killed: a read-only connection leaves the write-ahead log as the crash left it for the next process
// to recover).
import { Database } from "bun:sqlite";

/** Opens `path` read-only for `read` and closes it again, whatever `read` does. */
export function readDatabase<T>(path: string, read: (db: Database) => T): T {
  const db = new Database(path, { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** Every row PRAGMA integrity_check answers: `["ok"]` for a sound database. */
export function integrityCheck(path: string): string[] {
  return readDatabase(path, (db) =>
    db
      .query<{ integrity_check: string }, []>("PRAGMA integrity_check")
      .all()
      .map((row) => row.integrity_check),
  );
}

/** Deliveries still queued (pending or retrying), and deliveries under a lease. */
export function queuedAndLeased(path: string): { queued: number; leased: number } | null {
  return readDatabase(path, (db) =>
    db
      .query<{ queued: number; leased: number }, []>(
        `SELECT count(*) FILTER (WHERE status IN ('pending', 'retrying')) AS queued,
           count(*) FILTER (WHERE lease_owner IS NOT NULL) AS leased FROM deliveries`,
      )
      .get(),
  );
}

/** Deliveries that took more than one attempt. */
export function retriedCount(path: string): number | undefined {
  return readDatabase(
    path,
    (db) => db.query<{ n: number }, []>("SELECT count(*) AS n FROM deliveries WHERE attempts > 1").get()?.n,
  );
}
