// Unit tests of the address parsing and the SSRF address policy (SPEC §3 SSRF) in src/domain/ip.ts.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  type AddressPolicy,
  addressBlockReason,
  type Cidr,
  cidrContains,
  formatIp,
  type IpAddress,
  parseCidr,
  parseIp,
} from "../../src/domain/ip.ts";

const ip = (text: string): IpAddress => {
  const parsed = parseIp(text);
  if (!parsed) throw new Error(`test setup: ${text} does not parse`);
  return parsed;
};
const cidr = (text: string): Cidr => {
  const parsed = parseCidr(text);
  if (!parsed) throw new Error(`test setup: ${text} does not parse`);
  return parsed;
};
const bytes = (text: string) => Array.from(ip(text).bytes);

const CLOSED: AddressPolicy = { allowPrivateNetworks: false, allowedCidrs: [] };
const OPEN: AddressPolicy = { allowPrivateNetworks: true, allowedCidrs: [] };
const reason = (text: string, policy: AddressPolicy = CLOSED) => addressBlockReason(ip(text), policy);

describe("parseIp", () => {
  test("dotted IPv4", () => {
    expect(parseIp("192.168.0.1")).toEqual({ version: 4, bytes: new Uint8Array([192, 168, 0, 1]) });
    expect(bytes("0.0.0.0")).toEqual([0, 0, 0, 0]);
    expect(bytes("255.255.255.255")).toEqual([255, 255, 255, 255]);
    expect(bytes(" 8.8.8.8 ")).toEqual([8, 8, 8, 8]);
  });

  test("refuses what is not a canonical dotted quad (the URL parser normalises hosts before this)", () => {
    for (const text of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.1",
      "1.2.3.-1",
      "01.2.3.4",
      "0x7f.0.0.1",
      "127.1",
      "2130706433",
      "1.2.3.4.",
      "a.b.c.d",
      "1..2.3",
      "example.com",
    ]) {
      expect(parseIp(text)).toBeNull();
    }
  });

  test("IPv6 in full, compressed, bracketed, with a zone and with an embedded IPv4", () => {
    const loopback = [...new Array(15).fill(0), 1];
    expect(bytes("::1")).toEqual(loopback);
    expect(bytes("[::1]")).toEqual(loopback);
    expect(bytes("0:0:0:0:0:0:0:1")).toEqual(loopback);
    expect(bytes("::")).toEqual(new Array(16).fill(0));
    expect(bytes("fe80::1%eth0")).toEqual(bytes("fe80::1"));
    expect(bytes("::ffff:127.0.0.1")).toEqual(bytes("::ffff:7f00:1"));
    expect(bytes("1:2:3:4:5:6:1.2.3.4")).toEqual(bytes("1:2:3:4:5:6:102:304"));
    expect(bytes("2001:DB8::A")).toEqual(bytes("2001:db8::a"));
    expect(bytes("1:2:3:4:5:6:7::")).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0]);
    expect(parseIp("::1")?.version).toBe(6);
  });

  test("refuses malformed IPv6", () => {
    for (const text of [
      ":::",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "::1:2:3:4:5:6:7:8",
      "12345::",
      "g::1",
      ":1::",
      "1.2.3.4::",
      "::1.2.3.4:5",
      "::256.0.0.1",
      "1:2:3:4:5:6:7:1.2.3.4",
      "%eth0",
      "[::1",
    ]) {
      expect(parseIp(text)).toBeNull();
    }
  });

  test("formatIp and parseIp round-trip every address", () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
        const parsed = parseIp(text);
        expect(parsed).not.toBeNull();
        expect(parseIp(formatIp(parsed as IpAddress))).toEqual(parsed);
      }),
      { numRuns: 300 },
    );
  });
});

describe("parseCidr", () => {
  test("ranges, and a bare address as a single-address range", () => {
    expect(parseCidr("10.0.0.0/8")).toMatchObject({ version: 4, prefix: 8, text: "10.0.0.0/8" });
    expect(parseCidr("fc00::/7")).toMatchObject({ version: 6, prefix: 7 });
    expect(parseCidr("1.2.3.4")).toMatchObject({ version: 4, prefix: 32 });
    expect(parseCidr("::1")).toMatchObject({ version: 6, prefix: 128 });
    expect(parseCidr("0.0.0.0/0")?.prefix).toBe(0);
    expect(parseCidr("::/128")?.prefix).toBe(128);
  });

  test("refuses bad prefixes and addresses", () => {
    for (const text of [
      "",
      "/8",
      "10.0.0.0/",
      "10.0.0.0/33",
      "::/129",
      "10.0.0.0/-1",
      "10.0.0.0/8/8",
      "10.0.0.0/x",
      "10.0.0.0/1000",
      "10.0.0/8",
      "localhost/8",
    ]) {
      expect(parseCidr(text)).toBeNull();
    }
  });
});

