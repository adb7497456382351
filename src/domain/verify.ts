// Signature verification for subscribers, with reasons (`hookd verify`): the Standard Webhooks
// check, with a `whsec_` secret (`v1`, HMAC-SHA256) or a `whpk_` public key (`v1a`, Ed25519), plus
// the diagnoses of the usual mistakes when it fails.
import { createHmac, type KeyObject, timingSafeEqual, verify } from "node:crypto";
import { decodePublicKey, decodeSecret, PUBLIC_KEY_PREFIX, SECRET_PREFIX } from "./secrets.ts";

export interface VerifyInput {
  /** The webhook's secret (v1); give this or `publicKey`. */
  secret?: string;
  /** The webhook's public key (v1a); give this or `secret`. */
  publicKey?: string;
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  /** Unix seconds. */
  now: number;
  toleranceSeconds: number;
}

export type VerifyResult = { valid: true; reason: string } | { valid: false; reason: string };

/** How one scheme checks a content against the header's entries: the index of the match, or -1. */
interface Scheme {
  version: "v1" | "v1a";
  findMatch(content: string, entries: readonly string[]): number;
}

function hmacScheme(key: Uint8Array): Scheme {
  return {
    version: "v1",
    findMatch: (content, entries) =>
      matches(createHmac("sha256", key).update(content).digest("base64"), entries),
  };
}

function ed25519Scheme(key: KeyObject): Scheme {
  return {
    version: "v1a",
    findMatch: (content, entries) =>
      entries.findIndex((entry) => {
        const signature = Buffer.from(entry, "base64");
        return signature.length === 64 && verify(null, Buffer.from(content), key, signature);
      }),
  };
}

function matches(expected: string, candidates: readonly string[]): number {
  const want = Buffer.from(expected);
  return candidates.findIndex((c) => {
    const got = Buffer.from(c);
    return got.length === want.length && timingSafeEqual(got, want);
  });
}

/** The scheme of the key given, or why the key is not one. */
function schemeOf(input: VerifyInput): Scheme | string {
  if (input.publicKey !== undefined) {
    const key = decodePublicKey(input.publicKey);
    if (key) return ed25519Scheme(key);
    const hint = input.publicKey.startsWith(SECRET_PREFIX)
      ? "it is a whsec_ secret: verify a v1 webhook with --secret"
      : input.publicKey.startsWith(PUBLIC_KEY_PREFIX)
        ? "the part after 'whpk_' is not base64 of 32 bytes"
        : "it does not start with 'whpk_' (copy the whole public_key the API shows for the webhook)";
    return `the public key is not a hookd public key: ${hint}`;
  }
  const secret = input.secret ?? "";
  const key = decodeSecret(secret);
  if (key) return hmacScheme(key);
  const hint = secret.startsWith(PUBLIC_KEY_PREFIX)
    ? "it is a whpk_ public key: verify a v1a webhook with --public-key"
    : secret.startsWith(SECRET_PREFIX)
      ? "the part after 'whsec_' is not base64 of 24-64 bytes"
      : "it does not start with 'whsec_' (copy the whole secret shown when the webhook was created or rotated)";
  return `the secret is not a hookd secret: ${hint}`;
}

export function verifySignature(input: VerifyInput): VerifyResult {
  const scheme = schemeOf(input);
  if (typeof scheme === "string") return { valid: false, reason: scheme };
  if (!/^\d+$/.test(input.timestamp.trim())) {
    return { valid: false, reason: "webhook-timestamp must be unix seconds (digits only)" };
  }
  const skew = input.now - Number(input.timestamp);
  if (Math.abs(skew) > input.toleranceSeconds) {
    const when = skew > 0 ? `${skew}s in the past` : `${-skew}s in the future`;
    return {
      valid: false,
      reason: `webhook-timestamp is ${when}, outside the ${input.toleranceSeconds}s tolerance: a replayed or delayed request, or clocks that disagree`,
    };
  }
  const entries = input.signature.trim().split(/\s+/).filter(Boolean);
  const prefix = `${scheme.version},`;
  const versioned = entries.filter((e) => e.startsWith(prefix)).map((e) => e.slice(prefix.length));
  if (versioned.length === 0) {
    const other = scheme.version === "v1" ? "v1a" : "v1";
    const why = entries.some((e) => e.startsWith(`${other},`))
      ? scheme.version === "v1"
        ? ": it has v1a entries, so the webhook signs with Ed25519: verify with --public-key"
        : ": it has v1 entries, so the webhook signs with HMAC: verify with --secret"
      : "";
    return { valid: false, reason: `webhook-signature has no '${prefix}<base64>' entry${why}` };
  }
  const content = (body: string) => `${input.id}.${input.timestamp}.${body}`;
  const index = scheme.findMatch(content(input.body), versioned);
  if (index >= 0) {
    const what = scheme.version === "v1" ? "secret" : "key";
    return {
      valid: true,
      reason:
        versioned.length > 1
          ? `signature ${index + 1} of ${versioned.length} matches (a ${what} rotation is in progress)`
          : "the signature matches",
    };
  }

  // Diagnose the usual mistakes.
  if (scheme.version === "v1" && input.secret !== undefined) {
    const rawKey = Buffer.from(input.secret.slice(SECRET_PREFIX.length), "utf8");
    if (hmacScheme(rawKey).findMatch(content(input.body), versioned) >= 0) {
      return {
        valid: false,
        reason:
          "matches only when the secret is used as text: base64-decode the part after 'whsec_' to get the key",
      };
    }
  }
  for (const [variant, why] of [
    [
      input.body.replace(/\r?\n$/, ""),
      "the body gained a trailing newline on the way: sign the raw bytes as received",
    ],
    [`${input.body}\n`, "the body lost a trailing newline on the way: sign the raw bytes as received"],
    [
      reserialize(input.body),
      "the body was parsed and re-serialized: verify the raw request body, not a re-encoded copy",
    ],
  ] as const) {
    if (variant !== null && variant !== input.body && scheme.findMatch(content(variant), versioned) >= 0) {
      return { valid: false, reason: why };
    }
  }
  const key =
    scheme.version === "v1"
      ? "the secret is this webhook's current (or, during a rotation, previous) secret"
      : "the public key is this webhook's current public_key (or, during a rotation, one of its previous_public_keys)";
  return {
    valid: false,
    reason: `no signature matches: check that ${key} and that webhook-id, webhook-timestamp and the body are exactly as received`,
  };
}

function reserialize(body: string): string | null {
  try {
    return JSON.stringify(JSON.parse(body));
  } catch {
    return null;
  }
}
