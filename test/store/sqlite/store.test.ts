// What only the SQLite store has, and the contract suite cannot see: the file another connection
// opens. (The contract suite counts rows through exportRows, on the store's own connection.)
import { Database } from "bun:sqlite";
import { afterEach, beforeEach, expect, test } from "bun:test";
import { join } from "node:path";
import { createManualClock, type ManualClock } from "../../../src/runtime/clock.ts";
import { createIdGenerator, type IdGenerator } from "../../../src/runtime/ids.ts";
import { cryptoRandom } from "../../../src/runtime/random.ts";
import { createSqliteStore, type SqliteStore } from "../../../src/store/sqlite/index.ts";
import type { NewWebhook } from "../../../src/store/store.ts";
import { tempDir } from "../../support/temp.ts";

let clock: ManualClock;
let ids: IdGenerator;
let store: SqliteStore;

beforeEach(() => {
  clock = createManualClock();
  ids = createIdGenerator(clock, cryptoRandom);
  store = createSqliteStore({
    path: join(tempDir(), "hookd.db"),
    synchronous: "normal",
    ids,
  });
});
afterEach(async () => {
  await store.close();
});

const newWebhook = (events: string[]): NewWebhook => ({
  id: ids.next("wh"),
  tenantId: "t1",
  name: "w",
  description: null,
  url: "https://example.com/hooks",
  events,
  accountIds: null,
  enabled: true,
  disabledReason: null,
  timeoutSeconds: 1,
  headers: {},
  metadata: {},
  maxInFlight: 8,
  secret: `whsec_${Buffer.alloc(32, 1).toString("base64")}`,
  createdAt: clock.now(),
});

const publish = (n: number) =>
  store.ingest({
    tenantId: "t1",
    now: clock.now(),
    events: Array.from({ length: n }, () => ({
      id: ids.next("evt"),
      type: "a.b",
      accountId: null,
      payload: "{}",
      createdAt: clock.now(),
    })),
  });

test("200 concurrent ingests are on disk: another connection to the file sees every one", async () => {
  await store.insertWebhook(newWebhook(["*"]));
  const results = await Promise.all(Array.from({ length: 200 }, () => publish(1)));
  expect(results.every((r) => r.kind === "accepted")).toBe(true);
  const reopened = new Database(store.db.filename, { readonly: true });
  try {
    expect(reopened.query<{ n: number }, []>("SELECT count(*) AS n FROM events").get()?.n).toBe(200);
    expect(reopened.query<{ n: number }, []>("SELECT count(*) AS n FROM deliveries").get()?.n).toBe(200);
  } finally {
    reopened.close();
  }
});
