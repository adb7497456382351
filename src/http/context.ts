// What the HTTP layer shares between middleware and handlers.
import type { Scope } from "../config/schema.ts";

export interface Principal {
  /** The key's name from the config (never the key). */
  name: string;
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
