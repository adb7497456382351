// IP addresses as bytes, CIDR ranges, and the address policy of SPEC §3 (SSRF): which targets are
// refused unless the config opens them. Pure: no DNS here; the HTTP client calls it per address.

export interface IpAddress {
  version: 4 | 6;
  bytes: Uint8Array;
}

export interface Cidr {
  version: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
  text: string;
}

export function parseIp(text: string): IpAddress | null {
  let host = text.trim();
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  if (host.includes(":")) {
    const bytes = parseIpv6(host);
    return bytes ? { version: 6, bytes } : null;
  }
  const bytes = parseIpv4(host);
  return bytes ? { version: 4, bytes } : null;
}

function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i] as string;
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    bytes[i] = value;
  }
  return bytes;
}

function parseIpv6(input: string): Uint8Array | null {
  const zone = input.indexOf("%");
  const text = zone >= 0 ? input.slice(0, zone) : input;
  if (text.length === 0 || text.length > 45) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = parseGroups(halves[0] as string, halves.length === 1);
  const tail = halves.length === 2 ? parseGroups(halves[1] as string, true) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    bytes[i * 2] = group >> 8;
    bytes[i * 2 + 1] = group & 0xff;
  });
  return bytes;
}

/** Hex groups; the last may be a dotted IPv4 address when `mayEndWithIpv4`. */
function parseGroups(text: string, mayEndWithIpv4: boolean): number[] | null {
  if (text === "") return [];
  const parts = text.split(":");
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (i === parts.length - 1 && mayEndWithIpv4 && part.includes(".")) {
      const v4 = parseIpv4(part);
      if (!v4) return null;
      groups.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      continue;
    }
    if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return null;
    groups.push(Number.parseInt(part, 16));
  }
  return groups;
}

export function parseCidr(text: string): Cidr | null {
  const [addressText, prefixText, ...rest] = text.trim().split("/");
  if (rest.length > 0 || addressText === undefined) return null;
  const address = parseIp(addressText);
  if (!address) return null;
  const max = address.version === 4 ? 32 : 128;
  const prefix =
    prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (!(prefix >= 0 && prefix <= max)) return null;
  return { ...address, prefix, text: text.trim() };
}

export function cidrContains(cidr: Cidr, address: IpAddress): boolean {
  if (cidr.version !== address.version) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((cidr.bytes[i] as number) & mask) !== ((address.bytes[i] as number) & mask)) return false;
  }
  return true;
}

const range = (text: string, reason: string) => ({ cidr: parseCidr(text) as Cidr, reason });

/** Ranges refused as delivery targets unless the config opens them. */
const BLOCKED_V4 = [
  range("0.0.0.0/8", "unspecified"),
  range("10.0.0.0/8", "private"),
  range("100.64.0.0/10", "private"),
  range("127.0.0.0/8", "loopback"),
  range("169.254.0.0/16", "link_local"),
  range("172.16.0.0/12", "private"),
  range("192.0.0.0/24", "reserved"),
  range("192.0.2.0/24", "reserved"),
  range("192.88.99.0/24", "reserved"),
  range("192.168.0.0/16", "private"),
  range("198.18.0.0/15", "reserved"),
  range("198.51.100.0/24", "reserved"),
  range("203.0.113.0/24", "reserved"),
  range("224.0.0.0/4", "multicast"),
  range("240.0.0.0/4", "reserved"),
];

const BLOCKED_V6 = [
  range("::/128", "unspecified"),
  range("::1/128", "loopback"),
  range("64:ff9b:1::/48", "private"),
  range("100::/64", "reserved"),
  range("2001:db8::/32", "reserved"),
  range("fc00::/7", "unique_local"),
  range("fe80::/10", "link_local"),
  range("fec0::/10", "link_local"),
  range("ff00::/8", "multicast"),
];

/** IPv6 forms that carry an IPv4 address, which is then judged instead. */
const EMBEDDED_V4: { cidr: Cidr; extract: (bytes: Uint8Array) => Uint8Array }[] = [
  { cidr: parseCidr("::ffff:0:0/96") as Cidr, extract: (b) => b.slice(12, 16) }, // IPv4-mapped
  { cidr: parseCidr("::/96") as Cidr, extract: (b) => b.slice(12, 16) }, // IPv4-compatible (deprecated)
  { cidr: parseCidr("64:ff9b::/96") as Cidr, extract: (b) => b.slice(12, 16) }, // NAT64
  { cidr: parseCidr("2002::/16") as Cidr, extract: (b) => b.slice(2, 6) }, // 6to4
  { cidr: parseCidr("2001::/32") as Cidr, extract: (b) => b.slice(12, 16).map((x) => x ^ 0xff) }, // Teredo client
];

export interface AddressPolicy {
  allowPrivateNetworks: boolean;
  allowedCidrs: readonly Cidr[];
}

/** Why an address may not be a delivery target, or null when it may. */
export function addressBlockReason(address: IpAddress, policy: AddressPolicy): string | null {
  if (policy.allowPrivateNetworks) return null;
  if (policy.allowedCidrs.some((cidr) => cidrContains(cidr, address))) return null;
  if (address.version === 4) {
    return BLOCKED_V4.find((r) => cidrContains(r.cidr, address))?.reason ?? null;
  }
  const direct = BLOCKED_V6.find((r) => cidrContains(r.cidr, address));
  if (direct) return direct.reason;
  for (const form of EMBEDDED_V4) {
    if (cidrContains(form.cidr, address)) {
      return addressBlockReason({ version: 4, bytes: form.extract(address.bytes) }, policy);
    }
  }
  return null;
}

export function formatIp(address: IpAddress): string {
  if (address.version === 4) return Array.from(address.bytes).join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2)
    groups.push((((address.bytes[i] as number) << 8) | (address.bytes[i + 1] as number)).toString(16));
  return groups.join(":");
}
