// SPEC §6 for FIFO and rate limits: several compiled dist/hookd processes over one PostgreSQL
// database claim one FIFO subscription's deliveries one at a time in creation order, and keep a
// rate-limited subscription within its limit for all of them together, while an unlimited one
// beside it is not held back. Needs HOOKD_TEST_POSTGRES_URL (skipped with one line without it).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { ensureBinary, killStarted } from "../support/hookd-process.ts";
import {
  api,
  type Instance,
  type IntervalReceiver,
  openDatabase,
  runPool,
  startInstance,
  startIntervalReceiver,
  writeInstanceConfig,
} from "../support/multi-instance.ts";
import { createTestDatabase, skipWithoutPostgres } from "../support/postgres.ts";
import { tempDir } from "../support/temp.ts";
import { waitFor } from "../support/wait-for.ts";

const SKIP = skipWithoutPostgres("delivery-controls-multi");

let receiver: IntervalReceiver | undefined;
let database: ReturnType<typeof openDatabase> | undefined;

async function cleanUp() {
  await killStarted();
  await receiver?.close();
  receiver = undefined;
  await database?.close();
  database = undefined;
}
afterEach(cleanUp);
afterAll(cleanUp);

async function startCluster(n: number): Promise<Instance[]> {
  const databaseUrl = await createTestDatabase();
  const dir = tempDir("hookd-controls-multi-");
  const configPath = writeInstanceConfig(dir, "hookd", { databaseUrl });
  database = openDatabase(databaseUrl);
  return Promise.all(Array.from({ length: n }, () => startInstance(configPath, dir)));
}

async function createWebhook(url: string, body: Record<string, unknown>): Promise<string> {
  const created = await api(url, "POST", "/v1/webhooks", { body: { name: "receiver", ...body } });
  if (created.status !== 201) throw new Error(`cannot create the webhook: ${JSON.stringify(created.body)}`);
  return created.body.id as string;
}

/** The most of `times` within any window of `ms`. */
function maxInAnyWindow(times: number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    while ((sorted[i] as number) - (sorted[j] as number) >= ms) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe.skipIf(SKIP)("FIFO and rate limits across dist/hookd instances over one PostgreSQL database", () => {
  beforeAll(ensureBinary, 150_000);

  test("three instances: a FIFO webhook's 60 events, published on all three, arrive one at a time in the order they were accepted", async () => {
    const instances = await startCluster(3);
    const urls = instances.map((i) => i.url);
    // Every seventh event's first request is refused (by arrival, so some always are: ids are random).
    let firstSeen = 0;
    receiver = startIntervalReceiver({ delayMs: { "/fifo": 10 }, failFirst: () => ++firstSeen % 7 === 0 });
    const rx = receiver;
    await createWebhook(urls[0] as string, {
      url: rx.url("/fifo"),
      events: ["order.*"],
      ordering: "fifo",
      max_in_flight: 8,
    });
    // Three publishers, one per instance, each waiting for its 202 before the next event.
    const events: { id: string; created_at: string; sentAt: number; ackAt: number }[] = [];
    await runPool(60, 3, async (i) => {
      const sentAt = performance.now();
      const answer = await api(urls[i % 3] as string, "POST", "/v1/events", {
        body: { type: "order.created", data: { i } },
      });
      expect(answer.status).toBe(202);
      events.push({ ...answer.body, sentAt, ackAt: performance.now() });
    });
    await waitFor(() => rx.delivered("/fifo").size === 60, {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: "all 60 FIFO events delivered",
    });
    const received = rx.intervals.filter((i) => i.path === "/fifo").map((i) => i.id);
    // A head refused once (500) is tried again before anything behind it: fold its repeats.
    const folded = received.filter((id, i) => i === 0 || received[i - 1] !== id);
    expect(new Set(folded).size).toBe(60);
    expect(folded.length).toBe(60);
    expect(received.length).toBeGreaterThan(60); // some heads were refused once and retried
    // Creation order wherever it is defined: an event accepted (202) before another was sent
    // arrives before it. (Two publishes in flight at once, on different instances, may go either
    // way: the later-created one can be delivered before the other has committed.)
    const position = new Map(folded.map((id, i) => [id, i]));
    const inversions = events.flatMap((a) =>
      events
        .filter((b) => a.ackAt < b.sentAt && (position.get(a.id) ?? 0) > (position.get(b.id) ?? 0))
        .map((b) => `${a.id} after ${b.id}`),
    );
    expect(inversions).toEqual([]);
    expect(rx.maxOpen("/fifo")).toBe(1);
  }, 90_000);

  test("two instances: rate_limit 20 holds for both together; 100 attempts for 100 events; an unlimited webhook finishes far sooner", async () => {
    const instances = await startCluster(2);
    const urls = instances.map((i) => i.url);
    receiver = startIntervalReceiver();
    const rx = receiver;
    const limited = await createWebhook(urls[0] as string, {
      url: rx.url("/limited"),
      events: ["order.*"],
      rate_limit: 20,
      max_in_flight: 50,
    });
    await createWebhook(urls[1] as string, { url: rx.url("/open"), events: ["order.*"], max_in_flight: 50 });
    const started = performance.now();
    for (const [i, url] of urls.entries()) {
      const events = Array.from({ length: 50 }, (_, n) => ({ type: "order.created", data: { i, n } }));
      const answer = await api(url, "POST", "/v1/events/batch", { body: { events } });
      expect(answer.status).toBe(202);
    }
    await waitFor(() => rx.delivered("/open").size === 100, { timeoutMs: 20_000, what: "the unlimited 100" });
    const openDone = performance.now() - started;
    await waitFor(() => rx.delivered("/limited").size === 100, {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: "the limited 100",
    });
    const limitedDone = performance.now() - started;
    const starts = rx.intervals.filter((i) => i.path === "/limited").map((i) => i.start);
    expect(starts.length).toBe(100);
    expect(maxInAnyWindow(starts, 1000)).toBeLessThanOrEqual(20);
    expect(limitedDone).toBeGreaterThan(4000);
    expect(openDone * 3).toBeLessThan(limitedDone);
    // The last receipt's settlement may still be on its way to the database.
    let mine: Awaited<ReturnType<NonNullable<typeof database>["deliveries"]>> = [];
    await waitFor(
      async () => {
        mine = (await database!.deliveries()).filter((r) => r.webhook_id === limited);
        return mine.length === 100 && mine.every((r) => r.status === "success");
      },
      { timeoutMs: 10_000, what: "the limited 100 settled as success" },
    );
    expect(mine.reduce((sum, r) => sum + Number(r.attempts), 0)).toBe(100);
  }, 90_000);
});
