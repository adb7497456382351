// The subscription model and its field rules that are not plain shapes: the target URL policy and
// the custom header names a subscription may not set (SPEC §2 Webhooks).
import type { Filter } from "./filter.ts";
import { type AddressPolicy, addressBlockReason, parseIp } from "./ip.ts";
import type { Mode } from "./mode.ts";

export const DISABLED_REASONS = ["manual", "failing", "gone"] as const;
export type DisabledReason = (typeof DISABLED_REASONS)[number];

export const ORDERINGS = ["unordered", "fifo"] as const;
export type Ordering = (typeof ORDERINGS)[number];
/** `v1`: HMAC-SHA256 with a `whsec_` secret; `v1a`: Ed25519 with a key pair hookd makes. */
export const SIGNATURE_SCHEMES = ["v1", "v1a"] as const;
export type SignatureScheme = (typeof SIGNATURE_SCHEMES)[number];
export const MAX_RATE_LIMIT = 10_000;

export interface Webhook {
  id: string;
  tenantId: string;
  /** Its creator's mode: only events of this mode reach it. */
  mode: Mode;
  name: string;
  description: string | null;
  url: string;
  events: string[];
  accountIds: string[] | null;
  enabled: boolean;
  disabledReason: DisabledReason | null;
  timeoutSeconds: number;
  headers: Record<string, string>;
  metadata: Record<string, string>;
  maxInFlight: number;
  /** Matched against each event at fan-out; null delivers every event of its types and accounts. */
  filter: Filter | null;
  /** `fifo`: one attempt at a time, in event creation order (enforced by the claim). */
  ordering: Ordering;
  /** At most this many attempts started within any one second (enforced by the claim). */
  rateLimit: number | null;
  signatureScheme: SignatureScheme;
  /** The current signing secret (`whsec_…`), or for `v1a` the Ed25519 private key (`whsk_…`). */
  secret: string;
  /** Earlier secrets (or keys) still inside their rotation grace period; the dispatcher signs with these too. */
  previousSecrets: { secret: string; expiresAt: number }[];
  consecutiveFailures: number;
  /** Last success, creation or re-enabling: the start of the auto-disable window. */
  healthSince: number;
  createdAt: number;
  updatedAt: number;
}

/** Extra lease time beyond a subscription's timeout, so a live attempt never outlasts its lease. */
export const LEASE_MARGIN_MS = 5_000;

/** When a lease granted at `now` ends: the dispatcher's lease, or longer where the timeout needs it. */
export function leaseEnd(now: number, leaseMs: number, webhook: Pick<Webhook, "timeoutSeconds">): number {
  return now + Math.max(leaseMs, webhook.timeoutSeconds * 1000 + LEASE_MARGIN_MS);
}

/** How many attempts of the subscription may be in flight at once: 1 for a FIFO one, whatever is set. */
export function effectiveMaxInFlight(webhook: Pick<Webhook, "ordering" | "maxInFlight">): number {
  return webhook.ordering === "fifo" ? 1 : webhook.maxInFlight;
}

export interface UrlPolicy extends AddressPolicy {
  allowHttp: boolean;
}

export const MAX_URL_LENGTH = 2083;

/** Why `text` may not be a subscription URL, or null when it may. */
export function webhookUrlProblem(text: string, policy: UrlPolicy): string | null {
  if (text.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  if (text !== text.trim() || /\s/.test(text)) return "must not contain white space";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "must be an absolute URL";
  }
  if (url.protocol === "http:") {
    if (!policy.allowHttp) return "must use https (http is allowed only with delivery.allow_http)";
  } else if (url.protocol !== "https:") {
    return "must be an https URL";
  }
  if (url.username !== "" || url.password !== "") return "must not contain credentials";
  const host = url.hostname;
  if (host === "") return "must have a host";
  const ip = parseIp(host);
  if (ip) {
    const reason = addressBlockReason(ip, policy);
    return reason ? `targets a ${reason.replace("_", "-")} address, which is not allowed` : null;
  }
  if (policy.allowPrivateNetworks) return null;
  const bare = host.replace(/\.$/, "").toLowerCase();
  if (bare === "localhost" || bare.endsWith(".localhost")) return "targets localhost, which is not allowed";
  if (!bare.includes(".")) return "must have a domain name with a dot, or an IP address";
  return null;
}

/** Header names a subscription may not set: hop-by-hop, framing, and hookd's own `webhook-*`. */
const RESERVED_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "trailers",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function headerNameProblem(name: string): string | null {
  if (!TOKEN.test(name) || name.length > 256) return "is not a valid HTTP header name";
  const lower = name.toLowerCase();
  if (RESERVED_HEADERS.has(lower)) return "is set by hookd or by HTTP itself and cannot be overridden";
  if (lower.startsWith("webhook-")) return "webhook-* headers are reserved for the signature scheme";
  return null;
}

export function headerValueProblem(value: string): string | null {
  // Visible ASCII, spaces and tabs, and obs-text; no control characters (CR/LF would split headers).
  return /^[\t\x20-\x7e\x80-\xff]*$/.test(value) ? null : "contains characters not allowed in a header value";
}