describe("cidrContains", () => {
  test("includes exactly the range, at both ends", () => {
    const r = cidr("172.16.0.0/12");
    expect(cidrContains(r, ip("172.16.0.0"))).toBe(true);
    expect(cidrContains(r, ip("172.31.255.255"))).toBe(true);
    expect(cidrContains(r, ip("172.15.255.255"))).toBe(false);
    expect(cidrContains(r, ip("172.32.0.0"))).toBe(false);
  });

  test("prefixes that are not whole bytes, /0, single addresses, and host bits in the range", () => {
    expect(cidrContains(cidr("100.64.0.0/10"), ip("100.127.255.255"))).toBe(true);
    expect(cidrContains(cidr("100.64.0.0/10"), ip("100.128.0.0"))).toBe(false);
    expect(cidrContains(cidr("0.0.0.0/0"), ip("203.0.113.9"))).toBe(true);
    expect(cidrContains(cidr("1.2.3.4/32"), ip("1.2.3.4"))).toBe(true);
    expect(cidrContains(cidr("1.2.3.4/32"), ip("1.2.3.5"))).toBe(false);
    expect(cidrContains(cidr("10.9.9.9/8"), ip("10.0.0.1"))).toBe(true);
    expect(cidrContains(cidr("fe80::/10"), ip("febf:ffff::1"))).toBe(true);
    expect(cidrContains(cidr("fe80::/10"), ip("fec0::1"))).toBe(false);
  });

  test("never matches across versions", () => {
    expect(cidrContains(cidr("0.0.0.0/0"), ip("::1"))).toBe(false);
    expect(cidrContains(cidr("::/0"), ip("127.0.0.1"))).toBe(false);
  });

  test("agrees with a bitwise comparison for random IPv4 ranges", () => {
    const toInt = (a: IpAddress) => a.bytes.reduce((n, b) => n * 256 + b, 0);
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 32 }), (base, other, prefix) => {
        const size = 2 ** (32 - prefix);
        const start = Math.floor(toInt(ip(base)) / size);
        expect(cidrContains(cidr(`${base}/${prefix}`), ip(other))).toBe(
          Math.floor(toInt(ip(other)) / size) === start,
        );
      }),
      { numRuns: 300 },
    );
  });
});

describe("addressBlockReason", () => {
  test("refuses loopback, private, link-local, unique-local, multicast and unspecified addresses", () => {
    const cases: [string, string][] = [
      ["127.0.0.1", "loopback"],
      ["127.255.255.254", "loopback"],
      ["0.0.0.0", "unspecified"],
      ["10.0.0.1", "private"],
      ["10.255.255.255", "private"],
      ["172.16.0.1", "private"],
      ["172.31.255.255", "private"],
      ["192.168.1.1", "private"],
      ["100.64.0.1", "private"],
      ["100.127.255.255", "private"],
      ["169.254.169.254", "link_local"],
      ["224.0.0.1", "multicast"],
      ["239.255.255.250", "multicast"],
      ["255.255.255.255", "reserved"],
      ["192.0.2.1", "reserved"],
      ["::1", "loopback"],
      ["::", "unspecified"],
      ["fe80::1", "link_local"],
      ["fc00::1", "unique_local"],
      ["fd12:3456::1", "unique_local"],
      ["ff02::1", "multicast"],
      ["2001:db8::1", "reserved"],
    ];
    for (const [address, expected] of cases) expect([address, reason(address)]).toEqual([address, expected]);
  });

  test("judges the IPv4 address carried in an IPv6 one (mapped, compatible, NAT64, 6to4, Teredo)", () => {
    const cases: [string, string][] = [
      ["::ffff:127.0.0.1", "loopback"],
      ["::ffff:7f00:1", "loopback"],
      ["::ffff:a9fe:a9fe", "link_local"],
      ["::ffff:10.0.0.1", "private"],
      ["::127.0.0.1", "loopback"],
      ["64:ff9b::a9fe:a9fe", "link_local"],
      ["64:ff9b::169.254.169.254", "link_local"],
      ["64:ff9b::7f00:1", "loopback"],
      ["2002:7f00:1::", "loopback"],
      ["2002:c0a8:101::1", "private"],
      // Teredo stores the client address with every bit inverted: 80ff:fffe is 127.0.0.1.
      ["2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"],
    ];
    for (const [address, expected] of cases) expect([address, reason(address)]).toEqual([address, expected]);
    expect(reason("::ffff:8.8.8.8")).toBeNull();
    expect(reason("64:ff9b::808:808")).toBeNull();
  });

  test("accepts public addresses", () => {
    for (const address of [
      "8.8.8.8",
      "1.1.1.1",
      "172.32.0.1",
      "172.15.255.255",
      "100.128.0.1",
      "2606:4700::1111",
    ])
      expect([address, reason(address)]).toEqual([address, null]);
  });

  test("every IPv4-mapped address gets the same verdict as its IPv4 address", () => {
    fc.assert(
      fc.property(fc.ipV4(), (v4) => {
        expect(reason(`::ffff:${v4}`)).toBe(reason(v4));
      }),
      { numRuns: 500 },
    );
  });

  test("allow_private_networks opens everything", () => {
    for (const address of ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fe80::1", "::ffff:127.0.0.1"])
      expect(reason(address, OPEN)).toBeNull();
  });

  test("allowed_cidrs opens exactly the named range, and the IPv4-mapped form of it", () => {
    const policy: AddressPolicy = {
      allowPrivateNetworks: false,
      allowedCidrs: [cidr("10.1.0.0/16"), cidr("fd00:1::/32")],
    };
    expect(reason("10.1.0.0", policy)).toBeNull();
    expect(reason("10.1.255.255", policy)).toBeNull();
    expect(reason("::ffff:10.1.2.3", policy)).toBeNull();
    expect(reason("fd00:1::5", policy)).toBeNull();
    expect(reason("10.0.255.255", policy)).toBe("private");
    expect(reason("10.2.0.0", policy)).toBe("private");
    expect(reason("::ffff:10.2.0.1", policy)).toBe("private");
    expect(reason("127.0.0.1", policy)).toBe("loopback");
    expect(reason("169.254.169.254", policy)).toBe("link_local");
    expect(reason("fd00:2::5", policy)).toBe("unique_local");
  });
});
