// The SQLite write batcher (group commit with a savepoint per write): every promise settles after
// COMMIT, a failing write is undone alone, batches are split, and a locked database fails a batch
// as unavailable. SQLite's own: PostgreSQL has no batcher.
import { Database } from "bun:sqlite";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { StorageUnavailableError } from "../../../src/domain/errors.ts";
import { createWriteBatcher } from "../../../src/store/sqlite/write-batch.ts";
import { tempDir } from "../../support/temp.ts";

describe("write batcher", () => {
  let db: Database;
  let path: string;
  let begins: number;
  /** The database as the batcher sees it, counting the transactions it opens. */
  let counted: Database;

  beforeEach(() => {
    path = join(tempDir(), "batch.db");
    db = new Database(path, { create: true, strict: true });
    db.run("PRAGMA journal_mode = WAL");
    db.run("CREATE TABLE t (n INTEGER PRIMARY KEY)");
    begins = 0;
    counted = new Proxy(db, {
      get(target, key) {
        if (key === "run")
          return (sql: string, ...rest: unknown[]) => {
            if (sql === "BEGIN IMMEDIATE") begins++;
            return (target.run as (...args: unknown[]) => unknown).call(target, sql, ...rest);
          };
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  });
  afterEach(() => {
    db.close();
  });

  const insert = (n: number) => () => db.query("INSERT INTO t (n) VALUES (?)").run(n).changes;
  const count = (conn: Database = db) =>
    conn.query<{ n: number }, []>("SELECT count(*) AS n FROM t").get()?.n;

  test("writes queued together share one transaction and each resolves after COMMIT", async () => {
    const batcher = createWriteBatcher(counted);
    const other = new Database(path, { readonly: true });
    try {
      const seen: number[] = [];
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          batcher.write(insert(i)).then(() => {
            // Another connection sees every row of the batch: the promise settled after COMMIT.
            seen.push(count(other) ?? -1);
          }),
        ),
      );
      expect(begins).toBe(1);
      expect(seen).toEqual(Array(50).fill(50));
    } finally {
      other.close();
    }
  });

  test("a failing write is undone alone; the others commit", async () => {
    const batcher = createWriteBatcher(counted);
    const results = await Promise.allSettled([
      batcher.write(insert(1)),
      batcher.write(() => {
        db.query("INSERT INTO t (n) VALUES (2)").run();
        throw new Error("write two fails after its insert");
      }),
      batcher.write(insert(1)), // primary key clash
      batcher.write(insert(3)),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe("write two fails after its insert");
    expect(begins).toBe(1);
    expect(db.query<{ n: number }, []>("SELECT n FROM t ORDER BY n").all()).toEqual([{ n: 1 }, { n: 3 }]);
    expect(db.inTransaction).toBe(false);
  });

  test("more than maxBatch writes are split into several transactions, none lost", async () => {
    const batcher = createWriteBatcher(counted, { maxBatch: 100 });
    const results = await Promise.all(Array.from({ length: 250 }, (_, i) => batcher.write(insert(i))));
    expect(results).toEqual(Array(250).fill(1));
    expect(begins).toBe(3);
    expect(count()).toBe(250);
  });

  test("when the database is locked every write of the batch fails as unavailable, and later ones work", async () => {
    db.run("PRAGMA busy_timeout = 0");
    const locker = new Database(path);
    locker.run("BEGIN IMMEDIATE");
    const batcher = createWriteBatcher(counted);
    const locked = await Promise.allSettled([batcher.write(insert(1)), batcher.write(insert(2))]);
    locker.run("ROLLBACK");
    locker.close();
    for (const result of locked) {
      expect(result.status).toBe("rejected");
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(StorageUnavailableError);
    }
    expect(db.inTransaction).toBe(false);
    expect(await batcher.write(insert(3))).toBe(1);
    expect(count()).toBe(1);
  });
});
