// Session tokens on /v1 (SPEC §2 Portal sessions, §5 console-link): a token's hash is looked up in
// the store on every request (one indexed read), so revocation and expiry hold at once everywhere.

import { scopesOfCapabilities } from "../domain/portal.ts";
import { sha256Hex } from "../domain/secrets.ts";
import type { Clock } from "../runtime/clock.ts";
import type { PortalSession, Store } from "../store/store.ts";
import type { SessionTokens } from "./auth.ts";
import type { Principal } from "./context.ts";

export function principalOfSession(session: PortalSession): Principal {
  if (session.kind === "console") {
    return {
      name: `console-session:${session.id}`,
      kind: "console",
      scopes: new Set(["*"]),
      mode: session.mode,
      sessionId: session.id,
      expiresAt: session.expiresAt,
    };
  }
  return {
    name: `portal-session:${session.id}`,
    kind: "portal",
    scopes: scopesOfCapabilities(session.capabilities),
    ...(session.tenantId !== null ? { tenantId: session.tenantId } : {}),
    mode: session.mode,
    sessionId: session.id,
    expiresAt: session.expiresAt,
    capabilities: session.capabilities,
  };
}

export function createSessionTokens(store: Store, clock: Clock): SessionTokens {
  return {
    async identify(token) {
      const session = await store.findPortalSessionByToken(sha256Hex(token), clock.now());
      return session ? principalOfSession(session) : null;
    },
  };
}
