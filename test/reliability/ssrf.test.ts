// The delivery-time SSRF matrix (issue 5, item 5; SPEC §3 SSRF): with allow_private_networks off,
// every literal form of a loopback, private, link-local, metadata, CGNAT, unique-local, multicast or
// unspecified address, every DNS name resolving to one (even alongside a public address), and every
// redirect to one is refused: error blocked_address (redirect), status failed, no connection made.
// allow_private_networks and allowed_cidrs open exactly what they name.
//
// No packet may leave 127.0.0.0/8: targets outside loopback are refused before connecting, and each
// case first checks that they will be: the policy refuses the address, and (once per file) the client
// is seen refusing loopback targets while loopback listeners watch, so a broken client fails there
// instead of connecting out. Loopback listeners on 127.0.0.1, 127.0.0.2 and [::1] count connections,
// to show that none was made.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { LookupAddress } from "node:dns";
import { createHttpClient } from "../../src/dispatcher/http-client.ts";
import {
  type AddressPolicy,
  addressBlockReason,
  type Cidr,
  type IpAddress,
  parseCidr,
  parseIp,
} from "../../src/domain/ip.ts";
import { systemClock } from "../../src/runtime/clock.ts";
import { createTestDaemon, type TestDaemon } from "../support/daemon.ts";
import { type Receiver, startReceiver } from "../support/receiver.ts";
import { deliveryApi, type Json } from "./delivery-helpers.ts";
import { type RawServer, startCountingListener } from "./fault-servers.ts";

const CLOSED: AddressPolicy = { allowPrivateNetworks: false, allowedCidrs: [] };

/** Loopback listeners on one port: 127.0.0.1, 127.0.0.2 and [::1]. */
async function startTraps(): Promise<{
  port: number;
  traps: RawServer[];
  connections(): number;
  stop(): Promise<void>;
}> {
  for (let tries = 0; tries < 10; tries++) {
    const first = await startCountingListener("127.0.0.1");
    const rest: RawServer[] = [];
    try {
      rest.push(await startCountingListener("127.0.0.2", first.port));
      rest.push(await startCountingListener("::1", first.port));
    } catch {
      for (const trap of [first, ...rest]) await trap.stop(); // the port is taken there: another one
      continue;
    }
    const traps = [first, ...rest];
    return {
      port: first.port,
      traps,
      connections: () => traps.reduce((n, trap) => n + trap.connections(), 0),
      stop: async () => {
        for (const trap of traps) await trap.stop();
      },
    };
  }
  throw new Error("no port free on 127.0.0.1, 127.0.0.2 and ::1 at once");
}

/** Addresses whose packets stay on this machine (connecting to them reaches a loopback listener). */
function staysLocal(ip: IpAddress): boolean {
  const b = ip.bytes;
  if (ip.version === 4) return b[0] === 127 || b.every((x) => x === 0);
  const head = b.subarray(0, 10).every((x) => x === 0);
  if (head && b[10] === 0 && b[11] === 0)
    return b.subarray(12, 15).every((x) => x === 0) && (b[15] ?? 0) <= 1; // :: and ::1
  return head && b[10] === 0xff && b[11] === 0xff && (b[12] === 127 || b.subarray(12).every((x) => x === 0));
}

let canary: Promise<void> | undefined;

/**
 * Proof, on loopback only, that the client refuses a literal and a looked-up address before
 * connecting: required before a test hands it an address outside loopback, so that a client that
 * skips its checks fails here instead of sending packets out.
 */
function clientRefusesOnLoopback(): Promise<void> {
  canary ??= (async () => {
    const client = createHttpClient({
      policy: CLOSED,
      userAgent: "test",
      resolve: tableResolver({
        "canary.test": ["127.0.0.1"],
        "canary-multi.test": ["127.0.0.2", "::1", "127.0.0.1"],
      }).resolve,
    });
    try {
      for (const url of [
        `http://127.0.0.1:${traps.port}/`,
        `http://[::1]:${traps.port}/`,
        `http://canary.test:${traps.port}/`,
        `http://canary-multi.test:${traps.port}/`,
      ]) {
        const before = traps.connections();
        const response = await client.send({ url, headers: {}, body: "{}", timeoutMs: 2000 });
        if (response.error !== "blocked_address" || traps.connections() !== before)
          throw new Error(
            `the client did not refuse ${url} (${response.error}): no address outside loopback is tried`,
          );
      }
    } finally {
      client.close();
    }
  })();
  return canary;
}

