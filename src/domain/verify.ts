// Signature verification for subscribers, with reasons (`hookd verify`): the Standard Webhooks
// check, plus the diagnoses of the usual mistakes when it fails.
import { createHmac, timingSafeEqual } from "node:crypto";
import { decodeSecret, SECRET_PREFIX } from "./secrets.ts";

export interface VerifyInput {
  secret: string;
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  /** Unix seconds. */
  now: number;
  toleranceSeconds: number;
}

export type VerifyResult = { valid: true; reason: string } | { valid: false; reason: string };

function sign(key: Uint8Array, id: string, timestamp: string, body: string): string {
  return createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
}

function matches(expected: string, candidates: readonly string[]): number {
  const want = Buffer.from(expected);
  return candidates.findIndex((c) => {
    const got = Buffer.from(c);
    return got.length === want.length && timingSafeEqual(got, want);
  });
}

export function verifySignature(input: VerifyInput): VerifyResult {
  const key = decodeSecret(input.secret);
  if (!key) {
    const hint = input.secret.startsWith(SECRET_PREFIX)
      ? "the part after 'whsec_' is not base64 of 24-64 bytes"
      : "it does not start with 'whsec_' (copy the whole secret shown when the webhook was created or rotated)";
    return { valid: false, reason: `the secret is not a hookd secret: ${hint}` };
  }
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
  const versioned = entries.filter((e) => e.startsWith("v1,")).map((e) => e.slice(3));
  if (versioned.length === 0) {
    return { valid: false, reason: "webhook-signature has no 'v1,<base64>' entry" };
  }
  const expected = sign(key, input.id, input.timestamp, input.body);
  const index = matches(expected, versioned);
  if (index >= 0) {
    return {
      valid: true,
      reason:
        versioned.length > 1
          ? `signature ${index + 1} of ${versioned.length} matches (a secret rotation is in progress)`
          : "the signature matches",
    };
  }

  // Diagnose the usual mistakes.
  const rawKey = Buffer.from(input.secret.slice(SECRET_PREFIX.length), "utf8");
  if (matches(sign(rawKey, input.id, input.timestamp, input.body), versioned) >= 0) {
    return {
      valid: false,
      reason:
        "matches only when the secret is used as text: base64-decode the part after 'whsec_' to get the key",
    };
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
    if (
      variant !== null &&
      variant !== input.body &&
      matches(sign(key, input.id, input.timestamp, variant), versioned) >= 0
    ) {
      return { valid: false, reason: why };
    }
  }
  return {
    valid: false,
    reason:
      "no signature matches: check that the secret is this webhook's current (or, during a rotation, previous) secret and that webhook-id, webhook-timestamp and the body are exactly as received",
  };
}

function reserialize(body: string): string | null {
  try {
    return JSON.stringify(JSON.parse(body));
  } catch {
    return null;
  }
}
