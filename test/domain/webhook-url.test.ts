// The subscription URL policy (SPEC §2 Webhooks URL rules, §3 SSRF): webhookUrlProblem directly, then
// the same refusals through POST /v1/webhooks on a daemon configured like production.
import { describe, expect, test } from "bun:test";
import { type Cidr, parseCidr } from "../../src/domain/ip.ts";
import { MAX_URL_LENGTH, type UrlPolicy, webhookUrlProblem } from "../../src/domain/webhook.ts";
import { createTestDaemon } from "../support/daemon.ts";

const STRICT: UrlPolicy = { allowHttp: false, allowPrivateNetworks: false, allowedCidrs: [] };
const PRIVATE_OK: UrlPolicy = { ...STRICT, allowPrivateNetworks: true };

/** Every literal spelling of a loopback, private, link-local, metadata, multicast or unspecified host. */
const BLOCKED_HOSTS = [
  "127.0.0.1",
  "127.0.0.53",
  "127.1",
  "0x7f.1",
  "0x7f000001",
  "2130706433",
  "017700000001",
  "0177.0.0.1",
  "127.0.0.1.",
  "%31%32%37.0.0.1",
  "0.0.0.0",
  "0",
  "10.0.0.1",
  "10.255.255.255",
  "172.16.0.1",
  "172.20.10.5",
  "172.31.255.255",
  "192.168.0.1",
  "192.168.255.255",
  "169.254.169.254",
  "0xa9.0xfe.0xa9.0xfe",
  "2852039166",
  "100.64.0.1",
  "100.127.255.255",
  "224.0.0.1",
  "[::1]",
  "[0:0:0:0:0:0:0:1]",
  "[::]",
  "[::ffff:127.0.0.1]",
  "[::ffff:7f00:1]",
  "[::ffff:169.254.169.254]",
  "[::ffff:10.0.0.1]",
  "[64:ff9b::a9fe:a9fe]",
  "[64:ff9b::169.254.169.254]",
  "[fe80::1]",
  "[fc00::1]",
  "[fd12::1]",
  "[ff02::1]",
];

const PUBLIC_HOSTS = [
  "example.com",
  "hooks.example.co.uk",
  "xn--bcher-kva.example",
  "8.8.8.8",
  "1.1.1.1",
  "172.32.0.1",
  "172.15.0.1",
  "100.128.0.1",
  "[2606:4700:4700::1111]",
  "[::ffff:8.8.8.8]",
];

const urlFor = (host: string, scheme = "https") => `${scheme}://${host}/hooks`;

describe("webhookUrlProblem", () => {
  test.each(BLOCKED_HOSTS)("refuses %s as a host without allow_private_networks", (host) => {
    expect(webhookUrlProblem(urlFor(host), STRICT)).toMatch(/address, which is not allowed$/);
    expect(webhookUrlProblem(`https://${host}:8443/hooks`, STRICT)).not.toBeNull();
    expect(webhookUrlProblem(urlFor(host), PRIVATE_OK)).toBeNull();
  });

  test("names the kind of address refused", () => {
    expect(webhookUrlProblem(urlFor("127.1"), STRICT)).toContain("loopback");
    expect(webhookUrlProblem(urlFor("169.254.169.254"), STRICT)).toContain("link-local");
    expect(webhookUrlProblem(urlFor("[64:ff9b::a9fe:a9fe]"), STRICT)).toContain("link-local");
    expect(webhookUrlProblem(urlFor("[fd12::1]"), STRICT)).toContain("unique-local");
    expect(webhookUrlProblem(urlFor("10.0.0.1"), STRICT)).toContain("private");
    expect(webhookUrlProblem(urlFor("[ff02::1]"), STRICT)).toContain("multicast");
  });

  test.each(PUBLIC_HOSTS)("accepts %s", (host) => {
    expect(webhookUrlProblem(urlFor(host), STRICT)).toBeNull();
    expect(webhookUrlProblem(`https://${host}:8443/a/b?c=d#e`, STRICT)).toBeNull();
  });

  test("localhost, *.localhost and names without a dot only with allow_private_networks", () => {
    for (const host of [
      "localhost",
      "LOCALHOST",
      "localhost.",
      "foo.localhost",
      "a.b.localhost",
      "intranet",
      "hookd-receiver",
    ]) {
      expect([host, webhookUrlProblem(urlFor(host), STRICT)]).not.toEqual([host, null]);
      expect([host, webhookUrlProblem(urlFor(host), PRIVATE_OK)]).toEqual([host, null]);
    }
    expect(webhookUrlProblem(urlFor("localhost"), STRICT)).toContain("localhost");
    expect(webhookUrlProblem(urlFor("intranet"), STRICT)).toContain("dot");
  });

  test("http only with allow_http; other schemes never", () => {
    expect(webhookUrlProblem("http://example.com/hooks", STRICT)).toContain("https");
    expect(webhookUrlProblem("http://example.com/hooks", { ...STRICT, allowHttp: true })).toBeNull();
    expect(webhookUrlProblem("HTTPS://EXAMPLE.COM/hooks", STRICT)).toBeNull();
    const anything: UrlPolicy = { allowHttp: true, allowPrivateNetworks: true, allowedCidrs: [] };
    for (const url of [
      "ftp://example.com/",
      "file:///etc/passwd",
      "gopher://example.com/",
      "ws://example.com/",
      "javascript:alert(1)",
      "data:text/plain,hi",
    ]) {
      expect([url, webhookUrlProblem(url, anything)]).not.toEqual([url, null]);
    }
  });

  test("refuses credentials, relative URLs, white space and empty hosts", () => {
    const anything: UrlPolicy = { allowHttp: true, allowPrivateNetworks: true, allowedCidrs: [] };
    for (const url of [
      "https://user:pw@example.com/",
      "https://user@example.com/",
      "https://:pw@example.com/",
    ]) {
      expect(webhookUrlProblem(url, anything)).toContain("credentials");
    }
    for (const url of [
      "",
      "/hooks",
      "example.com/hooks",
      "https://",
      " https://example.com",
      "https://exa mple.com",
    ]) {
      expect([url, webhookUrlProblem(url, anything)]).not.toEqual([url, null]);
    }
  });

  test(`at most ${MAX_URL_LENGTH} characters`, () => {
    const base = "https://example.com/";
    const fits = base + "a".repeat(MAX_URL_LENGTH - base.length);
    expect(fits.length).toBe(2083);
    expect(webhookUrlProblem(fits, STRICT)).toBeNull();
    expect(webhookUrlProblem(`${fits}a`, STRICT)).toContain(String(MAX_URL_LENGTH));
  });

  test("allowed_cidrs opens exactly the named range, and IPv4-mapped IPv6 forms of it", () => {
    const policy: UrlPolicy = {
      ...STRICT,
      allowedCidrs: [parseCidr("10.1.0.0/16") as Cidr, parseCidr("fd00:1::/32") as Cidr],
    };
    for (const host of [
      "10.1.0.1",
      "10.1.255.255",
      "0xa.1.2.3",
      "[::ffff:10.1.2.3]",
      "[::ffff:a01:203]",
      "[fd00:1::9]",
    ]) {
      expect([host, webhookUrlProblem(urlFor(host), policy)]).toEqual([host, null]);
    }
    for (const host of [
      "10.0.255.255",
      "10.2.0.1",
      "[::ffff:10.2.0.1]",
      "127.0.0.1",
      "169.254.169.254",
      "[fd00:2::9]",
      "localhost",
    ]) {
      expect([host, webhookUrlProblem(urlFor(host), policy)]).not.toEqual([host, null]);
    }
  });
});

