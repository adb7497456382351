// SPEC §3 "Order" across a crash: a FIFO subscription's events arrive in creation order, one at a
// time, although the compiled hookd is SIGKILLed with an attempt in flight and started again on the
// same database (either driver: HOOKD_TEST_DRIVER). The attempt cut short is made again once its
// lease ends (at least once), before anything behind it.
import { afterEach, beforeAll, expect, test } from "bun:test";
import { callApi, writeChildConfig } from "../support/child-api.ts";
import { ensureBinary, type HookdProcess, killStarted, startHookd } from "../support/hookd-process.ts";
import { type IntervalReceiver, startIntervalReceiver } from "../support/multi-instance.ts";
import { tempDir } from "../support/temp.ts";
import { waitFor } from "../support/wait-for.ts";

// The lease of an attempt cut short is max(lease, timeout + 5 s) = 6 s here.
const SETTLE_TIMEOUT_MS = 30_000;

let receiver: IntervalReceiver | undefined;
afterEach(async () => {
  await killStarted();
  await receiver?.close();
  receiver = undefined;
});

beforeAll(ensureBinary, 150_000);

const serve = (configPath: string, dir: string): HookdProcess =>
  startHookd("binary", ["serve", "--config", configPath], { cwd: dir });

/** Creation order: created_at, ties by event id. */
const creationOrder = (events: { id: string; created_at: string }[]) =>
  [...events]
    .sort((a, b) => a.created_at.localeCompare(b.created_at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((e) => e.id);

/** The receipt sequence with repeats of one delivery (at least once) folded together. */
const foldRepeats = (ids: string[]) => ids.filter((id, i) => i === 0 || ids[i - 1] !== id);

test("a FIFO webhook keeps creation order across a SIGKILL with an attempt in flight", async () => {
  const dir = tempDir("hookd-fifo-crash-");
  const configPath = await writeChildConfig(dir, { retrySchedule: ["100ms", "200ms"], lease: "1s" });
  receiver = startIntervalReceiver({ delayMs: { "/fifo": 40 } });
  const rx = receiver;
  let child = serve(configPath, dir);
  let url = await child.listening();
  const created = await callApi(url, "POST", "/v1/webhooks", {
    name: "fifo",
    url: rx.url("/fifo"),
    events: ["order.*"],
    ordering: "fifo",
    max_in_flight: 8,
  });
  expect(created.status).toBe(201);

  const events: { id: string; created_at: string }[] = [];
  const publish = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const answer = await callApi(url, "POST", "/v1/events", { type: "order.created", data: { i } });
      expect(answer.status).toBe(202);
      events.push(answer.body);
    }
  };
  await publish(30);
  await waitFor(() => rx.intervals.length >= 5 && rx.open("/fifo") > 0, {
    timeoutMs: 10_000,
    intervalMs: 1,
    what: "a few deliveries, one in flight",
  });
  child.proc.kill("SIGKILL");
  expect(await child.exited()).toBeNull();
  const beforeRestart = rx.intervals.length;
  expect(beforeRestart).toBeLessThan(30); // the crash came mid-queue

  child = serve(configPath, dir);
  url = await child.listening();
  await publish(10);
  await waitFor(() => rx.delivered("/fifo").size === 40, {
    timeoutMs: SETTLE_TIMEOUT_MS,
    intervalMs: 50,
    what: "all 40 events delivered",
  });
  const received = rx.intervals.filter((i) => i.path === "/fifo").map((i) => i.id);
  expect(foldRepeats(received)).toEqual(creationOrder(events));
  expect(rx.maxOpen("/fifo")).toBe(1);
  expect(rx.overlaps()).toEqual([]);
  expect(await child.stop()).toBe(0);
}, 90_000);
