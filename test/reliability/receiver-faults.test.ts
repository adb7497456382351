// Receiver faults (issue 5, item 2): each misbehaving receiver gives the right attempt error and
// delivery status, a healthy subscription's deliveries keep flowing meanwhile, and the daemon's
// memory stays bounded against a body that never ends. The daemon runs in this process on the real
// clock with short retry schedules; receivers are real servers on 127.0.0.1.
import { afterEach, describe, expect, test } from "bun:test";
import { systemClock } from "../../src/runtime/clock.ts";
import { createTestDaemon, type TestDaemon } from "../support/daemon.ts";
import { type Receiver, retryAfter, startReceiver } from "../support/receiver.ts";
import { waitFor } from "../support/wait-for.ts";
import { deliveryApi, type Json } from "./delivery-helpers.ts";
import {
  selfSignedCertificate,
  startCountingListener,
  startEndlessBodyServer,
  startGarbageServer,
  startSlowHeadersServer,
  startTlsServer,
} from "./fault-servers.ts";

const FULL = process.env.HOOKD_RELIABILITY === "full";
const certificate = selfSignedCertificate();
if (!certificate) console.warn("receiver-faults: openssl is missing, so the bad-certificate test is skipped");

let t: TestDaemon | undefined;
let r: Receiver | undefined;
let api: ReturnType<typeof deliveryApi>;
const stops: (() => Promise<void>)[] = [];

afterEach(async () => {
  // Receivers first: cutting hanging requests keeps the daemon's drain short.
  await r?.stop();
  for (const stop of stops.splice(0)) await stop();
  await t?.close();
  r = t = undefined;
});

async function setup(schedule = "[10s]") {
  t = await createTestDaemon({
    clock: systemClock,
    yaml: `delivery:\n  retry_schedule: ${schedule}\n  max_in_flight: 4\nshutdown_grace: 1s`,
  });
  r = await startReceiver();
  await t.daemon.start();
  api = deliveryApi(t);
  return { t, r };
}

// More faulty deliveries than the global cap (4), but the faulty subscription's own cap (2) leaves
// room for the healthy one: a stuck receiver must hold no more than its cap.
const FAULTY = 6;
const FAULTY_CAP = 2;
const HEALTHY = 10;

/**
 * A faulty subscription and a healthy one; the faulty events are published first. Returns once every
 * healthy delivery succeeded.
 */
async function faultBesideHealthyTraffic(url: string, timeoutSeconds = 5) {
  const receiver = r as Receiver;
  const faulty = await api.createWebhook({
    url,
    events: ["fault.probe"],
    max_in_flight: FAULTY_CAP,
    timeout_seconds: timeoutSeconds,
  });
  const healthy = await api.createWebhook({ url: receiver.url("/healthy"), events: ["healthy.tick"] });
  for (let i = 0; i < FAULTY; i++) await api.publish("fault.probe", { i });
  for (let i = 0; i < HEALTHY; i++) await api.publish("healthy.tick", { i });
  await api.allIn(healthy.id, "success", HEALTHY, 5000);
  expect(receiver.received("/healthy")).toHaveLength(HEALTHY);
  return faulty as Json;
}

/** The attempts of the subscription's deliveries, once `count` of them (all by default) are in `status`. */
async function attemptsWhenAll(webhookId: string, status: string, count = FAULTY) {
  const deliveries = await waitFor(
    async () => {
      const list = (await api.deliveries(`webhook_id=${webhookId}`)).filter((d) => d.status === status);
      return list.length >= count ? list : null;
    },
    { what: `${count} deliveries of ${webhookId} to be ${status}` },
  );
  const attempts: Json[] = [];
  for (const d of deliveries) attempts.push(...(await api.attempts(d.id)));
  return { deliveries, attempts };
}

