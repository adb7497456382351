// Webhook signing secrets (`whsec_` + base64 of 24–64 random bytes) and API key hashing.
import { createHash, timingSafeEqual } from "node:crypto";
import type { Random } from "../runtime/random.ts";

export const SECRET_PREFIX = "whsec_";
const SECRET_BYTES = 32;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function generateSecret(random: Random): string {
  return SECRET_PREFIX + Buffer.from(random.bytes(SECRET_BYTES)).toString("base64");
}

/** The key bytes of a secret, or null when it is not `whsec_` + base64 of 24–64 bytes. */
export function decodeSecret(secret: string): Uint8Array | null {
  if (!secret.startsWith(SECRET_PREFIX)) return null;
  const body = secret.slice(SECRET_PREFIX.length);
  if (!BASE64.test(body) || body.length % 4 !== 0) return null;
  const bytes = Buffer.from(body, "base64");
  if (bytes.length < 24 || bytes.length > 64) return null;
  return new Uint8Array(bytes);
}

export function secretLast4(secret: string): string {
  return secret.slice(-4);
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** Constant-time comparison of two hex digests of equal length. */
export function digestsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, "hex");
  const right = Buffer.from(b, "hex");
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
}

/** A new API key: `hk_` + 32 random bytes, base64url. */
export function generateApiKey(random: Random): string {
  return `hk_${Buffer.from(random.bytes(32)).toString("base64url")}`;
}
