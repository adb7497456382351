// v1a (Ed25519) signatures end to end, on the pass's driver (SPEC §3): the real daemon, a real
// receiver on 127.0.0.1, and each delivery checked the way a receiver would, with node:crypto's
// verify() over the Standard Webhooks content "{webhook-id}.{webhook-timestamp}.{body}" and the
// public key the API shows; rotation grace periods and a change of scheme by PATCH.
import { afterEach, describe, expect, test } from "bun:test";
import { verify } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { decodePublicKey } from "../../src/domain/secrets.ts";
import { type Clock, createManualClock, systemClock } from "../../src/runtime/clock.ts";
import { createTestDaemon, type TestDaemon } from "../support/daemon.ts";
import { type ReceivedRequest, type Receiver, startReceiver } from "../support/receiver.ts";

let t: TestDaemon | undefined;
let r: Receiver | undefined;

afterEach(async () => {
  await r?.stop();
  await t?.close();
  r = t = undefined;
});

async function setup(clock: Clock = systemClock) {
  t = await createTestDaemon({
    clock,
    yaml: "delivery:\n  retry_schedule: [50ms, 100ms]\nshutdown_grace: 1s",
  });
  r = await startReceiver();
  await t.daemon.start();
  return { t, r };
}

// biome-ignore lint/suspicious/noExplicitAny: API bodies are inspected freely
type Json = any;

async function createV1a(url: string): Promise<Json> {
  const res = await t!.request("POST", "/v1/webhooks", {
    body: { url, events: ["*"], signature_scheme: "v1a" },
  });
  expect(res.status).toBe(201);
  return res.body;
}

async function publish(data: Json = {}): Promise<Json> {
  const res = await t!.request("POST", "/v1/events", { body: { type: "invoice.paid", data } });
  expect(res.status).toBe(202);
  return res.body;
}

/** The v1a signatures of a request, as a receiver splits the header. */
function signaturesOf(request: ReceivedRequest): Buffer[] {
  const header = request.headers["webhook-signature"] ?? "";
  return header.split(" ").map((entry) => {
    expect(entry).toMatch(/^v1a,[A-Za-z0-9+/]{86}==$/);
    return Buffer.from(entry.slice(4), "base64");
  });
}

/** Whether any signature of `request` verifies over `body` with `publicKey` (`whpk_…`). */
function verifies(request: ReceivedRequest, publicKey: string, body = request.body): boolean {
  const key = decodePublicKey(publicKey);
  expect(key).not.toBeNull();
  const content = Buffer.from(
    `${request.headers["webhook-id"]}.${request.headers["webhook-timestamp"]}.${body}`,
  );
  return signaturesOf(request).some((signature) => verify(null, content, key!, signature));
}

describe("v1a deliveries", () => {
  test("every delivery, retries included, verifies with the public key from the API; a tampered body does not", async () => {
    const { r, t } = await setup();
    const hook = await createV1a(r.url("/hooks"));
    const fetched = await t.request("GET", `/v1/webhooks/${hook.id}`);
    const publicKey = fetched.body.public_key;
    expect(publicKey).toBe(hook.public_key);
    r.script("/hooks", { status: 500 }, { status: 500 });
    const events: Json[] = [];
    for (let i = 0; i < 4; i++) events.push(await publish({ n: i, note: "ü ✓" }));
    // Two failed attempts and a success for one, a success for the others: 6 requests.
    const requests = await r.waitForRequests(6, "/hooks");
    expect(new Set(requests.map((q) => q.headers["webhook-id"]))).toEqual(new Set(events.map((e) => e.id)));
    for (const request of requests) {
      expect(signaturesOf(request)).toHaveLength(1);
      expect(verifies(request, publicKey)).toBe(true);
      // One byte changed, or another id or timestamp: no longer valid.
      expect(verifies(request, publicKey, request.body.replace('"n":', '"m":'))).toBe(false);
      expect(verifies(request, publicKey, `${request.body} `)).toBe(false);
      const replayed = { ...request, headers: { ...request.headers, "webhook-timestamp": "1" } };
      expect(verifies(replayed, publicKey)).toBe(false);
      // Another webhook's key does not verify it.
      const other = await createV1a("https://example.com/other");
      expect(verifies(request, other.public_key)).toBe(false);
      // A v1 (HMAC) verifier finds no v1 signature in it.
      expect(() =>
        new Webhook(`whsec_${Buffer.alloc(32, 1).toString("base64")}`).verify(request.body, request.headers),
      ).toThrow();
    }
    // The delivery records the signature it sent.
    const [last] = (await t.request("GET", `/v1/deliveries?event_id=${events[3].id}`)).body.data;
    const sent = requests.filter((q) => q.headers["webhook-id"] === events[3].id).at(-1)!;
    expect(last.signature).toBe(sent.headers["webhook-signature"]);
    expect(last.signature).not.toContain("whsk_");
  });

  test("during a grace period both keys sign and each verifies; after it only the new one", async () => {
    const clock = createManualClock(Date.now());
    const { r, t } = await setup(clock);
    const hook = await createV1a(r.url("/hooks"));
    const rotated = await t.request("POST", `/v1/webhooks/${hook.id}/rotate-secret`, {
      body: { grace_period_seconds: 60 },
    });
    expect(rotated.status).toBe(200);
    const newKey = rotated.body.public_key;
    expect(rotated.body.previous_public_keys.map((p: Json) => p.public_key)).toEqual([hook.public_key]);

    await publish({ during: true });
    const [during] = await r.waitForRequests(1, "/hooks");
    expect(signaturesOf(during!)).toHaveLength(2);
    expect(verifies(during!, newKey)).toBe(true);
    expect(verifies(during!, hook.public_key)).toBe(true);

    clock.advance(60_001);
    await publish({ after: true });
    const after = (await r.waitForRequests(2, "/hooks"))[1]!;
    expect(signaturesOf(after)).toHaveLength(1);
    expect(verifies(after, newKey)).toBe(true);
    expect(verifies(after, hook.public_key)).toBe(false);
  });

  test("a rotation without grace stops the old key at once", async () => {
    const { r, t } = await setup();
    const hook = await createV1a(r.url("/hooks"));
    const rotated = await t.request("POST", `/v1/webhooks/${hook.id}/rotate-secret`, { body: {} });
    await publish();
    const [request] = await r.waitForRequests(1, "/hooks");
    expect(signaturesOf(request!)).toHaveLength(1);
    expect(verifies(request!, rotated.body.public_key)).toBe(true);
    expect(verifies(request!, hook.public_key)).toBe(false);
  });

  test("after a PATCH from v1 to v1a the next delivery is signed v1a with the new public key only", async () => {
    const { r, t } = await setup();
    const created = await t.request("POST", "/v1/webhooks", {
      body: { url: r.url("/hooks"), events: ["*"] },
    });
    const switched = await t.request("PATCH", `/v1/webhooks/${created.body.id}`, {
      body: { signature_scheme: "v1a" },
    });
    await publish();
    const [request] = await r.waitForRequests(1, "/hooks");
    expect(verifies(request!, switched.body.public_key)).toBe(true);
    expect(() => new Webhook(created.body.secret).verify(request!.body, request!.headers)).toThrow();
  });
});
