// `hookd storage copy` (SPEC §6) with the compiled dist/hookd on real files and a real PostgreSQL:
// a SQLite hookd serves traffic (webhooks, one with a rotated secret in its grace period, deliveries
// that succeeded, failed and are still retrying, attempts, an idempotency key) and stops; its file is
// copied; a PostgreSQL hookd on the copy lists the same history, delivers the queued deliveries
// signed with the same secrets and replays the idempotency key. Then the refusals (a non-empty
// target, a running instance, a database that is not hookd's) change nothing, and a copy that fails
// midway (the target refuses writes, through a trigger) can be run again and succeeds. What is
// refused before a database is reached (arguments, a missing or non-SQLite file, an unreachable
// target, whose password is never printed) runs without PostgreSQL too.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { systemClock } from "../../src/runtime/clock.ts";
import { createIdGenerator } from "../../src/runtime/ids.ts";
import { cryptoRandom } from "../../src/runtime/random.ts";
import { createSqliteStore } from "../../src/store/sqlite/index.ts";
import { TABLES } from "../../src/store/store.ts";
import { TEST_DRIVER } from "../support/driver.ts";
import { ensureBinary, killStarted, startHookd } from "../support/hookd-process.ts";
import { createTestDatabase, skipWithoutPostgres } from "../support/postgres.ts";
import { type Receiver, startReceiver } from "../support/receiver.ts";
import { tempDir } from "../support/temp.ts";
import { waitFor } from "../support/wait-for.ts";
import {
  childApi,
  copy,
  copyArgs,
  dumpPostgres,
  dumpSqlite,
  execute,
  expectSameRows,
  hookdRows,
  type Json,
  migratedDatabase,
  openPostgres,
  REFUSE_FUNCTION,
  type Run,
  rawDatabase,
  type Snapshot,
  writeConfig,
} from "./storage-copy-helpers.ts";

// The test names both drivers itself: the PostgreSQL pass of scripts/test.ts would only repeat it.
const skip = skipWithoutPostgres("storage copy") || TEST_DRIVER === "postgres";
const IDEMPOTENCY_KEY = "copy-test-key-1";
const IDEMPOTENT_BODY = { type: "invoice.paid", data: { invoice: "in_1", amount: 4200 } };

/** A SQLite hookd that served traffic and stopped: its file, what its API showed, its secrets. */
interface Source {
  dbPath: string;
  before: Snapshot;
  ok: Receiver;
  flaky: Receiver;
  gone: Receiver;
  /** The rotated webhook (its deliveries are retrying): the secret before rotation and the current one. */
  rotated: { id: string; oldSecret: string; newSecret: string };
  firstEvent: Json;
  adminKey: string;
  /** A portal session's token, minted before the copy. */
  portalToken: string;
}

let source: Source | null = null;
const src = () => source as Source;

