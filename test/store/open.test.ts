// Opening the database: pragmas, forward-only migrations, and refusing a database written by a
// newer hookd.
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { existsSync, fstatSync, fsync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseTooNewError } from "../../src/domain/errors.ts";
import { MIGRATIONS } from "../../src/store/sqlite/migrations/index.ts";
import { currentVersion, migrate, openDatabase } from "../../src/store/sqlite/open.ts";
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

// ---- the WAL syncer (wal-sync.ts) ----

/**
 * An fsync for createWalSync that records which file each call syncs (by inode, read from the
 * descriptor itself) and holds it until the test releases it, which then runs the real fsync.
 */
function heldFsync() {
  const calls: { ino: number; held: boolean; release(error?: NodeJS.ErrnoException): void }[] = [];
  const syncFile = (fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
    const call = {
      ino: fstatSync(fd).ino,
      held: true,
      release(error?: NodeJS.ErrnoException) {
        call.held = false;
        if (error) callback(error);
        else fsync(fd, callback);
      },
    };
    calls.push(call);
  };
  return {
    calls,
    fsync: syncFile,
    of: (ino: number) => calls.filter((c) => c.ino === ino),
    releaseHeld: () => {
      for (const call of calls.filter((c) => c.held)) call.release();
    },
  };
}

/** A database with a write in its WAL, held open as hookd holds it. */
function databaseWithWal() {
  const path = join(tempDir(), "hookd.db");
  const db = openDatabase({ path, synchronous: "normal" });
  db.run("INSERT INTO settings (key, value) VALUES ('acknowledged', 'yes')");
  return { path, db, walIno: statSync(`${path}-wal`).ino, dirIno: statSync(dirname(path)).ino };
}

/** Lets every callback already due run (fsync completions, promise reactions): no timer. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

test("a WAL sync fsyncs the WAL file itself and resolves only once that fsync has completed", async () => {
  const { path, db, walIno, dirIno } = databaseWithWal();
  const spy = heldFsync();
  const wal = createWalSync(path, { fsync: spy.fsync });
  try {
    // The directory holding the log is synced once, at creation.
    expect(spy.of(dirIno)).toHaveLength(1);
    spy.of(dirIno)[0]!.release();

    for (let round = 1; round <= 2; round++) {
      let synced = false;
      const done = wal.sync().then(() => {
        synced = true;
      });
      // Every sync asks the disk again: the round's fsync is issued on the WAL file at once...
      expect(spy.of(walIno)).toHaveLength(round);
      await turn();
      // ...and the caller is not told the write is durable before the disk has said so.
      expect(synced).toBe(false);
      spy.of(walIno)[round - 1]!.release();
      await done;
      expect(synced).toBe(true);
    }
    expect(spy.calls).toHaveLength(3);
  } finally {
    spy.releaseHeld();
    wal.close();
    db.close();
  }
});

test("concurrent callers share syncs, and one that arrives during a sync waits for the next", async () => {
  const { path, db, walIno } = databaseWithWal();
  const spy = heldFsync();
  const wal = createWalSync(path, { fsync: spy.fsync });
  try {
    let firstDone = false;
    const first = wal.sync().then(() => {
      firstDone = true;
    });
    // These may have committed after the running fsync began: it does not cover them.
    let laterDone = 0;
    const later = Array.from({ length: 200 }, () =>
      wal.sync().then(() => {
        laterDone++;
      }),
    );
    expect(spy.of(walIno)).toHaveLength(1);

    spy.of(walIno)[0]!.release();
    await first;
    expect(firstDone).toBe(true);
    await turn();
    // One more fsync for all 200 of them, and none is answered before it completes.
    expect(spy.of(walIno)).toHaveLength(2);
    expect(laterDone).toBe(0);

    spy.of(walIno)[1]!.release();
    await Promise.all(later);
    expect(laterDone).toBe(200);
    expect(spy.of(walIno)).toHaveLength(2);
  } finally {
    spy.releaseHeld();
    wal.close();
    db.close();
  }
});

test("a failed fsync fails the sync; the next sync asks the disk again", async () => {
  const { path, db, walIno } = databaseWithWal();
  const spy = heldFsync();
  const wal = createWalSync(path, { fsync: spy.fsync });
  try {
    const failing = wal.sync();
    spy.of(walIno)[0]!.release(Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" }));
    await expect(failing).rejects.toThrow("EIO");
    const retried = wal.sync();
    expect(spy.of(walIno)).toHaveLength(2);
    spy.of(walIno)[1]!.release();
    await retried;
  } finally {
    spy.releaseHeld();
    wal.close();
    db.close();
  }
});

test("a WAL not created yet is created, and it is the file SQLite then writes and hookd syncs", async () => {
  const path = join(tempDir(), "hookd.db");
  openDatabase({ path, synchronous: "full" }).close(); // closing removes the -wal file
  expect(existsSync(`${path}-wal`)).toBe(false);
  const spy = heldFsync();
  const wal = createWalSync(path, { fsync: spy.fsync });
  const db = openDatabase({ path, synchronous: "normal" });
  try {
    db.run("INSERT INTO settings (key, value) VALUES ('acknowledged', 'yes')");
    const log = statSync(`${path}-wal`);
    expect(log.size).toBeGreaterThan(0);
    const synced = wal.sync();
    expect(spy.of(log.ino)).toHaveLength(1);
    spy.releaseHeld();
    await synced;
  } finally {
    spy.releaseHeld();
    wal.close();
    db.close();
  }
});
