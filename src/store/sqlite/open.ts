// Opening the SQLite database: pragmas in a deliberate order (busy_timeout before WAL, so the switch
// to WAL waits for other connections instead of failing), then the embedded migrations. Once open,
// the busy timeout drops to a short slice: bun:sqlite waits for a lock synchronously, and a lock
// held by another process must not freeze the event loop (/healthz, reads, other requests) for
// seconds at a time. Ingest waits longer, asynchronously (write-batch.ts); other writes answer 503.
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseTooNewError } from "../../domain/errors.ts";
import { MIGRATIONS, type Migration } from "./migrations/index.ts";

export interface OpenOptions {
  path: string;
  synchronous: "full" | "normal";
  /** The busy_timeout once open: the longest one statement blocks waiting for a lock. */
  busyTimeoutMs?: number;
}

/** While opening and migrating, before anything is served, another process is waited for longer. */
const OPEN_BUSY_TIMEOUT_MS = 5000;
const BUSY_TIMEOUT_MS = 100;
const WAL_AUTOCHECKPOINT_PAGES = 10_000;

export function openDatabase(options: OpenOptions): Database {
  if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true });
  const db = new Database(options.path, { create: true, strict: true });
  try {
    db.run(`PRAGMA busy_timeout = ${OPEN_BUSY_TIMEOUT_MS}`);
    db.run("PRAGMA journal_mode = WAL");
    // NORMAL in both modes: crash-consistent in WAL mode. For "full", the store syncs the WAL
    // itself before acknowledging a write, off the event loop (wal-sync.ts).
    db.run("PRAGMA synchronous = NORMAL");
    db.run("PRAGMA foreign_keys = ON");
    // Claims and settlements rewrite the same few pages in every commit; a checkpoint copies each
    // distinct page once, on the event loop. Every 10 000 pages (40 MiB of log) instead of 1000
    // copies far fewer pages per commit; a crash leaves at most that much log to replay at start.
    db.run(`PRAGMA wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    db.run("PRAGMA temp_store = MEMORY");
    migrate(db, MIGRATIONS);
    refuseReadOnly(db, options.path);
    db.run(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? BUSY_TIMEOUT_MS)}`);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * SQLite opens a file it cannot write (a read-only filesystem or file) read-only without a word,
 * and that connection stays read-only after the filesystem is writable again: hookd would answer
 * 503 until restarted. Refusing to start says why at once, and a supervisor's restart recovers.
 * The probe writes inside a transaction that is rolled back.
 */
function refuseReadOnly(db: Database, path: string): void {
  db.run("BEGIN IMMEDIATE");
  try {
    db.run(
      "UPDATE schema_migrations SET applied_at = applied_at WHERE version = (SELECT max(version) FROM schema_migrations)",
    );
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== "string" || !code.startsWith("SQLITE_READONLY")) throw error;
    throw Object.assign(
      new Error(
        `the database ${path} is read-only (a read-only filesystem or file): ${(error as Error).message}`,
      ),
      { code },
    );
  } finally {
    db.run("ROLLBACK");
  }
}

/** Applies every migration newer than the database, each in its own transaction. */
export function migrate(db: Database, migrations: readonly Migration[]): number {
  db.run(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT",
  );
  const known = migrations.reduce((max, m) => Math.max(max, m.version), 0);
  const current = currentVersion(db);
  if (current > known) throw new DatabaseTooNewError(current, known);
  for (const migration of migrations) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      // The version row first: a second process migrating at the same time fails on the key.
      db.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", [
        migration.version,
        migration.name,
        Date.now(),
      ]);
      db.run(migration.sql);
    }).immediate();
  }
  return currentVersion(db);
}

export function currentVersion(db: Database): number {
  const row = db
    .query<{ version: number | null }, []>("SELECT max(version) AS version FROM schema_migrations")
    .get();
  return row?.version ?? 0;
}
