// SPEC §3 Shutdown, on the real process: SIGTERM stops accepting requests, waits for attempts in
// flight within shutdown_grace and exits 0; attempts still hanging past the grace get their leases
// released so a restart sends them at once; a second signal exits at once, non-zero.
import { afterEach, expect, test } from "bun:test";
import { callApi, createWebhook, writeChildConfig } from "../support/child-api.ts";
import { type CountingReceiver, startCountingReceiver } from "../support/counting-receiver.ts";
import { readStoredRows } from "../support/hookd-db.ts";
import {
  type HookdProcess,
  killStarted,
  serveFromSource,
  storageOfConfig,
} from "../support/hookd-process.ts";
import { tempDir } from "../support/temp.ts";
import { waitFor } from "../support/wait-for.ts";

interface Row {
  id: string;
  event_id: string;
  status: string;
  attempts: number;
  next_attempt_at: number | null;
  lease_owner: string | null;
}

let receiver: CountingReceiver | undefined;
afterEach(async () => {
  await killStarted();
  await receiver?.close();
  receiver = undefined;
});

async function publish(url: string, count: number): Promise<string[]> {
  const events = Array.from({ length: count }, (_, n) => ({ type: "order.created", data: { n } }));
  const response = await callApi(url, "POST", "/v1/events/batch", { events });
  expect(response.status).toBe(202);
  return (response.body.data as { id: string }[]).map((event) => event.id);
}

