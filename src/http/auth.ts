// API key, OAuth2 access token and portal/console session authentication, scopes and tenancy
// (SPEC §2 Authentication and tenancy, Portal sessions): a token stands for its client exactly as
// a key does; a session token for its session, looked up in the database on every request (so a
// revocation holds at once on every instance).
import type { Context, MiddlewareHandler } from "hono";
import type { ApiKeyConfig, Scope } from "../config/schema.ts";
import { TOKEN_PREFIX } from "../domain/access-token.ts";
import { ApiError } from "../domain/errors.ts";
import { isSessionToken } from "../domain/portal.ts";
import { digestsEqual, sha256Hex } from "../domain/secrets.ts";
import type { AppEnv, Principal } from "./context.ts";

export const DEFAULT_TENANT = "default";

interface KnownKey {
  hash: string;
  principal: Principal;
}

export interface Authenticator {
  /** The principal for a presented key, or null. Compares against every key in constant time. */
  identify(presented: string): Principal | null | Promise<Principal | null>;
}

/** Portal and console session tokens (`hkp_…`, `hkc_…`): resolved through the store. */
export interface SessionTokens {
  identify(token: string): Promise<Principal | null>;
}

export function createAuthenticator(
  keys: readonly ApiKeyConfig[],
  extraAdminHashes: readonly string[] = [],
  /** OAuth2 access tokens (`hkt_…`), when clients are configured. */
  tokens?: { identify(token: string): Principal | null },
  sessions?: SessionTokens,
): Authenticator {
  const known: KnownKey[] = keys.map((key) => ({
    hash: key.key_sha256 ?? sha256Hex(key.key as string),
    principal: {
      name: key.name,
      scopes: new Set(key.scopes),
      ...(key.tenant ? { tenantId: key.tenant } : {}),
    },
  }));
  for (const hash of extraAdminHashes)
    known.push({ hash, principal: { name: "admin", scopes: new Set(["*"]) } });

  return {
    identify(presented) {
      const byKey = () => {
        const hash = sha256Hex(presented);
        let found: Principal | null = null;
        // No early exit: every configured key is compared, whichever matches.
        for (const key of known) if (digestsEqual(hash, key.hash) && !found) found = key.principal;
        return found;
      };
      // A configured key may happen to look like a session token: it is tried when no session matches.
      if (sessions && isSessionToken(presented))
        return sessions.identify(presented).then((principal) => principal ?? byKey());
      if (tokens && presented.startsWith(TOKEN_PREFIX)) {
        const principal = tokens.identify(presented);
        if (principal) return principal;
      }
      return byKey();
    },
  };
}

function presentedKey(c: Context): string | null {
  const authorization = c.req.header("authorization");
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) throw unauthorized("the Authorization header must be 'Bearer <key>'");
    return match[1] as string;
  }
  const apiKey = c.req.header("x-api-key");
  return apiKey === undefined || apiKey.trim() === "" ? null : apiKey.trim();
}

function unauthorized(message: string, challenge = 'Bearer realm="hookd"'): ApiError {
  return new ApiError("unauthorized", message, undefined, { "WWW-Authenticate": challenge });
}

/**
 * Authenticates the request and checks `scope` ("any" = any valid key); a portal session is
 * checked for `sessionScope` instead when the route names one.
 */
export function requireScope(
  authenticator: Authenticator,
  scope: Scope | "any",
  sessionScope?: Scope,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const key = presentedKey(c);
    if (key === null)
      throw unauthorized("an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key'");
    const principal = await authenticator.identify(key);
    if (!principal && isSessionToken(key)) {
      throw unauthorized(
        "the session is not valid: it has expired or was revoked; ask for a new link",
        'Bearer realm="hookd", error="invalid_token"',
      );
    }
    if (!principal && key.startsWith(TOKEN_PREFIX)) {
      // Which check failed (expiry, signature, client, secret) is not said (RFC 6750 §3.1).
      throw unauthorized(
        "the access token is not valid or has expired; request a new one at /oauth/token",
        'Bearer realm="hookd", error="invalid_token"',
      );
    }
    if (!principal) throw unauthorized("the API key is not valid");
    c.set("principal", principal);
    const needed = principal.kind === "portal" && sessionScope ? sessionScope : scope;
    if (needed !== "any" && !principal.scopes.has("*") && !principal.scopes.has(needed)) {
      const what =
        principal.kind === "token"
          ? "access token"
          : principal.kind === "portal" || principal.kind === "console"
            ? "session"
            : "API key";
      throw new ApiError("forbidden", `this ${what} does not have the '${needed}' scope`);
    }
    await next();
  };
}

export function principalOf(c: Context<AppEnv>): Principal {
  const principal = c.get("principal");
  if (!principal) throw new Error("route has no authentication middleware");
  return principal;
}

/** The tenant a new object belongs to: a tenant key's own; an admin's requested one or `default`. */
export function tenantForWrite(principal: Principal, requested: string | undefined): string {
  if (principal.tenantId === undefined) return requested ?? DEFAULT_TENANT;
  if (requested !== undefined && requested !== principal.tenantId) throw otherTenant();
  return principal.tenantId;
}

/** The tenant a read is limited to: a tenant key's own; for an admin, the requested one or all. */
export function tenantForRead(principal: Principal, requested: string | undefined): string | undefined {
  if (principal.tenantId === undefined) return requested;
  if (requested !== undefined && requested !== principal.tenantId) throw otherTenant();
  return principal.tenantId;
}

function otherTenant(): ApiError {
  return new ApiError("forbidden", "this API key may only act in its own tenant");
}
