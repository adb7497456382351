// Standard Webhooks signing (SPEC §3): `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
// for every live secret, separated by spaces. The timestamp is an argument, never read here.
import { createHmac } from "node:crypto";
import type { Mode } from "./mode.ts";
import { decodeSecret } from "./secrets.ts";

export function signPayload(
  secrets: readonly string[],
  messageId: string,
  timestampSeconds: number,
  body: string,
): string {
  const content = `${messageId}.${timestampSeconds}.${body}`;
  return secrets
    .map((secret) => {
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

/** The body POSTed for an event: `{id, type, timestamp, mode, account_id?, data}`, `data` kept byte for byte. */
export function buildPayload(event: {
  id: string;
  type: string;
  createdAt: number;
  mode: Mode;
  accountId: string | null;
  dataJson: string;
}): string {
  const head = JSON.stringify({
    id: event.id,
    type: event.type,
    timestamp: new Date(event.createdAt).toISOString(),
    mode: event.mode,
    ...(event.accountId !== null ? { account_id: event.accountId } : {}),
  });
  return `${head.slice(0, -1)},"data":${event.dataJson}}`;
}
