// The store drivers the contract suite (test/store/contract/) runs against: SQLite always, on a temp
// file; PostgreSQL when HOOKD_TEST_POSTGRES_URL names a server, on a schema of its own per store.
// Each factory answers a fresh, empty, migrated store; the test closes it.
import { afterEach, beforeEach } from "bun:test";
import { join } from "node:path";
import type { Mode } from "../../src/domain/mode.ts";
import { type Clock, createManualClock, type ManualClock } from "../../src/runtime/clock.ts";
import { createIdGenerator, type IdGenerator } from "../../src/runtime/ids.ts";
import { cryptoRandom } from "../../src/runtime/random.ts";
import { createSqliteStore } from "../../src/store/sqlite/index.ts";
import type {
  AttemptResult,
  NewWebhook,
  Settlement,
  Store,
  StoredRow,
  TableName,
} from "../../src/store/store.ts";
import { createTestDatabase, skipWithoutPostgres } from "./postgres.ts";
import { tempDir } from "./temp.ts";

export interface StoreDeps {
  ids: IdGenerator;
  clock: Clock;
  /** The drivers' metrics hook: deliveries made final outside a settlement (delete, disable). */
  onFinal?: (status: "cancelled" | "failed", mode: Mode, count: number) => void;
}

export interface StoreDriver {
  name: "sqlite" | "postgres";
  create(deps: StoreDeps): Promise<Store>;
}

const sqlite: StoreDriver = {
  name: "sqlite",
  async create({ ids, onFinal }) {
    const path = join(tempDir("hookd-store-"), "hookd.db");
    return createSqliteStore({ path, synchronous: "normal", ids, ...(onFinal ? { onFinal } : {}) });
  },
};

const postgres: StoreDriver = {
  name: "postgres",
  async create({ ids, clock, onFinal }) {
    const url = await createTestDatabase();
    // Imported when first used, so the suite loads (and runs on SQLite) without the driver.
    const { createPostgresStore } = await import("../../src/store/postgres/index.ts");
    return createPostgresStore({
      url,
      poolSize: 4,
      statementTimeoutMs: 5000,
      ids,
      clock,
      ...(onFinal ? { onFinal } : {}),
    });
  },
};

export const STORE_DRIVERS: StoreDriver[] = skipWithoutPostgres("store contract")
  ? [sqlite]
  : [sqlite, postgres];

/** Where contract tests start the clock. */
export const T0 = Date.UTC(2026, 0, 1);

export interface StoreFixture {
  store: Store;
  clock: ManualClock;
  ids: IdGenerator;
  /** What the store told its onFinal hook, in order (tests drain it). */
  finals: { status: "cancelled" | "failed"; count: number }[];
}

/**
 * A fresh store of `driver` for each test of the enclosing describe, on a manual clock at `start`,
 * closed after the test. The fields are filled in by beforeEach.
 */
export function useStore(driver: StoreDriver, start = T0): StoreFixture {
  const fixture = {} as StoreFixture;
  beforeEach(async () => {
    fixture.clock = createManualClock(start);
    fixture.ids = createIdGenerator(fixture.clock, cryptoRandom);
    const finals: StoreFixture["finals"] = [];
    fixture.finals = finals;
    fixture.store = await driver.create({
      ids: fixture.ids,
      clock: fixture.clock,
      onFinal: (status, _mode, count) => finals.push({ status, count }),
    });
  });
  afterEach(async () => {
    await fixture.store.close();
  });
  return fixture;
}

/**
 * Takes what a store told its onFinal hook so far, leaving none. Reports of zero are dropped: they
 * change no metric (the daemon skips them), and whether a driver makes them is its own business.
 */
export function drainFinals<T extends { count: number }>(finals: T[]): T[] {
  return finals.splice(0).filter((f) => f.count > 0);
}

/** Every row of `table` in the shared format, paging through exportRows `pageSize` rows at a time. */
export async function allRows(store: Store, table: TableName, pageSize = 100): Promise<StoredRow[]> {
  const rows: StoredRow[] = [];
  let after: string | null = null;
  for (;;) {
    const page: { rows: StoredRow[]; last: string | null } = await store.exportRows(table, after, pageSize);
    // "Up to" a page: only an empty page (or no key to go on from) says there is nothing more.
    if (page.rows.length === 0 || page.last === null) return [...rows, ...page.rows];
    rows.push(...page.rows);
    after = page.last;
  }
}

/** A subscription to insert, everything but the id and creation time at a plain default. */
export function newWebhook(
  ids: IdGenerator,
  createdAt: number,
  overrides: Partial<NewWebhook> = {},
): NewWebhook {
  return {
    id: ids.next("wh"),
    tenantId: "t1",
    name: "w",
    description: null,
    url: "https://example.com/hooks",
    events: ["*"],
    accountIds: null,
    enabled: true,
    disabledReason: null,
    timeoutSeconds: 1,
    headers: {},
    metadata: {},
    maxInFlight: 8,
    secret: `whsec_${Buffer.alloc(32, 1).toString("base64")}`,
    createdAt,
    ...overrides,
  };
}

/** The result of one attempt on a claimed delivery, settled as `settlement`, by its owner unless told. */
export function attemptResult(
  ids: IdGenerator,
  delivery: { id: string; leaseOwner: string; webhook: { id: string } },
  settlement: Settlement,
  startedAt: number,
  leaseOwner = delivery.leaseOwner,
): AttemptResult {
  const ok = settlement.action === "succeed";
  return {
    deliveryId: delivery.id,
    leaseOwner,
    webhookId: delivery.webhook.id,
    signature: null,
    settlement,
    attempt: {
      id: ids.next("atm"),
      startedAt,
      durationMs: 1,
      responseStatusCode: ok ? 200 : 500,
      responseHeaders: {},
      responseBody: "",
      error: ok ? null : "http_status",
    },
  };
}