/** The child's stored deliveries (either driver), once it has exited. */
async function readDeliveries(configPath: string): Promise<Row[]> {
  const rows = (await readStoredRows(storageOfConfig(configPath), "deliveries")) as unknown as Row[];
  return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A request on a fresh connection: does anything still answer? */
async function answers(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/healthz`, { keepalive: false, signal: AbortSignal.timeout(250) });
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then wait for the "shutting down" log line and for the listener to stop answering. */
async function terminateAndWaitForDrain(child: HookdProcess, url: string): Promise<void> {
  child.proc.kill("SIGTERM");
  await waitFor(() => child.lines.some((line) => line.includes('"msg":"shutting down"')), {
    timeoutMs: 5_000,
    what: "the 'shutting down' log line",
  });
  await waitFor(async () => !(await answers(url)), {
    timeoutMs: 2_000,
    what: "the listener to stop answering",
  });
}

test("SIGTERM stops accepting, waits for attempts in flight within the grace, and exits 0", async () => {
  const dir = tempDir("hookd-shutdown-");
  const configPath = await writeChildConfig(dir, {
    shutdownGrace: "5s",
    timeout: "5s",
    maxInFlightPerWebhook: 4,
  });
  receiver = startCountingReceiver({ mode: { delayMs: 500 } });
  const rx = receiver;
  const child = serveFromSource(configPath, dir);
  const url = await child.listening();
  await createWebhook(url, rx.url, ["order.created"]);
  expect(await answers(url)).toBe(true);

  const ids = await publish(url, 10);
  await waitFor(() => rx.open() >= 4, { timeoutMs: 5_000, intervalMs: 1, what: "4 attempts in flight" });
  const inFlight = [...rx.seen.keys()];
  expect(inFlight).toHaveLength(4);

  const signalledAt = Date.now();
  await terminateAndWaitForDrain(child, url);
  // Still draining: the slow receiver has not answered yet, and the process waits for it.
  expect(child.hasExited()).toBe(false);
  expect(rx.delivered.size).toBe(0);

  expect(await child.exited()).toBe(0);
  const took = Date.now() - signalledAt;
  expect(took).toBeLessThan(5_000);
  expect([...rx.delivered].sort()).toEqual([...inFlight].sort());
  // Nothing was claimed after the signal.
  expect(rx.seen.size).toBe(4);

  const rows = await readDeliveries(configPath);
  expect(rows).toHaveLength(ids.length);
  for (const row of rows) {
    if (inFlight.includes(row.event_id)) {
      expect(row).toMatchObject({ status: "success", attempts: 1, lease_owner: null, next_attempt_at: null });
    } else {
      expect(row).toMatchObject({ status: "pending", attempts: 0, lease_owner: null });
    }
  }
}, 30_000);

test("attempts hanging past the grace are released and a restart sends them at once", async () => {
  const dir = tempDir("hookd-shutdown-");
  // The attempt timeout (10 s) outlasts the grace (1 s); a lease lasts at least that long.
  const configPath = await writeChildConfig(dir, { shutdownGrace: "1s", timeout: "10s", lease: "1s" });
  receiver = startCountingReceiver({ mode: "hang" });
  const rx = receiver;
  let child = serveFromSource(configPath, dir);
  let url = await child.listening();
  await createWebhook(url, rx.url, ["order.created"]);
  const ids = await publish(url, 3);
  await waitFor(() => rx.open() >= 3, { timeoutMs: 5_000, what: "3 attempts hanging" });

  const signalledAt = Date.now();
  child.proc.kill("SIGTERM");
  expect(await child.exited()).toBe(0);
  const stoppedAt = Date.now();
  expect(stoppedAt - signalledAt).toBeGreaterThanOrEqual(900);
  expect(stoppedAt - signalledAt).toBeLessThan(5_000);
  expect(child.lines.some((line) => line.includes('"released":3'))).toBe(true);

  const rows = await readDeliveries(configPath);
  expect(rows.map((row) => row.event_id).sort()).toEqual([...ids].sort());
  for (const row of rows) {
    // Cut short by shutdown: not counted as an attempt, due now, and nobody's lease.
    expect(row).toMatchObject({ status: "pending", attempts: 0, lease_owner: null });
    expect(row.next_attempt_at).not.toBeNull();
    expect(row.next_attempt_at as number).toBeLessThanOrEqual(stoppedAt);
    expect(row.next_attempt_at as number).toBeGreaterThanOrEqual(signalledAt);
  }

  rx.setMode("ok");
  const restartedAt = Date.now();
  child = serveFromSource(configPath, dir);
  url = await child.listening();
  // Far sooner than the lease (10 s or more) would end: the restart does not wait for it.
  await waitFor(() => ids.every((id) => rx.delivered.has(id)), {
    timeoutMs: 5_000,
    what: "the released deliveries to be sent after the restart",
  });
  expect(Date.now() - restartedAt).toBeLessThan(5_000);
  await waitFor(
    async () => (await callApi(url, "GET", "/v1/deliveries?status=success")).body.data.length === 3,
    { timeoutMs: 5_000, what: "the deliveries to be settled" },
  );
  child.proc.kill("SIGTERM");
  expect(await child.exited()).toBe(0);
}, 30_000);

test("a second SIGTERM during a long drain exits at once with a non-zero code", async () => {
  const dir = tempDir("hookd-shutdown-");
  const configPath = await writeChildConfig(dir, { shutdownGrace: "20s", timeout: "30s" });
  receiver = startCountingReceiver({ mode: "hang" });
  const rx = receiver;
  const child = serveFromSource(configPath, dir);
  const url = await child.listening();
  await createWebhook(url, rx.url, ["order.created"]);
  await publish(url, 2);
  await waitFor(() => rx.open() >= 2, { timeoutMs: 5_000, what: "2 attempts hanging" });

  await terminateAndWaitForDrain(child, url);
  // Draining: the first signal alone would wait up to 20 s for the hanging attempts.
  expect(child.hasExited()).toBe(false);

  const secondAt = Date.now();
  child.proc.kill("SIGTERM");
  const code = await child.exited(3_000);
  expect(Date.now() - secondAt).toBeLessThan(2_000);
  expect(code).not.toBeNull();
  expect(code).not.toBe(0);
  expect(child.lines.some((line) => line.includes("second signal"))).toBe(true);
}, 30_000);
