// Ingest in the SQLite store: the write batcher (group commit with a savepoint per write), fan-out
// through the cached subscription index, and idempotency keys under concurrency, on real files.
import { Database } from "bun:sqlite";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { StorageUnavailableError } from "../../src/domain/errors.ts";
import { createManualClock, type ManualClock } from "../../src/runtime/clock.ts";
import { createIdGenerator, type IdGenerator } from "../../src/runtime/ids.ts";
import { cryptoRandom } from "../../src/runtime/random.ts";
import { createSqliteStore, type SqliteStore } from "../../src/store/sqlite/index.ts";
import { createWriteBatcher } from "../../src/store/sqlite/write-batch.ts";
import type { IngestRequest, NewWebhook } from "../../src/store/store.ts";
import { tempDir } from "../support/temp.ts";

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

describe("store ingest", () => {
  let clock: ManualClock;
  let ids: IdGenerator;
  let store: SqliteStore;

  beforeEach(() => {
    clock = createManualClock();
    ids = createIdGenerator(clock, cryptoRandom);
    store = createSqliteStore({ path: join(tempDir(), "hookd.db"), synchronous: "normal", ids });
  });
  afterEach(async () => {
    await store.close();
  });

  const webhook = (overrides: Partial<NewWebhook> = {}): Promise<{ id: string }> =>
    store.insertWebhook({
      id: ids.next("wh"),
      tenantId: "t1",
      name: "w",
      description: null,
      url: "https://example.com/hooks",
      events: ["*"],
      accountIds: null,
      enabled: true,
      disabledReason: null,
      timeoutSeconds: 10,
      headers: {},
      metadata: {},
      maxInFlight: 8,
      secret: `whsec_${Buffer.alloc(24, 1).toString("base64")}`,
      createdAt: clock.now(),
      ...overrides,
    });

  const event = (type = "a.b", accountId: string | null = null) => {
    const id = ids.next("evt");
    return { id, type, accountId, createdAt: clock.now(), payload: JSON.stringify({ id, type, data: {} }) };
  };

  const request = (overrides: Partial<IngestRequest> = {}): IngestRequest => ({
    tenantId: "t1",
    now: clock.now(),
    events: [event()],
    ...overrides,
  });

  const count = (table: string) =>
    store.db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${table}`).get()?.n;

  const key = (k: string, hash: string) => ({ key: k, requestHash: hash, expiresAt: clock.now() + 60_000 });

  test("fans out by pattern, account and tenant; the subscription cache follows changes", async () => {
    const invoices = await webhook({ events: ["invoice.*"] });
    const acct = await webhook({ accountIds: ["acct_1"] });
    await webhook({ tenantId: "t2" });
    await webhook({ enabled: false, disabledReason: "manual" });

    const first = await store.ingest(request({ events: [event("invoice.paid", "acct_1"), event("user.x")] }));
    expect(first.kind).toBe("accepted");
    if (first.kind !== "accepted") return;
    expect(first.events.map((e) => e.deliveriesCount)).toEqual([2, 0]);
    const targets = (eventId: string) =>
      store.db
        .query<{ webhook_id: string }, [string]>(
          "SELECT webhook_id FROM deliveries WHERE event_id = ? ORDER BY 1",
        )
        .all(eventId)
        .map((r) => r.webhook_id);
    expect(targets(first.events[0]!.id)).toEqual([invoices.id, acct.id].sort());

    // A subscription created after the cache was filled receives the next event.
    const late = await webhook({ events: ["user.*"] });
    const second = await store.ingest(request({ events: [event("user.x")] }));
    if (second.kind !== "accepted") throw new Error(second.kind);
    expect(targets(second.events[0]!.id)).toEqual([late.id]);
    // One disabled, one deleted: neither receives anything more.
    await store.updateWebhook(late.id, "t1", { enabled: false, disabledReason: "manual" }, clock.now());
    await store.deleteWebhook(invoices.id, "t1", clock.now());
    const third = await store.ingest(request({ events: [event("user.x"), event("invoice.paid")] }));
    if (third.kind !== "accepted") throw new Error(third.kind);
    expect(third.events.map((e) => e.deliveriesCount)).toEqual([0, 0]);
  });

  test("200 concurrent ingests are all accepted and all on disk", async () => {
    await webhook();
    const results = await Promise.all(Array.from({ length: 200 }, () => store.ingest(request())));
    expect(results.every((r) => r.kind === "accepted")).toBe(true);
    expect(count("events")).toBe(200);
    expect(count("deliveries")).toBe(200);
    const reopened = new Database(store.db.filename, { readonly: true });
    try {
      expect(reopened.query<{ n: number }, []>("SELECT count(*) AS n FROM events").get()?.n).toBe(200);
    } finally {
      reopened.close();
    }
  });

  test("concurrent ingests with one key: one accepted, the rest replay it", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => store.ingest(request({ idempotency: key("k", "h1") }))),
    );
    expect(results.filter((r) => r.kind === "accepted").length).toBe(1);
    expect(results.filter((r) => r.kind === "replayed").length).toBe(19);
    const eventIds = new Set(
      results.flatMap((r) => (r.kind === "conflict" ? [] : r.events.map((e) => e.id))),
    );
    expect(eventIds.size).toBe(1);
    expect(count("events")).toBe(1);
    expect((await store.ingest(request({ idempotency: key("k", "h2") }))).kind).toBe("conflict");
    expect(count("events")).toBe(1);
  });

  test("an expired key is free again, and the sweep removes expired keys only", async () => {
    await store.ingest(request({ idempotency: key("old", "h1") }));
    clock.advance(30_000);
    await store.ingest(request({ idempotency: key("new", "h1") }));
    clock.advance(30_000);
    const reused = await store.ingest(request({ idempotency: key("old", "h2") }));
    expect(reused.kind).toBe("accepted");
    clock.advance(30_001);
    expect(await store.sweepIdempotencyKeys(clock.now(), 100)).toBe(1);
    expect(
      store.db
        .query<{ key: string }, []>("SELECT key FROM idempotency_keys")
        .all()
        .map((r) => r.key),
    ).toEqual(["old"]);
  });

  // Known bug (src/store/sqlite/index.ts, ingest()): a per-event key conflict returns "conflict"
  // after the batch's earlier events were inserted, and the write batcher only rolls back a write
  // that throws, so those events are committed although the client got a 409. These two tests
  // are marked failing until it is fixed; then they pass and the marks must go.
  test("a batch with one id twice for different events stores none of them", async () => {
    const refused = await store.ingest(
      request({ events: [event(), event()], eventKeys: [key("dup", "h1"), key("dup", "h2")] }),
    );
    expect(refused.kind).toBe("conflict");
    expect([count("events"), count("idempotency_keys")]).toEqual([0, 0]);
  });

  test("a batch refused for a conflicting event id stores none of its events", async () => {
    await store.ingest(request({ eventKeys: [key("a", "h1")] }));
    expect(count("events")).toBe(1);
    const refused = await store.ingest(
      request({ events: [event(), event()], eventKeys: [null, key("a", "other")] }),
    );
    expect(refused.kind).toBe("conflict");
    expect(count("events")).toBe(1);
  });
});