async function serveSqliteHookd(): Promise<Source> {
  const ok = await startReceiver();
  const flaky = await startReceiver();
  flaky.always("*", { status: 500, body: "not yet" });
  const gone = await startReceiver();
  gone.always("*", { status: 410, body: "gone" });

  const dir = tempDir("hookd-copy-src-");
  // Retries a few seconds apart, so the retrying deliveries are still queued when hookd stops.
  const dbPath = join(dir, "hookd.db");
  const config = writeConfig(dir, { sqlitePath: dbPath }, ["5s", "5s", "5s"]);
  const hookd = startHookd("binary", ["serve", "--config", config], { cwd: dir });
  const url = await hookd.listening();
  // No key is configured: hookd makes one at its first start and keeps its hash in the settings.
  const adminKey = (
    await waitFor(() => hookd.stderr().match(/hk_[A-Za-z0-9_-]{43}/), { what: "the first-start admin key" })
  )[0];
  const api = childApi(url, adminKey);

  await api.createWebhook({
    name: "alpha",
    url: ok.url("/a"),
    events: ["invoice.*"],
    description: "paid invoices ✓",
    metadata: { team: "billing" },
    headers: { "X-Team": "billing" },
    // The delivery controls are columns too: a filter the invoice below matches, FIFO, a rate limit.
    filter: { "data.invoice": { $startsWith: "in_" }, $not: { "data.test": true } },
    ordering: "fifo",
    rate_limit: 50,
  });
  const rotating = await api.createWebhook({
    name: "beta",
    url: flaky.url("/b"),
    events: ["order.*", "invoice.paid"],
  });
  const rotation = await api.call("POST", `/v1/webhooks/${rotating.id}/rotate-secret`, {
    grace_period_seconds: 3600,
  });
  expect(rotation.status).toBe(200);
  await api.createWebhook({
    name: "gamma",
    url: gone.url("/c"),
    events: ["refund.*"],
    tenant_id: "t2",
    signature_scheme: "v1a",
  });
  const disabled = await api.createWebhook({ name: "delta", url: ok.url("/d"), events: ["invoice.*"] });
  expect((await api.call("PATCH", `/v1/webhooks/${disabled.id}`, { enabled: false })).status).toBe(200);

  const first = await api.publish(IDEMPOTENT_BODY, { "idempotency-key": IDEMPOTENCY_KEY });
  expect(first.status).toBe(202);
  expect((await api.publish({ type: "order.created", data: { order: "o_1" } })).status).toBe(202);
  expect(
    (await api.publish({ type: "refund.issued", data: { refund: "r_1" }, tenant_id: "t2" })).status,
  ).toBe(202);
  expect((await api.publish({ type: "user.signed_up", data: { user: "u_1" } })).status).toBe(202);

  await ok.waitForRequests(1, "/a");
  await gone.waitForRequests(1, "/c");
  await flaky.waitForRequests(2, "/b");
  // Every first attempt settled: a success, a failure (410) and two retries.
  await waitFor(
    async () => {
      const statuses = (await api.list("/v1/deliveries")).map((d: Json) => d.status).sort();
      return JSON.stringify(statuses) === JSON.stringify(["failed", "retrying", "retrying", "success"]);
    },
    { timeoutMs: 10_000, what: "the SQLite hookd's deliveries to settle" },
  );
  // A portal session (its hash and expiry are copied; its token works on the copy).
  const portal = await api.call("POST", "/v1/portal-sessions", { tenant_id: "t2", ttl_seconds: 86_400 });
  expect(portal.status).toBe(201);
  const before = await api.snapshot();
  expect(await hookd.stop("SIGTERM")).toBe(0);
  return {
    dbPath,
    before,
    ok,
    flaky,
    gone,
    rotated: { id: rotating.id, oldSecret: rotating.secret, newSecret: rotation.body.secret },
    firstEvent: first.body,
    adminKey,
    portalToken: portal.body.token as string,
  };
}

