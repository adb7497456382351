// What the HTTP layer shares between middleware and handlers.
import type { Scope } from "../config/schema.ts";
import type { Capability, Mode } from "../domain/portal.ts";

export interface Principal {
  /** The key's name from the config (never the key), or an OAuth2 client's client_id. */
  name: string;
  /**
   * "token" for an OAuth2 access token, "portal" for a portal session's token, "console" for a
   * console session's (hookd console-link); absent for an API key.
   */
  kind?: "token" | "portal" | "console";
  scopes: ReadonlySet<Scope | "*">;
  /** The tenant of a tenant key; undefined for an admin key. */
  tenantId?: string;
  /** The credential's mode; undefined where none is set (then `live`). */
  mode?: Mode;
  /** The portal or console session behind the token, and when it ends. */
  sessionId?: string;
  expiresAt?: number;
  /** A portal session's capabilities. */
  capabilities?: readonly Capability[];
}

export interface AppEnv {
  Variables: {
    requestId: string;
    principal?: Principal;
    /** The route pattern that matched, for the access log. */
    route?: string;
  };
}
