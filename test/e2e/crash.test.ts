// SPEC §3 Leases and "no accepted event is lost by a restart, graceful or not": hookd runs as a child
// process and is SIGKILLed at random moments while events are published; every event that got a 202
// is delivered at least once after restarts on the same database, nothing is left queued under an
// expired lease, and (SQLite) the database passes PRAGMA integrity_check.
import { afterEach, expect, test } from "bun:test";
import { callApi, createWebhook, writeChildConfig } from "../support/child-api.ts";
import { type CountingReceiver, startCountingReceiver } from "../support/counting-receiver.ts";
import { integrityCheck, queuedAndLeased, readStoredRows, retriedCount } from "../support/hookd-db.ts";
import {
  type HookdProcess,
  killStarted,
  serveFromSource,
  storageOfConfig,
} from "../support/hookd-process.ts";
import { tempDir } from "../support/temp.ts";
import { waitFor } from "../support/wait-for.ts";

const KILLS = 4;
const MAX_EVENTS = 600;
const PUBLISHERS = 3;
const PUBLISH_PACE_MS = 50;
const PUBLISH_LIMIT_MS = 20_000;
// A delivery leased when the process died comes due once its lease ends: the lease is at least the
// attempt timeout (1 s here) plus a margin (src/store/sqlite/dispatch.ts), a few seconds.
const SETTLE_TIMEOUT_MS = 30_000;

let receiver: CountingReceiver | undefined;
/** Publishers run while this is set; cleared after each test, however it ended. */
let publishing = false;
afterEach(async () => {
  publishing = false;
  await killStarted();
  await receiver?.close();
  receiver = undefined;
});

// Some events are refused once (500) so their deliveries pass through `retrying`.
const failsFirst = (id: string) => [...id].reduce((sum, c) => sum + c.charCodeAt(0), 0) % 5 === 0;

test("SIGKILL at random moments loses no accepted event and leaves a sound database", async () => {
  const dir = tempDir("hookd-crash-");
  const configPath = await writeChildConfig(dir, { retrySchedule: ["100ms", "200ms", "500ms"], lease: "1s" });
  // A little slow, so attempts are in flight when the process dies.
  receiver = startCountingReceiver({ mode: { delayMs: 40 }, failFirst: failsFirst });
  const rx = receiver;

  let child: HookdProcess = serveFromSource(configPath, dir);
  let target: string | null = await child.listening();
  await createWebhook(target, rx.url, ["order.created"]);

  const accepted: string[] = [];
  publishing = true;
  const publishUntil = Date.now() + PUBLISH_LIMIT_MS;
  let sent = 0;
  const publisher = async () => {
    while (publishing && sent < MAX_EVENTS && Date.now() < publishUntil) {
      const url = target;
      if (url === null) {
        await Bun.sleep(PUBLISH_PACE_MS);
        continue;
      }
      sent++;
      try {
        const response = await callApi(
          url,
          "POST",
          "/v1/events",
          { type: "order.created", data: { n: sent } },
          3_000,
        );
        if (response.status === 202) accepted.push(response.body.id as string);
      } catch {
        // Killed under us: the event may or may not be stored; only 202s are promised.
      }
      await Bun.sleep(PUBLISH_PACE_MS);
    }
  };
  const publishers = Array.from({ length: PUBLISHERS }, publisher);

  let interrupted = 0;
  for (let kill = 0; kill < KILLS; kill++) {
    const before = accepted.length;
    // A random moment, after at least a few new events were accepted by this process.
    await Bun.sleep(600 + Math.floor(Math.random() * 1500));
    await waitFor(() => accepted.length >= before + 5, { timeoutMs: 10_000, what: "events to be accepted" });
    await waitFor(() => rx.open() > 0, { timeoutMs: 5_000, intervalMs: 1, what: "an attempt in flight" });
    interrupted += rx.open();
    child.proc.kill("SIGKILL");
    expect(await child.exited()).toBeNull();
    expect(child.proc.signalCode).toBe("SIGKILL");
    target = null;
    child = serveFromSource(configPath, dir);
    target = await child.listening();
  }
  // Keep publishing to the last process for a moment, then stop.
  const last = accepted.length;
  await waitFor(() => accepted.length >= last + 5, {
    timeoutMs: 10_000,
    what: "events after the last restart",
  });
  publishing = false;
  await Promise.all(publishers);
  expect(accepted.length).toBeGreaterThan(50);
  expect(interrupted).toBeGreaterThan(0);

  await waitFor(() => accepted.every((id) => rx.delivered.has(id)), {
    timeoutMs: SETTLE_TIMEOUT_MS,
    intervalMs: 100,
    what: `all ${accepted.length} accepted events to be delivered (${accepted.filter((id) => !rx.delivered.has(id)).length} missing)`,
  });
  const url = target;
  await waitFor(
    async () => {
      for (const status of ["pending", "retrying"]) {
        const page = await callApi(url, "GET", `/v1/deliveries?status=${status}&limit=1`);
        if (page.status !== 200 || page.body.data.length > 0) return false;
      }
      return true;
    },
    { timeoutMs: SETTLE_TIMEOUT_MS, intervalMs: 100, what: "no delivery left queued" },
  );

  child.proc.kill("SIGTERM");
  expect(await child.exited()).toBe(0);

  const storage = storageOfConfig(configPath);
  if (storage.driver === "sqlite") expect(integrityCheck(storage.sqlitePath)).toEqual(["ok"]);
  const deliveries = await readStoredRows(storage, "deliveries");
  expect(queuedAndLeased(deliveries)).toEqual({ queued: 0, leased: 0 });
  const stored = new Set(deliveries.filter((row) => row.status === "success").map((row) => row.event_id));
  expect(accepted.filter((id) => !stored.has(id))).toEqual([]);
  expect(retriedCount(deliveries)).toBeGreaterThan(0);
}, 60_000);