describe.skipIf(skip)("hookd storage copy", () => {
  beforeAll(async () => {
    await ensureBinary();
    source = await serveSqliteHookd();
  }, 180_000);
  afterEach(killStarted);
  afterAll(async () => {
    await killStarted();
    for (const receiver of [source?.ok, source?.flaky, source?.gone]) await receiver?.stop();
  });

  test("a PostgreSQL hookd on the copy shows the same history, delivers the queue with the same secrets and replays idempotency keys", async () => {
    const { before, flaky, ok, rotated } = src();
    const target = await createTestDatabase();
    const run = await copy(src().dbPath, target);
    expect(run.stderr).toContain("storage copy");
    expect(run.code).toBe(0);
    // Progress per table, copied so far / total.
    for (const table of TABLES) expect(run.stderr).toMatch(new RegExp(`^  ${table}: (\\d+)/\\1$`, "m"));
    const rows = await dumpSqlite(src().dbPath);
    for (const table of TABLES)
      expect(run.stderr).toContain(`\n  ${table}: ${rows[table].length}/${rows[table].length}\n`);
    // Four subscriptions, one rotated; four events published and the webhook.disabled event of the
    // subscription that answered 410.
    expect([rows.webhooks.length, rows.webhook_previous_secrets.length, rows.events.length]).toEqual([
      4, 1, 5,
    ]);
    // The delivery controls are in the rows compared below, not left at their defaults.
    const controls = rows.webhooks
      .map((w) => [w.name, w.ordering, w.rate_limit, w.signature_scheme, w.filter === null ? null : "filter"])
      .sort();
    expect(controls).toEqual([
      ["alpha", "fifo", 50, "v1", "filter"],
      ["beta", "unordered", null, "v1", null],
      ["delta", "unordered", null, "v1", null],
      ["gamma", "unordered", null, "v1a", null],
    ]);
    expect(run.stderr).toMatch(/^copied \d+ rows/m);
    expectPasswordHidden(run, target);
    expectSameRows(await dumpPostgres(target), rows);

    // The subscriber is healthy now; hookd on PostgreSQL takes over the queue.
    flaky.always("*", { status: 200, body: "thanks" });
    const flakyBefore = flaky.received("/b").length;
    const okBefore = ok.received().length;
    const dir = tempDir("hookd-copy-pg-");
    const config = writeConfig(dir, { databaseUrl: target }, ["100ms", "200ms", "500ms"]);
    const hookd = startHookd("binary", ["serve", "--config", config], { cwd: dir });
    const url = await hookd.listening();
    const api = childApi(url, src().adminKey);
    // The first-start admin key came along in the settings: the same key, and no new one.
    await waitFor(() => hookd.stderr().includes("using the admin key created on first start"), {
      what: "hookd to use the copied admin key",
    });
    expect(hookd.stderr()).not.toMatch(/hk_/);
    // The portal session came along: its token signs in to its tenant, t2.
    const portalView = await childApi(url, src().portalToken).call("GET", "/v1/webhooks");
    expect(portalView.status).toBe(200);
    expect(portalView.body.data.map((w: Json) => w.tenant_id)).toEqual(["t2"]);
    const delivered = (await flaky.waitForRequests(flakyBefore + 2, "/b", 20_000)).slice(flakyBefore);

    const queued = before.deliveries.filter((d: Json) => d.status === "retrying");
    expect(queued.map((d: Json) => d.webhook_id)).toEqual([rotated.id, rotated.id]);
    await waitFor(
      async () => {
        const now = await api.list("/v1/deliveries");
        return queued.every((q: Json) => now.find((d: Json) => d.id === q.id)?.status === "success");
      },
      { timeoutMs: 10_000, what: "the copied queue to be delivered" },
    );

    // Signed with the rotated secret and, within its grace period, the one before it.
    for (const request of delivered) {
      expect(request.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
      for (const secret of [rotated.newSecret, rotated.oldSecret])
        expect(() => new Webhook(secret).verify(request.body, request.headers)).not.toThrow();
      const other = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
      expect(() => new Webhook(other).verify(request.body, request.headers)).toThrow();
    }
    expect(delivered.map((r) => r.body).sort()).toEqual(queued.map((d: Json) => d.payload).sort());

    // The same webhooks, events, deliveries and attempts; the queued ones went on where they were.
    const after = await api.snapshot();
    expect(after.webhooks).toEqual(before.webhooks);
    expect(after.deliveries.map((d: Json) => d.id)).toEqual(before.deliveries.map((d: Json) => d.id));
    for (const old of before.deliveries) {
      const now = after.deliveries.find((d: Json) => d.id === old.id);
      const history = after.attempts[old.id] as Json[];
      if (old.status === "retrying") {
        const kept = ["id", "tenant_id", "event_id", "webhook_id", "event_type", "created_at", "payload"];
        for (const field of kept) expect(now[field]).toEqual(old[field]);
        expect(now).toMatchObject({ status: "success", response_status_code: 200, next_retry_at: null });
        expect(now.attempts).toBeGreaterThan(old.attempts);
        expect(history.slice(0, before.attempts[old.id]?.length)).toEqual(before.attempts[old.id] as Json[]);
        expect(history.at(-1)).toMatchObject({
          response_status_code: 200,
          response_body: "thanks",
          error: null,
        });
      } else {
        expect(now).toEqual(old);
        expect(history).toEqual(before.attempts[old.id] as Json[]);
      }
    }
    const queuedEvents = new Set(queued.map((d: Json) => d.event_id));
    expect(after.events.map((e: Json) => e.id)).toEqual(before.events.map((e: Json) => e.id));
    for (const old of before.events) {
      const now = after.events.find((e: Json) => e.id === old.id);
      if (!queuedEvents.has(old.id)) expect(now).toEqual(old);
      else {
        const { status: _s, deliveries: _d, ...rest } = old;
        expect(now).toMatchObject(rest);
        expect(now.status).toBe("delivered");
      }
    }
    // Nothing already delivered was sent again.
    expect(ok.received().length).toBe(okBefore);

    // The idempotency key replays the original event; another body under it is a conflict.
    const replay = await api.publish(IDEMPOTENT_BODY, { "idempotency-key": IDEMPOTENCY_KEY });
    expect(replay.status).toBe(202);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body).toEqual(src().firstEvent);
    const conflict = await api.publish(
      { ...IDEMPOTENT_BODY, data: { invoice: "in_2" } },
      { "idempotency-key": IDEMPOTENCY_KEY },
    );
    expect(conflict.status).toBe(409);

    // No copy into a database a hookd is running on (its own heartbeats aside, nothing changes).
    const state = hookdRows(await rawDatabase(target));
    const busy = await copy(src().dbPath, target);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain("1 hookd instance(s) are running on the target; stop them first");
    expect(hookdRows(await rawDatabase(target))).toEqual(state);
    expect(await hookd.stop("SIGTERM")).toBe(0);
  }, 120_000);

  test("a second copy into the (now non-empty) target is refused, names what it found, and changes nothing", async () => {
    const target = await createTestDatabase();
    expect((await copy(src().dbPath, target)).code).toBe(0);
    const copied = await rawDatabase(target);
    const again = await copy(src().dbPath, target);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(
      "webhooks, webhook_previous_secrets, events, deliveries, attempts, idempotency_keys, portal_sessions, webhook_stats)",
    );
    expect(again.stderr).toContain("already holds data (");
    expect(again.stderr).toContain("Nothing was changed");
    expect(await rawDatabase(target)).toEqual(copied);

    // A database a hookd already started on (its first-start admin key) is refused the same way.
    const used = await migratedDatabase();
    const store = await openPostgres(used);
    await store.insertSettingIfAbsent("bootstrap_admin_key_sha256", "abc");
    await store.close();
    const state = await rawDatabase(used);
    const refused = await copy(src().dbPath, used);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("already holds data (settings: bootstrap_admin_key_sha256)");
    expect(await rawDatabase(used)).toEqual(state);
  }, 60_000);

  test("refuses a database that is not hookd's, untouched", async () => {
    const foreign = await createTestDatabase();
    await execute(foreign, [
      "CREATE TABLE customers (id int PRIMARY KEY)",
      "INSERT INTO customers VALUES (1)",
    ]);
    const refused = await copy(src().dbPath, foreign);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("holds tables that are not hookd's (customers)");
    expect(await rawDatabase(foreign)).toEqual({ customers: ['{"id":1}'] });
  }, 60_000);

  test("a copy that fails midway empties the target again, and the same command then succeeds", async () => {
    const target = await migratedDatabase();
    await execute(target, [
      REFUSE_FUNCTION,
      "CREATE TRIGGER refuse_attempts BEFORE INSERT ON attempts FOR EACH STATEMENT EXECUTE FUNCTION hookd_test_refuse()",
    ]);
    const failed = await copy(src().dbPath, target);
    expect(failed.code).toBe(1);
    // Everything before attempts was written, then the target refused.
    expect(failed.stderr).toMatch(/^ {2}deliveries: 4\/4$/m);
    expect(failed.stderr).toContain("failed: refused by the test (at attempts, after 0 of its rows)");
    expect(failed.stderr).toContain("the target was emptied again");
    const left = await rawDatabase(target);
    for (const table of TABLES) expect(left[table]).toEqual([]);

    await execute(target, ["DROP TRIGGER refuse_attempts ON attempts"]);
    const rerun = await copy(src().dbPath, target);
    expect(rerun.stderr).not.toContain("unfinished copy");
    expect(rerun.code).toBe(0);
    expectSameRows(await dumpPostgres(target), await dumpSqlite(src().dbPath));
  }, 60_000);

  test("a copy that fails and cannot clean up is marked unfinished; the next run empties it and succeeds", async () => {
    const target = await migratedDatabase();
    await execute(target, [
      REFUSE_FUNCTION,
      "CREATE TRIGGER refuse_attempts BEFORE INSERT ON attempts FOR EACH STATEMENT EXECUTE FUNCTION hookd_test_refuse()",
      // As if the database had gone away: the cleanup fails too.
      "CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON settings FOR EACH STATEMENT EXECUTE FUNCTION hookd_test_refuse()",
    ]);
    const failed = await copy(src().dbPath, target);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("the target could not be emptied");
    const left = await rawDatabase(target);
    expect(left.webhooks?.length).toBe(4);
    expect(left.settings?.some((row) => row.includes("storage_copy_incomplete"))).toBe(true);

    await execute(target, [
      "DROP TRIGGER refuse_attempts ON attempts",
      "DROP TRIGGER refuse_truncate ON settings",
    ]);
    const rerun = await copy(src().dbPath, target);
    expect(rerun.stderr).toContain("the target holds an unfinished copy");
    expect(rerun.code).toBe(0);
    expectSameRows(await dumpPostgres(target), await dumpSqlite(src().dbPath));
    const settings = (await rawDatabase(target)).settings ?? [];
    expect(settings.some((row) => row.includes("storage_copy_incomplete"))).toBe(false);
  }, 60_000);
});