describe("a receiver that stalls", () => {
  test("hang: healthy deliveries all arrive while it hangs; then timeout, retrying", async () => {
    const { r } = await setup();
    r.always("/hang", { kind: "hang" });
    const faulty = await faultBesideHealthyTraffic(r.url("/hang"), 2);
    // The healthy ones finished inside the faulty ones' two-second deadline: both still hang.
    expect(r.open()).toBe(FAULTY_CAP);
    expect((await api.deliveries(`webhook_id=${faulty.id}`)).map((d) => d.status)).toEqual(
      new Array(FAULTY).fill("pending"),
    );

    // The first two time out (the next two then hang in turn).
    const { deliveries, attempts } = await attemptsWhenAll(faulty.id, "retrying", FAULTY_CAP);
    expect(deliveries.every((d) => d.attempts === 1 && d.response_status_code === null)).toBe(true);
    for (const a of attempts) {
      expect(a).toMatchObject({ error: "timeout", response_status_code: null, response_body: null });
      expect(a.duration_ms).toBeGreaterThanOrEqual(1990);
      expect(a.duration_ms).toBeLessThan(4000);
    }
  });

  test("slow headers (a status line, then a byte at a time): timeout, retrying", async () => {
    await setup();
    const slow = await startSlowHeadersServer();
    stops.push(slow.stop);
    const faulty = await faultBesideHealthyTraffic(`http://127.0.0.1:${slow.port}/`, 2);
    expect(slow.open()).toBe(FAULTY_CAP);

    const { attempts } = await attemptsWhenAll(faulty.id, "retrying", FAULTY_CAP);
    for (const a of attempts) {
      expect(a).toMatchObject({ error: "timeout", response_status_code: null });
      expect(a.duration_ms).toBeGreaterThanOrEqual(1990);
      expect(a.duration_ms).toBeLessThan(4000);
    }
  });

  test("slow drip: a 500 whose body drips past the deadline is cut there, keeping its status and the body so far", async () => {
    const { r } = await setup();
    r.always("/drip", { kind: "slowBody", status: 500, chunk: "drip ", intervalMs: 100 });
    const faulty = await faultBesideHealthyTraffic(r.url("/drip"), 2);
    expect(r.open()).toBe(FAULTY_CAP);

    const { attempts } = await attemptsWhenAll(faulty.id, "retrying", FAULTY_CAP);
    for (const a of attempts) {
      expect(a).toMatchObject({ error: "http_status", response_status_code: 500 });
      expect(a.response_body).toMatch(/^(drip )+$/);
      expect(a.duration_ms).toBeGreaterThanOrEqual(1990);
      expect(a.duration_ms).toBeLessThan(4000);
    }
    // The deadline destroyed the dripping sockets rather than pooling them: the next two come on
    // new connections.
    const requests = await r.waitForRequests(2 * FAULTY_CAP, "/drip");
    expect(new Set(requests.map((q) => q.remotePort)).size).toBe(requests.length);
  });
});

describe("a receiver that breaks the connection or the protocol", () => {
  test("reset mid-response: the status that came is kept (500: http_status, retrying) with the partial body", async () => {
    const { r } = await setup();
    r.always("/reset", { kind: "reset", status: 500, partialBody: "half an answ" });
    const faulty = await faultBesideHealthyTraffic(r.url("/reset"));

    const { attempts } = await attemptsWhenAll(faulty.id, "retrying");
    for (const a of attempts) {
      expect(a).toMatchObject({ error: "http_status", response_status_code: 500 });
      expect(a.response_body).toBe("half an answ");
    }
  });

  test("reset mid-response after a 200: success (SPEC §3: any 2xx within the timeout)", async () => {
    const { r } = await setup();
    r.always("/reset", { kind: "reset", status: 200, partialBody: "half" });
    const faulty = await faultBesideHealthyTraffic(r.url("/reset"));
    const { attempts } = await attemptsWhenAll(faulty.id, "success");
    for (const a of attempts) expect(a).toMatchObject({ error: null, response_status_code: 200 });
  });

  test("reset before any answer: connection_reset, retrying", async () => {
    const { r } = await setup();
    r.always("/reset", { kind: "reset", beforeHeaders: true });
    const faulty = await faultBesideHealthyTraffic(r.url("/reset"));
    const { attempts } = await attemptsWhenAll(faulty.id, "retrying");
    for (const a of attempts)
      expect(a).toMatchObject({ error: "connection_reset", response_status_code: null });
  });

  test("endless body: the attempt ends with the first 4 KiB, long before the deadline, and the socket is destroyed", async () => {
    await setup();
    const endless = await startEndlessBodyServer(500);
    stops.push(endless.stop);
    const faulty = await faultBesideHealthyTraffic(`http://127.0.0.1:${endless.port}/endless`, 10);

    const { attempts } = await attemptsWhenAll(faulty.id, "retrying");
    for (const a of attempts) {
      expect(a).toMatchObject({ error: "http_status", response_status_code: 500 });
      expect(a.response_body).toBe("x".repeat(4096));
      expect(a.duration_ms).toBeLessThan(5000);
    }
    await waitFor(() => endless.open() === 0, { timeoutMs: 3000, what: "the endless sockets to be closed" });
    expect(endless.connections()).toBe(FAULTY); // one each: no socket went back to the pool
  });

  test("invalid HTTP (garbage instead of a status line): invalid_response, retrying", async () => {
    await setup();
    const garbage = await startGarbageServer();
    stops.push(garbage.stop);
    const faulty = await faultBesideHealthyTraffic(`http://127.0.0.1:${garbage.port}/garbage`);
    const { attempts } = await attemptsWhenAll(faulty.id, "retrying");
    for (const a of attempts) {
      expect(a).toMatchObject({ error: "invalid_response", response_status_code: null, response_body: null });
    }
  });

  test.skipIf(!certificate)(
    "TLS with a self-signed certificate: tls, retrying, and no request got through",
    async () => {
      await setup();
      const server = await startTlsServer(certificate as { key: Buffer; cert: Buffer });
      stops.push(server.stop);
      const faulty = await faultBesideHealthyTraffic(`https://127.0.0.1:${server.port}/hooks`);
      const { attempts } = await attemptsWhenAll(faulty.id, "retrying");
      for (const a of attempts) expect(a).toMatchObject({ error: "tls", response_status_code: null });
      expect(server.requests()).toBe(0);
    },
  );
});

