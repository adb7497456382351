// Portal and console sessions (SPEC §2 Portal sessions, §5 hookd console-link): what a session's
// capabilities let its token do, and the token's shape. Pure: the token's bytes come from a Random.
import type { Scope } from "../config/schema.ts";
import type { Random } from "../runtime/random.ts";

export const CAPABILITIES = ["read", "manage_webhooks", "replay"] as const;
export type Capability = (typeof CAPABILITIES)[number];

export const MODES = ["live", "test"] as const;
export type Mode = (typeof MODES)[number];

/** A portal session is one tenant's; a console session (console-link without --tenant) is an admin's. */
export type SessionKind = "portal" | "console";

/** Portal tokens: `hkp_` + 32 random bytes, base64url. Console tokens: `hkc_` + the same. */
export const PORTAL_TOKEN_PREFIX = "hkp_";
export const CONSOLE_TOKEN_PREFIX = "hkc_";

export const isSessionToken = (text: string): boolean =>
  text.startsWith(PORTAL_TOKEN_PREFIX) || text.startsWith(CONSOLE_TOKEN_PREFIX);

export function generateSessionToken(kind: SessionKind, random: Random): string {
  const prefix = kind === "portal" ? PORTAL_TOKEN_PREFIX : CONSOLE_TOKEN_PREFIX;
  return `${prefix}${Buffer.from(random.bytes(32)).toString("base64url")}`;
}

/** The ttl bounds of a session, in seconds. */
export const SESSION_TTL = { min: 60, max: 86_400, default: 3600 } as const;

const SCOPES_OF: Record<Capability, readonly Scope[]> = {
  read: ["webhooks:read", "events:read", "deliveries:read"],
  manage_webhooks: ["webhooks:write"],
  replay: ["deliveries:write"],
};

/**
 * The scopes a portal session's capabilities give. Never `events:write` or `portal:write`: a
 * portal token cannot publish events or mint sessions. (The webhook `test` action is decided by
 * the route: for a session it needs `deliveries:write`, which `replay` gives; see RouteSpec.)
 */
export function scopesOfCapabilities(capabilities: readonly Capability[]): Set<Scope> {
  const scopes = new Set<Scope>();
  for (const capability of capabilities) for (const scope of SCOPES_OF[capability]) scopes.add(scope);
  return scopes;
}

/** The capabilities asked for, `read` always included, in their declared order; all when none asked. */
export function normalizeCapabilities(requested: readonly Capability[] | undefined): Capability[] {
  if (requested === undefined) return [...CAPABILITIES];
  const wanted = new Set<Capability>([...requested, "read"]);
  return CAPABILITIES.filter((c) => wanted.has(c));
}
