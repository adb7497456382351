// Opening the database: pragmas, forward-only migrations, and refusing a database written by a
// newer hookd.
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { join } from "node:path";
import { MIGRATIONS } from "../../src/store/sqlite/migrations/index.ts";
import { currentVersion, DatabaseTooNewError, migrate, openDatabase } from "../../src/store/sqlite/open.ts";
import { createWalSync } from "../../src/store/sqlite/wal-sync.ts";
import { tempDir } from "../support/temp.ts";

const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;

test("a new database gets WAL, synchronous=NORMAL (the store syncs the WAL itself), a busy timeout and every migration", () => {
  const path = join(tempDir(), "nested", "dir", "hookd.db");
  for (const [level, expected] of [
    ["full", 1],
    ["normal", 1],
  ] as const) {
    const db = openDatabase({ path, synchronous: level, busyTimeoutMs: 1234 });
    try {
      expect(db.query<{ journal_mode: string }, []>("PRAGMA journal_mode").get()?.journal_mode).toBe("wal");
      expect(db.query<{ synchronous: number }, []>("PRAGMA synchronous").get()?.synchronous).toBe(expected);
      expect(db.query<{ timeout: number }, []>("PRAGMA busy_timeout").get()?.timeout).toBe(1234);
      expect(db.query<{ foreign_keys: number }, []>("PRAGMA foreign_keys").get()?.foreign_keys).toBe(1);
      expect(currentVersion(db)).toBe(latest);
      const versions = db
        .query<{ version: number }, []>("SELECT version FROM schema_migrations ORDER BY version")
        .all();
      expect(versions.map((v) => v.version)).toEqual(MIGRATIONS.map((m) => m.version));
    } finally {
      db.close();
    }
  }
});

test("migrations run forward only: an old database is brought up to date, a current one is left alone", () => {
  const path = join(tempDir(), "hookd.db");
  const db = new Database(path, { create: true, strict: true });
  expect(migrate(db, MIGRATIONS.slice(0, 1))).toBe(1);
  db.run("INSERT INTO settings (key, value) VALUES ('kept', 'yes')");
  expect(migrate(db, MIGRATIONS)).toBe(latest);
  expect(migrate(db, MIGRATIONS)).toBe(latest);
  expect(db.query<{ value: string }, []>("SELECT value FROM settings WHERE key = 'kept'").get()?.value).toBe(
    "yes",
  );
  expect(db.query<{ n: number }, []>("SELECT count(*) AS n FROM schema_migrations").get()?.n).toBe(
    MIGRATIONS.length,
  );
  db.close();
});

test("a failing migration leaves no trace: its version row and its changes roll back together", () => {
  const db = new Database(":memory:", { strict: true });
  const broken = [
    ...MIGRATIONS,
    { version: latest + 1, name: "broken", sql: "CREATE TABLE x (a); SELECT * FROM nope;" },
  ];
  expect(() => migrate(db, broken)).toThrow();
  expect(currentVersion(db)).toBe(latest);
  expect(db.query("SELECT name FROM sqlite_master WHERE name = 'x'").get()).toBeNull();
  db.close();
});

test("a database written by a newer hookd is refused, untouched", () => {
  const path = join(tempDir(), "hookd.db");
  openDatabase({ path, synchronous: "normal" }).close();
  const writer = new Database(path, { strict: true });
  writer.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)", [
    latest + 1,
  ]);
  writer.close();
  expect(() => openDatabase({ path, synchronous: "normal" })).toThrow(DatabaseTooNewError);
  const check = new Database(path, { readonly: true });
  expect(currentVersion(check)).toBe(latest + 1);
  check.close();
});

test("the WAL syncer shares syncs between concurrent callers and copes with a log not created yet", async () => {
  const path = join(tempDir(), "hookd.db");
  openDatabase({ path, synchronous: "full" }).close(); // closing removes the -wal file
  const wal = createWalSync(path);
  try {
    const started = performance.now();
    await Promise.all(Array.from({ length: 200 }, () => wal.sync()));
    expect(performance.now() - started).toBeLessThan(10_000);
    await wal.sync();
  } finally {
    wal.close();
  }
});