/** The URL's password (when it has one) appears nowhere in the output. */
function expectPasswordHidden(run: Run, url: string): void {
  const password = decodeURIComponent(new URL(url).password);
  if (password) expect(`${run.stdout}${run.stderr}`).not.toContain(password);
}

// What is refused before any database is reached: these run without PostgreSQL too.
describe.skipIf(TEST_DRIVER === "postgres")(
  "hookd storage copy, refused before the target is reached",
  () => {
    beforeAll(ensureBinary, 150_000);
    /** A URL on 127.0.0.1 that nothing answers (port 1), with a password that must never be printed. */
    const NOWHERE = "postgres://hookd:hunter2-secret@127.0.0.1:1/hookd";

    test("a missing option or a URL that is not postgres:// exits 2", async () => {
      const missingTo = await copyArgs(["storage", "copy", "--from", "hookd.db"]);
      expect(missingTo.code).toBe(2);
      expect(missingTo.stderr).toContain("hookd storage copy needs --to");
      const mysql = await copy("hookd.db", "mysql://hookd:hunter2-secret@127.0.0.1/hookd");
      expect(mysql.code).toBe(2);
      expect(mysql.stderr).toContain("--to must be a postgres:// URL");
      expect(mysql.stderr).not.toContain("hunter2");
      const misplaced = await copyArgs(["storage", "copy", "--from", "a", "--to", NOWHERE, "--secret", "x"]);
      expect(misplaced.code).toBe(2);
      expect(misplaced.stderr).toContain("--secret belongs to hookd verify");
    }, 30_000);

    test("a --from file that does not exist, or is not SQLite, is refused and left as it was", async () => {
      const dir = tempDir("hookd-copy-missing-");
      const missing = join(dir, "nope", "hookd.db");
      const run = await copy(missing, NOWHERE);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`--from ${missing}: no such file; nothing was copied`);
      expect(existsSync(missing)).toBe(false);
      expect(existsSync(join(dir, "nope"))).toBe(false);

      for (const [name, text] of [
        ["empty.db", ""],
        ["config.yaml", "storage:\n  driver: sqlite\n"],
      ] as const) {
        const path = join(dir, name);
        writeFileSync(path, text);
        const refused = await copy(path, NOWHERE);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toContain(`--from ${path}: not a SQLite database`);
        expect(readFileSync(path, "utf8")).toBe(text);
      }
    }, 30_000);

    test("an unreachable target is reported without its password", async () => {
      const path = join(tempDir("hookd-copy-unreachable-"), "hookd.db");
      await createSqliteStore({
        path,
        synchronous: "normal",
        ids: createIdGenerator(systemClock, cryptoRandom),
      }).close();
      const run = await copy(path, NOWHERE);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain("cannot connect to postgres://hookd:***@127.0.0.1:1/hookd");
      expect(run.stderr).not.toContain("hunter2");
    }, 30_000);
  },
);