/**
 * Fails the test, before anything is sent, unless `policy` refuses every address; for an address
 * outside loopback, also unless the client is known to enforce its policy (see the canary above).
 */
async function guardBeforeSending(addresses: string[], policy: AddressPolicy = CLOSED) {
  for (const address of addresses) {
    const ip = parseIp(address);
    expect(ip, `${address} should be an IP address`).not.toBeNull();
    expect(addressBlockReason(ip!, policy), `${address} must be refused by the policy`).not.toBeNull();
    if (!staysLocal(ip!)) await clientRefusesOnLoopback();
  }
}

const hostOf = (url: string) => new URL(url).hostname;

/** A resolver seam from a table; unknown names fail like NXDOMAIN (no real DNS is ever asked). */
function tableResolver(table: Record<string, string[]>) {
  const asked: string[] = [];
  const resolve = async (hostname: string): Promise<LookupAddress[]> => {
    asked.push(hostname);
    const addresses = table[hostname];
    if (!addresses)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };
  return { resolve, asked };
}

let t: TestDaemon | undefined;
let r: Receiver | undefined;
let traps: Awaited<ReturnType<typeof startTraps>>;
let api: ReturnType<typeof deliveryApi>;
let caseNo = 0;

beforeAll(async () => {
  traps = await startTraps();
});
afterAll(async () => {
  await traps.stop();
});
afterEach(async () => {
  await r?.stop();
  await t?.close();
  r = t = undefined;
});

async function setup(delivery: string, table: Record<string, string[]> = {}, schedule = "[20ms]") {
  const resolver = tableResolver(table);
  t = await createTestDaemon({
    clock: systemClock,
    yaml: `delivery:\n  retry_schedule: ${schedule}\n${delivery}\nshutdown_grace: 1s`,
    resolve: resolver.resolve,
  });
  r = await startReceiver();
  await t.daemon.start();
  api = deliveryApi(t);
  return { t, r, asked: resolver.asked };
}

/** Subscribes `url` (under the API) to a type of its own, publishes one event, and waits for the end. */
async function deliverOnce(url: string, final: "failed" | "success" | "exhausted") {
  const type = `ssrf.case${++caseNo}`;
  const hook = await api.insertWebhook(url, [type]);
  await api.publish(type);
  const [delivery] = await api.allIn(hook.id, final, 1, 5000);
  const attempts = await api.attempts(delivery.id);
  await t!.daemon.dispatcher.idle();
  return { delivery, attempts } as { delivery: Json; attempts: Json[] };
}

async function expectBlocked(url: string) {
  const before = traps.connections();
  const { delivery, attempts } = await deliverOnce(url, "failed");
  expect(delivery).toMatchObject({ attempts: 1, response_status_code: null });
  expect(attempts.map((a) => [a.error, a.response_status_code])).toEqual([["blocked_address", null]]);
  expect(traps.connections()).toBe(before);
}

