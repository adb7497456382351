// OAuth2 access tokens (SPEC §2 OAuth2 client credentials): stateless and signed, so every instance
// sharing the database checks one without a database round trip. A token is
// `hkt_` + base64url(JSON claims) + "." + base64url(HMAC-SHA256(signing key, everything before the dot)).
// The claims carry a keyed fingerprint of the client's secret hash: a changed secret no longer
// matches, and a leaked token reveals nothing that would let the secret be guessed offline.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Mode } from "./mode.ts";

export const TOKEN_PREFIX = "hkt_";
/** Longer text is not one of ours: refused before any decoding. */
const MAX_TOKEN_LENGTH = 4096;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const MAC_BYTES = 32;
const FINGERPRINT_BYTES = 16;

export interface TokenClaims {
  clientId: string;
  /** The scopes granted at issue (`*` included as is). */
  scopes: string[];
  tenant?: string;
  mode: Mode;
  /** Expiry, milliseconds since the Unix epoch. */
  expiresAt: number;
  /** secretFingerprint() of the client's secret hash at issue. */
  fingerprint: string;
}

interface WireClaims {
  v: 1;
  cid: string;
  scp: string[];
  ten?: string;
  /** Absent for live (tokens minted before modes existed read as live). */
  mod?: "test";
  exp: number;
  fp: string;
}

function mac(signingKey: Uint8Array, text: string): Buffer {
  return createHmac("sha256", signingKey).update(text, "utf8").digest();
}

/** A keyed fingerprint of a client's secret hash (hex SHA-256): equal while the secret is unchanged. */
export function secretFingerprint(signingKey: Uint8Array, secretSha256: string): string {
  return mac(signingKey, `hookd oauth client secret\u0000${secretSha256}`)
    .subarray(0, FINGERPRINT_BYTES)
    .toString("base64url");
}

export function signAccessToken(signingKey: Uint8Array, claims: TokenClaims): string {
  const wire: WireClaims = {
    v: 1,
    cid: claims.clientId,
    scp: claims.scopes,
    ...(claims.tenant !== undefined ? { ten: claims.tenant } : {}),
    ...(claims.mode === "test" ? { mod: "test" as const } : {}),
    exp: claims.expiresAt,
    fp: claims.fingerprint,
  };
  const signed = TOKEN_PREFIX + Buffer.from(JSON.stringify(wire), "utf8").toString("base64url");
  return `${signed}.${mac(signingKey, signed).toString("base64url")}`;
}

/**
 * The claims of a token signed with `signingKey`, or null (not a token, malformed, or a signature that
 * does not match). Expiry and the client's current state are the caller's to check.
 */
export function readAccessToken(signingKey: Uint8Array, token: string): TokenClaims | null {
  if (!token.startsWith(TOKEN_PREFIX) || token.length > MAX_TOKEN_LENGTH) return null;
  const dot = token.lastIndexOf(".");
  if (dot <= TOKEN_PREFIX.length) return null;
  const signed = token.slice(0, dot);
  const payload = signed.slice(TOKEN_PREFIX.length);
  const signature = token.slice(dot + 1);
  if (!BASE64URL.test(payload) || !BASE64URL.test(signature)) return null;
  const presented = Buffer.from(signature, "base64url");
  if (presented.length !== MAC_BYTES || !timingSafeEqual(presented, mac(signingKey, signed))) return null;
  let wire: unknown;
  try {
    wire = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  return isWireClaims(wire)
    ? {
        clientId: wire.cid,
        scopes: wire.scp,
        ...(wire.ten !== undefined ? { tenant: wire.ten } : {}),
        mode: wire.mod === "test" ? "test" : "live",
        expiresAt: wire.exp,
        fingerprint: wire.fp,
      }
    : null;
}

function isWireClaims(value: unknown): value is WireClaims {
  if (!value || typeof value !== "object" || Array.isArray(value)) return false;
  const wire = value as Record<string, unknown>;
  return (
    wire.v === 1 &&
    typeof wire.cid === "string" &&
    Array.isArray(wire.scp) &&
    wire.scp.every((scope) => typeof scope === "string") &&
    (wire.ten === undefined || typeof wire.ten === "string") &&
    (wire.mod === undefined || wire.mod === "test") &&
    typeof wire.exp === "number" &&
    Number.isFinite(wire.exp) &&
    typeof wire.fp === "string"
  );
}