describe("a receiver that asks for time or sends elsewhere", () => {
  test("429 and 503 Retry-After, in seconds and as an HTTP date, set next_retry_at (capped at the longest delay)", async () => {
    const { r } = await setup("[50ms, 50ms, 5s]");
    // An HTTP date has whole seconds: 3-4 s from now, inside the 5 s cap.
    const date = new Date(Math.floor((Date.now() + 4000) / 1000) * 1000);
    r.always("/seconds", retryAfter(429, "2"));
    r.always("/date", retryAfter(503, date.toUTCString()));
    r.always("/huge", retryAfter(503, "3600"));
    r.always("/junk", retryAfter(503, "soon, maybe"));
    const hooks: Record<string, Json> = {};
    for (const path of ["/seconds", "/date", "/huge", "/junk"])
      hooks[path] = await api.createWebhook({ url: r.url(path), events: ["fault.probe"] });
    const healthy = await api.createWebhook({ url: r.url("/healthy"), events: ["healthy.tick"] });
    await api.publish("fault.probe");
    for (let i = 0; i < HEALTHY; i++) await api.publish("healthy.tick", { i });
    await api.allIn(healthy.id, "success", HEALTHY, 5000);

    const waitOf = async (path: string) => {
      const [d] = await api.allIn(hooks[path].id, "retrying", 1);
      expect(d.attempts).toBe(1);
      const [a] = await api.attempts(d.id);
      expect(a.error).toBe("http_status");
      expect(a.response_headers["retry-after"]).toBeDefined();
      return {
        at: Date.parse(d.next_retry_at),
        wait: Date.parse(d.next_retry_at) - Date.parse(d.last_attempt_at),
      };
    };
    const seconds = await waitOf("/seconds");
    expect(seconds.wait).toBeGreaterThanOrEqual(2000); // no jitter, far above the 50 ms of the schedule
    expect(seconds.wait).toBeLessThan(2500);
    expect((await waitOf("/date")).at).toBe(date.getTime());
    const huge = await waitOf("/huge");
    expect(huge.wait).toBeGreaterThanOrEqual(5000);
    expect(huge.wait).toBeLessThan(5500);
    // Unreadable: the schedule's 50 ms (±20%) stands, so a second attempt follows at once.
    const [junk] = await api.deliveries(`webhook_id=${hooks["/junk"].id}`);
    const [first, second] = await waitFor(
      async () => {
        const list = await api.attempts(junk.id);
        return list.length >= 2 ? list : null;
      },
      { what: "a second attempt after an unreadable Retry-After" },
    );
    expect(Date.parse(second.started_at) - Date.parse(first.started_at)).toBeLessThan(1000);
  });

  test("a 3xx to a private address is never followed: redirect, no request there", async () => {
    const { r } = await setup("[20ms, 20ms, 20ms, 20ms]");
    // 127.0.0.2 stands for the private target: a loopback listener that must see no connection.
    const privateTarget = await startCountingListener("127.0.0.2");
    stops.push(privateTarget.stop);
    const elsewhere = `http://127.0.0.2:${privateTarget.port}/latest/meta-data/`;
    const statuses = [301, 302, 303, 307, 308];
    r.script(
      "/moved",
      ...statuses.map((status, i) => ({
        kind: "redirect" as const,
        status,
        location: i % 2 === 0 ? elsewhere : r.url("/internal"),
      })),
    );
    const faulty = await api.createWebhook({ url: r.url("/moved"), events: ["fault.probe"] });
    const healthy = await api.createWebhook({ url: r.url("/healthy"), events: ["healthy.tick"] });
    await api.publish("fault.probe");
    for (let i = 0; i < HEALTHY; i++) await api.publish("healthy.tick", { i });
    await api.allIn(healthy.id, "success", HEALTHY, 5000);

    const [d] = await api.allEnded(faulty.id, 1);
    expect(d.status).toBe("exhausted");
    const attempts = await api.attempts(d.id);
    expect(attempts.map((a: Json) => [a.response_status_code, a.error])).toEqual(
      statuses.map((s) => [s, "redirect"]),
    );
    expect(attempts[0].response_headers.location).toBe(elsewhere);
    expect(privateTarget.connections()).toBe(0);
    expect(r.received("/internal")).toHaveLength(0);
    expect(r.received("/moved")).toHaveLength(statuses.length);
  });
});

