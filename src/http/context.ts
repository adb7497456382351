// What the HTTP layer shares between middleware and handlers.
import type { Scope } from "../config/schema.ts";

export interface Principal {
  /** The key's name from the config (never the key), or an OAuth2 client's client_id. */
  name: string;
  /** "token" for an OAuth2 access token; absent for an API key. */
  kind?: "token";
  scopes: ReadonlySet<Scope | "*">;
  /** The tenant of a tenant key; undefined for an admin key. */
  tenantId?: string;
}

export interface AppEnv {
  Variables: {
    requestId: string;
    principal?: Principal;
    /** The route pattern that matched, for the access log. */
    route?: string;
  };
}
