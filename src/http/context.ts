// What the HTTP layer shares between middleware and handlers.
import type { Scope } from "../config/schema.ts";
import type { Mode } from "../domain/mode.ts";

export interface Principal {
  /** The key's name from the config (never the key), or an OAuth2 client's client_id. */
  name: string;
  /** "token" for an OAuth2 access token; absent for an API key. */
  kind?: "token";
  scopes: ReadonlySet<Scope | "*">;
  /** The tenant of a tenant key; undefined for an admin key. */
  tenantId?: string;
  /** The credential's own mode: what it sees and creates unless an admin asks for the other. */
  mode: Mode;
}

export interface AppEnv {
  Variables: {
    requestId: string;
    principal?: Principal;
    /** The route pattern that matched, for the access log. */
    route?: string;
  };
}
