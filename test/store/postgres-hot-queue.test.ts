// PostgreSQL only: a claim's lease is a HOT update (migration 8, docs/postgres.md). A lease writes
// only columns no index covers, so PostgreSQL can keep the new version on the row's page without an
// index entry — if the page has room. Freshly ingested pages have no dead versions to prune, so the
// room has to come from the table's fillfactor; at 80 a quarter of the leases were HOT, and the
// rest wrote an entry in each of the seven indexes of `deliveries`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { createManualClock } from "../../src/runtime/clock.ts";
import { createIdGenerator } from "../../src/runtime/ids.ts";
import { cryptoRandom } from "../../src/runtime/random.ts";
import type { Store } from "../../src/store/store.ts";
import { createTestDatabase, skipWithoutPostgres } from "../support/postgres.ts";
import { newWebhook, T0 } from "../support/stores.ts";
import { waitFor } from "../support/wait-for.ts";

const SKIP = skipWithoutPostgres("PostgreSQL hot queue");
const EVENTS = 400;

describe.skipIf(SKIP)("postgres: the queue's pages", () => {
  const clock = createManualClock(T0);
  const ids = createIdGenerator(clock, cryptoRandom);
  let url = "";
  let store: Store | null = null;

  beforeAll(async () => {
    if (SKIP) return;
    url = await createTestDatabase();
    const { createPostgresStore } = await import("../../src/store/postgres/index.ts");
    store = await createPostgresStore({ url, poolSize: 2, statementTimeoutMs: 10_000, ids, clock });
  });

  afterAll(async () => {
    await store?.close();
  });

  test("leasing freshly ingested deliveries writes no index entry (HOT updates)", async () => {
    const s = store!;
    await s.insertWebhook(newWebhook(ids, clock.now(), { maxInFlight: EVENTS }));
    const result = await s.ingest({
      tenantId: "t1",
      events: Array.from({ length: EVENTS }, () => ({
        id: ids.next("evt"),
        type: "order.created",
        accountId: null,
        payload: JSON.stringify({ padding: "x".repeat(200) }),
        createdAt: clock.now(),
      })),
      now: clock.now(),
    });
    expect(result.kind).toBe("accepted");
    const claimed = await s.claimDue({
      now: clock.now(),
      owner: "o",
      leaseMs: 60_000,
      limit: EVENTS,
      retryLimit: EVENTS,
    });
    expect(claimed).toHaveLength(EVENTS);
    // A backend reports its table statistics when it exits: closing the store's connections
    // makes the counts of its statements visible to another session.
    await s.close();
    store = null;
    const schema = new URL(url).searchParams.get("search_path");
    const sql = new SQL({ url, max: 1 });
    try {
      const counts = await waitFor(
        async () => {
          const [row] = (await sql.unsafe(
            `SELECT n_tup_upd::int AS updated, n_tup_hot_upd::int AS hot FROM pg_stat_user_tables
             WHERE schemaname = $1 AND relname = 'deliveries'`,
            [schema],
          )) as { updated: number; hot: number }[];
          return row && row.updated >= EVENTS ? row : undefined;
        },
        { timeoutMs: 15_000, what: "the deliveries' update counts" },
      );
      expect(counts.updated).toBe(EVENTS);
      // Every lease but a few at page ends (at fillfactor 80: about a quarter of them).
      expect(counts.hot).toBeGreaterThanOrEqual(EVENTS * 0.9);
    } finally {
      await sql.close();
    }
  });
});