describe("POST /v1/webhooks on a daemon that allows neither http nor private networks", () => {
  const strictYaml =
    "delivery:\n  allow_private_networks: false\n  allow_http: false\n  allowed_cidrs: [10.1.0.0/16]";

  test("refuses every blocked host, http, credentials, localhost and long URLs with a 422 on url", async () => {
    const t = await createTestDaemon({ yaml: strictYaml });
    try {
      const refused = [
        ...BLOCKED_HOSTS.map((host) => urlFor(host)),
        "http://example.com/hooks",
        "https://user:pw@example.com/hooks",
        "https://localhost/hooks",
        "https://foo.localhost/hooks",
        "https://receiver/hooks",
        "https://10.2.0.1/hooks",
        `https://example.com/${"a".repeat(MAX_URL_LENGTH)}`,
      ];
      for (const url of refused) {
        const res = await t.request("POST", "/v1/webhooks", { body: { url, events: ["invoice.paid"] } });
        expect([url, res.status]).toEqual([url, 422]);
        expect(res.body.error.code).toBe("validation_failed");
        expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual(["url"]);
      }
      for (const url of [
        "https://example.com/hooks",
        "https://10.1.2.3/hooks",
        "https://[::ffff:10.1.2.3]/hooks",
      ]) {
        const res = await t.request("POST", "/v1/webhooks", { body: { url, events: ["invoice.paid"] } });
        expect([url, res.status]).toEqual([url, 201]);
      }
    } finally {
      await t.close();
    }
  });

  test("PATCH applies the same URL policy", async () => {
    const t = await createTestDaemon({ yaml: strictYaml });
    try {
      const created = await t.request("POST", "/v1/webhooks", {
        body: { url: "https://example.com/hooks", events: ["invoice.paid"] },
      });
      const res = await t.request("PATCH", `/v1/webhooks/${created.body.id}`, {
        body: { url: "https://[::ffff:169.254.169.254]/latest/meta-data" },
      });
      expect(res.status).toBe(422);
      expect(res.body.error.details[0].path).toBe("url");
      expect((await t.request("GET", `/v1/webhooks/${created.body.id}`)).body.url).toBe(
        "https://example.com/hooks",
      );
    } finally {
      await t.close();
    }
  });

  test("the test defaults (allow_http and private networks on) accept the same URLs", async () => {
    const t = await createTestDaemon();
    try {
      for (const url of ["http://127.0.0.1:9/hooks", "https://localhost/hooks", "https://[::1]/hooks"]) {
        const res = await t.request("POST", "/v1/webhooks", { body: { url, events: ["invoice.paid"] } });
        expect([url, res.status]).toEqual([url, 201]);
      }
    } finally {
      await t.close();
    }
  });
});
