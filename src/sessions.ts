// Minting portal and console sessions, for POST /v1/portal-sessions and `hookd console-link`: a
// random token, of which only the SHA-256 is stored, and the link that carries it.
import { type Capability, generateSessionToken, type Mode, type SessionKind } from "./domain/portal.ts";
import { sha256Hex } from "./domain/secrets.ts";
import type { Clock } from "./runtime/clock.ts";
import type { IdGenerator } from "./runtime/ids.ts";
import type { Random } from "./runtime/random.ts";
import type { PortalSession, Store } from "./store/store.ts";

export interface MintRequest {
  kind: SessionKind;
  tenantId: string | null;
  mode: Mode;
  capabilities: Capability[];
  ttlMs: number;
}

export async function mintSession(
  deps: { store: Store; clock: Clock; random: Random; ids: IdGenerator },
  request: MintRequest,
): Promise<{ session: PortalSession; token: string }> {
  const token = generateSessionToken(request.kind, deps.random);
  const now = deps.clock.now();
  const session: PortalSession = {
    id: deps.ids.next("ps"),
    kind: request.kind,
    tenantId: request.tenantId,
    mode: request.mode,
    capabilities: request.capabilities,
    createdAt: now,
    expiresAt: now + request.ttlMs,
  };
  await deps.store.insertPortalSession({ ...session, tokenHash: sha256Hex(token) });
  return { session, token };
}

/** `<public_url>/portal/#token=…` (or `/console/`): the token in the fragment never reaches a server log. */
export function sessionUrl(publicUrl: string, kind: SessionKind, token: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/${kind}/#token=${token}`;
}
