// Standard Webhooks signing (SPEC §3): `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
// for every live `whsec_` secret, `v1a,<base64 Ed25519 signature of the same content>` for every
// live `whsk_` signing key (a `v1a` webhook), separated by spaces. The timestamp is an argument,
// never read here.
import { createHmac, type KeyObject, sign } from "node:crypto";
import { decodeSecret, isSigningKey, signingKeyObject } from "./secrets.ts";

// Parsed Ed25519 keys by their stored text: parsing one costs about as much as a signature. A
// memo, not state: the same key text always gives the same key. Bounded, dropped whole when full.
const keyObjects = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 10_000;

function ed25519Key(stored: string): KeyObject {
  let key = keyObjects.get(stored);
  if (!key) {
    const parsed = signingKeyObject(stored);
    if (!parsed) throw new Error("a stored signing key is not a valid whsk_ key");
    if (keyObjects.size >= MAX_CACHED_KEYS) keyObjects.clear();
    keyObjects.set(stored, parsed);
    key = parsed;
  }
  return key;
}

export function signPayload(
  secrets: readonly string[],
  messageId: string,
  timestampSeconds: number,
  body: string,
): string {
  const content = `${messageId}.${timestampSeconds}.${body}`;
  return secrets
    .map((secret) => {
      if (isSigningKey(secret)) {
        return `v1a,${sign(null, Buffer.from(content), ed25519Key(secret)).toString("base64")}`;
      }
      const key = decodeSecret(secret);
      if (!key) throw new Error("a stored secret is not a valid whsec_ secret");
      return `v1,${createHmac("sha256", key).update(content).digest("base64")}`;
    })
    .join(" ");
}

/** The secrets that sign a delivery now: the current one and every previous one not yet expired. */
export function liveSecrets(
  webhook: { secret: string; previousSecrets: readonly { secret: string; expiresAt: number }[] },
  now: number,
): string[] {
  return [webhook.secret, ...webhook.previousSecrets.filter((p) => p.expiresAt > now).map((p) => p.secret)];
}

/** The body POSTed for an event: `{id, type, timestamp, account_id?, data}`, `data` kept byte for byte. */
export function buildPayload(event: {
  id: string;
  type: string;
  createdAt: number;
  accountId: string | null;
  dataJson: string;
}): string {
  const head = JSON.stringify({
    id: event.id,
    type: event.type,
    timestamp: new Date(event.createdAt).toISOString(),
    ...(event.accountId !== null ? { account_id: event.accountId } : {}),
  });
  return `${head.slice(0, -1)},"data":${event.dataJson}}`;
}
