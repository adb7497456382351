// PostgreSQL only: the store keeps the planner's statistics of its hot tables (analyze.ts). A queue
// that grew from empty in seconds has none, and the claim's plan then sorts every due delivery of a
// subscription for the few it takes. Autovacuum is turned off for these tables here, as it is on
// servers where it is off or behind: what analyzes them is the store.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { createManualClock } from "../../src/runtime/clock.ts";
import { createIdGenerator } from "../../src/runtime/ids.ts";
import { cryptoRandom } from "../../src/runtime/random.ts";
import type { Store } from "../../src/store/store.ts";
import { createTestDatabase, skipWithoutPostgres } from "../support/postgres.ts";
import { newWebhook, T0 } from "../support/stores.ts";
import { waitFor } from "../support/wait-for.ts";

const SKIP = skipWithoutPostgres("PostgreSQL planner statistics");

describe.skipIf(SKIP)("postgres: the hot tables' statistics", () => {
  const clock = createManualClock(T0);
  const ids = createIdGenerator(clock, cryptoRandom);
  let url = "";
  let sql: SQL;
  let store: Store | null = null;
  const open = async () => {
    const { createPostgresStore } = await import("../../src/store/postgres/index.ts");
    return createPostgresStore({ url, poolSize: 2, statementTimeoutMs: 10_000, ids, clock });
  };
  const analyzed = async (table: string) => {
    const [row] = (await sql.unsafe(
      `SELECT s.last_analyze IS NOT NULL AS analyzed, c.reltuples::int AS planned
       FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
       WHERE s.schemaname = $1 AND s.relname = $2`,
      [new URL(url).searchParams.get("search_path"), table],
    )) as { analyzed: boolean; planned: number }[];
    return row;
  };
  const analyzedSoon = (table: string) =>
    waitFor(
      async () => {
        const row = await analyzed(table);
        return row?.analyzed ? row : undefined;
      },
      { timeoutMs: 15_000, what: `${table} analyzed` },
    );
  const publish = (n: number) =>
    store!.ingest({
      tenantId: "t1",
      events: Array.from({ length: n }, () => ({
        id: ids.next("evt"),
        type: "order.created",
        accountId: null,
        payload: "{}",
        createdAt: clock.now(),
      })),
      now: clock.now(),
    });

  beforeAll(async () => {
    if (SKIP) return;
    url = await createTestDatabase();
    store = await open();
    sql = new SQL({ url, max: 1 });
    for (const table of ["deliveries", "events", "attempts"])
      await sql.unsafe(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
  });

  afterAll(async () => {
    await store?.close();
    await sql?.close();
  });

  test("a few writes leave the statistics alone; a burst that outgrows them has them refreshed", async () => {
    await store!.insertWebhook(newWebhook(ids, clock.now(), { maxInFlight: 8 }));
    expect((await publish(100)).kind).toBe("accepted");
    expect(await analyzed("deliveries")).toEqual({ analyzed: false, planned: -1 });
    // A burst, then quiet: the store counts its own writes (the server's counters lag behind).
    for (let i = 0; i < 3; i++) expect((await publish(500)).kind).toBe("accepted");
    const after = await analyzedSoon("deliveries");
    expect(after.planned).toBe(1600);
    // Events reached a thousand first (the deliveries' count joined at the next write).
    expect((await analyzed("events"))?.planned).toBeGreaterThanOrEqual(1100);
  }, 30_000);

  test("at start, a table loaded without statistics (a copy, a bulk load) is analyzed", async () => {
    await store!.close();
    store = null;
    await sql.unsafe(
      `INSERT INTO attempts (id, delivery_id, started_at, duration_ms, response_status_code)
       SELECT 'atm_' || g, 'dlv_x', 0, 1, 200 FROM generate_series(1, 3000) g`,
    );
    // A session reports its counts to the server's statistics when it ends (as a copy's does).
    await sql.close();
    sql = new SQL({ url, max: 1 });
    expect((await analyzed("attempts"))?.analyzed).toBe(false);
    store = await open();
    const row = await analyzedSoon("attempts");
    expect(row.planned).toBe(3000);
  }, 30_000);
});