describe("memory", () => {
  test(
    `${FULL ? 10_000 : 200} deliveries to an endless body leave the process's memory bounded`,
    async () => {
      const total = FULL ? 10_000 : 200;
      await setup();
      const endless = await startEndlessBodyServer(200);
      stops.push(endless.stop);
      const hook = await api.createWebhook({ url: `http://127.0.0.1:${endless.port}/`, max_in_flight: 4 });
      const publishBatch = async (n: number) => {
        for (let sent = 0; sent < n; sent += 100) {
          const events = Array.from({ length: Math.min(100, n - sent) }, (_, i) => ({
            type: "bulk",
            data: { i },
          }));
          const res = await t!.request("POST", "/v1/events/batch", { body: { events } });
          expect(res.status).toBe(202);
        }
      };
      // Warm up (pools, JIT, SQLite cache) before the baseline.
      await publishBatch(20);
      await api.allIn(hook.id, "success", 20, 10_000);
      Bun.gc(true);
      const before = process.memoryUsage().rss;

      await publishBatch(total);
      await waitFor(
        async () =>
          endless.connections() >= total + 20 &&
          t!.daemon.dispatcher.inFlight() === 0 &&
          (await t!.daemon.store.queueStats(Date.now() + 60_000)).depth === 0,
        { timeoutMs: FULL ? 120_000 : 10_000, what: `${total} deliveries to be done` },
      );
      Bun.gc(true);
      const grown = process.memoryUsage().rss - before;
      for (const status of ["pending", "retrying", "exhausted", "failed"])
        expect(await api.deliveries(`webhook_id=${hook.id}&status=${status}`)).toEqual([]);
      const sample = (await api.deliveries(`webhook_id=${hook.id}&limit=1`))[0];
      expect(sample.status).toBe("success");
      const [attempt] = await api.attempts(sample.id);
      expect(attempt.response_body).toBe("x".repeat(4096));
      // The server kept pushing far more than 4 KiB per response; none of it may pile up here.
      expect(endless.bytesWritten()).toBeGreaterThan((total + 20) * 0x4000);
      await waitFor(() => endless.open() === 0, {
        timeoutMs: 3000,
        what: "every endless socket to be closed",
      });
      if (process.env.HOOKD_RELIABILITY_VERBOSE)
        console.log({ grownMiB: grown / 2 ** 20, written: endless.bytesWritten() });
      expect(grown).toBeLessThan(100 * 1024 * 1024);
    },
    FULL ? 180_000 : 30_000,
  );
});
