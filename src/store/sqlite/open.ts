// Opening the SQLite database: pragmas in a deliberate order (busy_timeout before WAL, so the switch
// to WAL waits for other connections instead of failing), then the embedded migrations.
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { MIGRATIONS, type Migration } from "./migrations/index.ts";

export interface OpenOptions {
  path: string;
  synchronous: "full" | "normal";
  busyTimeoutMs?: number;
}

export class DatabaseTooNewError extends Error {
  constructor(found: number, known: number) {
    super(
      `the database is at schema version ${found}, but this hookd knows versions up to ${known}: ` +
        "it was written by a newer hookd; run that version, or restore a backup",
    );
  }
}

export function openDatabase(options: OpenOptions): Database {
  if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true });
  const db = new Database(options.path, { create: true, strict: true });
  try {
    db.run(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
    db.run("PRAGMA journal_mode = WAL");
    db.run(`PRAGMA synchronous = ${options.synchronous === "full" ? "FULL" : "NORMAL"}`);
    db.run("PRAGMA foreign_keys = ON");
    db.run("PRAGMA temp_store = MEMORY");
    migrate(db, MIGRATIONS);
    return db;
  } catch (error) {
    db.close();
    throw error;
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
