// Webhook signing secrets (`whsec_` + base64 of 24–64 random bytes), Ed25519 signing keys for
// `v1a` webhooks (`whsk_` + base64 of the 32-byte seed, kept like a secret; `whpk_` + base64 of the
// raw 32-byte public key, shown to receivers) and API key hashing.
import { createHash, createPrivateKey, createPublicKey, type KeyObject, timingSafeEqual } from "node:crypto";
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

export const PRIVATE_KEY_PREFIX = "whsk_";
export const PUBLIC_KEY_PREFIX = "whpk_";
/** The PKCS#8 DER header of an Ed25519 private key; the 32-byte seed follows it. */
const ED25519_PKCS8_HEADER = Buffer.from("302e020100300506032b657004220420", "hex");
/** The SPKI DER header of an Ed25519 public key; the 32 raw bytes follow it. */
const ED25519_SPKI_HEADER = Buffer.from("302a300506032b6570032100", "hex");

/** A new Ed25519 signing key (`whsk_…`), its seed drawn from `random`. */
export function generateSigningKey(random: Random): string {
  return PRIVATE_KEY_PREFIX + Buffer.from(random.bytes(32)).toString("base64");
}

export const isSigningKey = (stored: string): boolean => stored.startsWith(PRIVATE_KEY_PREFIX);

/** The private key object of a `whsk_` key, or null when it is not one. */
export function signingKeyObject(stored: string): KeyObject | null {
  if (!isSigningKey(stored)) return null;
  const seed = Buffer.from(stored.slice(PRIVATE_KEY_PREFIX.length), "base64");
  if (seed.length !== 32) return null;
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_HEADER, seed]), format: "der", type: "pkcs8" });
}

// Public keys by their private key's text: deriving one costs tens of µs, and every answer about a
// v1a webhook (a list of 100 too) shows it. A memo: the same key always gives the same public key.
const publicKeys = new Map<string, string>();
const MAX_MEMO = 10_000;

/** The `whpk_` public key of a `whsk_` signing key. */
export function publicKeyOf(stored: string): string {
  const known = publicKeys.get(stored);
  if (known !== undefined) return known;
  const key = signingKeyObject(stored);
  if (!key) throw new Error("not a whsk_ signing key");
  const spki = createPublicKey(key).export({ format: "der", type: "spki" });
  const publicKey = PUBLIC_KEY_PREFIX + spki.subarray(ED25519_SPKI_HEADER.length).toString("base64");
  if (publicKeys.size >= MAX_MEMO) publicKeys.clear();
  publicKeys.set(stored, publicKey);
  return publicKey;
}

/** The public key object of a `whpk_` key, or null when it is not `whpk_` + base64 of 32 bytes. */
export function decodePublicKey(text: string): KeyObject | null {
  if (!text.startsWith(PUBLIC_KEY_PREFIX)) return null;
  const body = text.slice(PUBLIC_KEY_PREFIX.length);
  if (!BASE64.test(body) || body.length % 4 !== 0) return null;
  const raw = Buffer.from(body, "base64");
  if (raw.length !== 32) return null;
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_HEADER, raw]), format: "der", type: "spki" });
}

/** What `secret_last4` shows: the secret's last four characters, or the public key's for `v1a`. */
export function secretLast4(secret: string): string {
  return (isSigningKey(secret) ? publicKeyOf(secret) : secret).slice(-4);
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