describe("literal addresses, allow_private_networks: false", () => {
  // [as written in the URL, what it is]
  const literals: [string, string][] = [
    ["127.0.0.1", "loopback"],
    ["127.1", "loopback, short form"],
    ["0x7f.1", "loopback, hex short form"],
    ["0x7f000001", "loopback, one hex number"],
    ["2130706433", "loopback, one decimal number"],
    ["017700000001", "loopback, one octal number"],
    ["0177.0.0.1", "loopback, octal first part"],
    ["127.0.0.1.", "loopback, trailing dot"],
    ["127.255.255.254", "loopback, end of 127/8"],
    ["0.0.0.0", "unspecified"],
    ["0", "unspecified, one number"],
    ["10.0.0.1", "private 10/8"],
    ["10.255.255.255", "private 10/8, last"],
    ["172.16.0.1", "private 172.16/12, first"],
    ["172.31.255.254", "private 172.16/12, last"],
    ["192.168.1.1", "private 192.168/16"],
    ["169.254.169.254", "link-local: cloud metadata"],
    ["0xa9.0xfe.0xa9.0xfe", "link-local: metadata in hex"],
    ["100.64.0.1", "shared CGNAT 100.64/10"],
    ["100.127.255.254", "shared CGNAT 100.64/10, last"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast (SSDP)"],
    ["255.255.255.255", "broadcast"],
    ["[::1]", "IPv6 loopback"],
    ["[0:0:0:0:0:0:0:1]", "IPv6 loopback, long form"],
    ["[::]", "IPv6 unspecified"],
    ["[::ffff:127.0.0.1]", "IPv4-mapped loopback"],
    ["[::ffff:7f00:1]", "IPv4-mapped loopback, hex"],
    ["[::ffff:a9fe:a9fe]", "IPv4-mapped metadata"],
    ["[::127.0.0.1]", "IPv4-compatible loopback"],
    ["[64:ff9b::a9fe:a9fe]", "NAT64 of the metadata address"],
    ["[64:ff9b::7f00:1]", "NAT64 of loopback"],
    ["[2002:7f00:1::]", "6to4 of loopback"],
    ["[fe80::1]", "IPv6 link-local"],
    ["[fc00::1]", "IPv6 unique-local"],
    ["[fd12:3456::1]", "IPv6 unique-local, fd"],
    ["[ff02::1]", "IPv6 multicast"],
  ];

  test.each(literals)("%s (%s): blocked_address, failed, no connection", async (host) => {
    const { asked } = await setup("  allow_private_networks: false");
    const url = `http://${host}:${traps.port}/hooks`;
    await guardBeforeSending([hostOf(url)]);
    await expectBlocked(url);
    expect(asked).toEqual([]); // refused as a literal, before any lookup
  });

  test("https and a path or credentials in the URL change nothing", async () => {
    await setup("  allow_private_networks: false");
    for (const url of [
      `https://127.0.0.1:${traps.port}/hooks`,
      `http://user:pass@169.254.169.254:${traps.port}/latest/meta-data/`,
      `http://[::1]:${traps.port}/?next=http://example.com`,
    ]) {
      await guardBeforeSending([hostOf(url)]);
      await expectBlocked(url);
    }
  });
});

describe("DNS names, allow_private_networks: false", () => {
  const table: Record<string, string[]> = {
    "loopback.test": ["127.0.0.1"],
    localhost: ["127.0.0.1", "::1"],
    "other-loopback.test": ["127.0.0.2"],
    "ten.test": ["10.1.2.3"],
    "rfc1918-172.test": ["172.20.0.1"],
    "rfc1918-192.test": ["192.168.0.10"],
    "metadata.test": ["169.254.169.254"],
    "cgnat.test": ["100.64.1.1"],
    "unspecified.test": ["0.0.0.0"],
    "multicast.test": ["224.0.0.251"],
    "v6-loopback.test": ["::1"],
    "v6-unspecified.test": ["::"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "nat64.test": ["64:ff9b::a9fe:a9fe"],
    "link-local.test": ["fe80::1"],
    "ula.test": ["fd00::1"],
    "all-private.test": ["10.0.0.1", "192.168.0.1", "127.0.0.1"],
  };

  test.each(Object.keys(table))("%s: refused in the lookup, before connecting", async (name) => {
    const { asked } = await setup("  allow_private_networks: false", table);
    await guardBeforeSending(table[name]!);
    await expectBlocked(`http://${name}:${traps.port}/hooks`);
    expect(asked).toContain(name);
  });

  test("over https too: every name refused in the lookup, before connecting", async () => {
    // https takes another path (node:https with a lookup hook) than plain http's pinned address.
    const { asked } = await setup("  allow_private_networks: false", table);
    for (const name of Object.keys(table)) {
      await guardBeforeSending(table[name]!);
      await expectBlocked(`https://${name}:${traps.port}/hooks`);
      expect(asked).toContain(name);
    }
  }, 30_000);

  test("a name with one public and one private address is refused as a whole, in either order", async () => {
    // First, on loopback only: 127.0.0.1 opened by allowed_cidrs plays the public address and
    // 127.0.0.2 the private one. Refusing this proves the client checks every address before
    // connecting; only then is a real public address handed out below (it is never connected to).
    const standIn = createHttpClient({
      policy: { allowPrivateNetworks: false, allowedCidrs: [parseCidr("127.0.0.1/32") as Cidr] },
      userAgent: "test",
      resolve: tableResolver({ a: ["127.0.0.1", "127.0.0.2"], b: ["127.0.0.2", "127.0.0.1"] }).resolve,
    });
    try {
      for (const name of ["a", "b"]) {
        const before = traps.connections();
        const response = await standIn.send({
          url: `http://${name}:${traps.port}/`,
          headers: {},
          body: "{}",
          timeoutMs: 2000,
        });
        expect(response.error).toBe("blocked_address");
        expect(traps.connections()).toBe(before);
      }
    } finally {
      standIn.close();
    }

    const public4 = "93.184.215.14";
    expect(addressBlockReason(parseIp(public4)!, CLOSED)).toBeNull();
    await guardBeforeSending(["10.0.0.7", "169.254.169.254"]);
    const { asked } = await setup("  allow_private_networks: false", {
      "public-then-private.test": [public4, "10.0.0.7"],
      "private-then-public.test": ["169.254.169.254", public4],
      "public-then-v6-loopback.test": [public4, "::1"],
    });
    for (const name of [
      "public-then-private.test",
      "private-then-public.test",
      "public-then-v6-loopback.test",
    ])
      await expectBlocked(`http://${name}:${traps.port}/hooks`);
    expect(asked).toHaveLength(3);
  });

  test("a name that does not resolve is a dns error, retried (not blocked)", async () => {
    await setup("  allow_private_networks: false");
    const { attempts } = await deliverOnce(`http://nowhere.test:${traps.port}/`, "exhausted");
    expect(attempts.map((a) => a.error)).toEqual(["dns", "dns"]);
  });
});

describe("redirects, allow_private_networks: false", () => {
  test("a redirect to a private address (literal or name) is not followed: redirect, no connection there", async () => {
    const { r } = await setup(
      "  allow_private_networks: false\n  allowed_cidrs: [127.0.0.1/32]",
      { "internal.test": ["127.0.0.2"] },
      "[20ms, 20ms]",
    );
    const locations = [
      `http://127.0.0.2:${traps.port}/admin`,
      `http://[::1]:${traps.port}/`,
      `http://internal.test:${traps.port}/`,
    ];
    r.script(
      "/moved",
      ...locations.map((location, i) => ({
        kind: "redirect" as const,
        status: [302, 307, 308][i],
        location,
      })),
    );
    const before = traps.connections();
    const { delivery, attempts } = await deliverOnce(r.url("/moved"), "exhausted");
    expect(delivery.attempts).toBe(3);
    expect(attempts.map((a) => [a.response_status_code, a.error])).toEqual([
      [302, "redirect"],
      [307, "redirect"],
      [308, "redirect"],
    ]);
    expect(attempts.map((a) => a.response_headers.location)).toEqual(locations);
    expect(traps.connections()).toBe(before);
    expect(r.received("/moved")).toHaveLength(3);
  });
});

describe("what the config opens", () => {
  test("allow_private_networks: true opens private targets (a receiver on 127.0.0.1, by address and by name)", async () => {
    const { r, asked } = await setup("  allow_private_networks: true", { "hooks.test": ["127.0.0.1"] });
    await deliverOnce(r.url("/literal"), "success");
    await deliverOnce(`http://hooks.test:${r.port}/named`, "success");
    expect(r.received("/literal")).toHaveLength(1);
    expect(r.received("/named")).toHaveLength(1);
    expect(asked).toEqual(["hooks.test"]);
  });

  test("allowed_cidrs: [127.0.0.0/8] opens 127/8 alone: 10.x, metadata, ::1 and names resolving elsewhere stay refused", async () => {
    const policy: AddressPolicy = {
      allowPrivateNetworks: false,
      allowedCidrs: [parseCidr("127.0.0.0/8") as Cidr],
    };
    const { t, r } = await setup("  allow_private_networks: false\n  allowed_cidrs: [127.0.0.0/8]", {
      "hooks.test": ["127.0.0.1"],
      "ten.test": ["10.0.0.1"],
      "mixed.test": ["127.0.0.1", "192.168.0.1"],
    });
    // Open: by address (created through the API, which agrees) and by name.
    const created = await t.request("POST", "/v1/webhooks", {
      body: { url: r.url("/open"), events: ["open.a"] },
    });
    expect(created.status).toBe(201);
    await api.publish("open.a");
    await r.waitForRequests(1, "/open");
    await deliverOnce(`http://hooks.test:${r.port}/named`, "success");
    expect(r.received("/named")).toHaveLength(1);

    // Still closed, at creation time too.
    const refused = await t.request("POST", "/v1/webhooks", {
      body: { url: `http://10.0.0.1:${traps.port}/`, events: ["*"] },
    });
    expect(refused.status).toBe(422);
    for (const url of [
      `http://10.0.0.1:${traps.port}/`,
      `http://169.254.169.254:${traps.port}/`,
      `http://192.168.0.1:${traps.port}/`,
      `http://[::1]:${traps.port}/`,
      `http://[fc00::1]:${traps.port}/`,
    ]) {
      await guardBeforeSending([hostOf(url)], policy);
      await expectBlocked(url);
    }
    await guardBeforeSending(["10.0.0.1"], policy);
    await expectBlocked(`http://ten.test:${traps.port}/`);
    await expectBlocked(`http://mixed.test:${traps.port}/`);
  });
});
