// The mode a request acts in (SPEC §2 Live and test mode), for the routes: the credential's own, or
// for an admin credential the one it names (`mode` in the body when creating, in the query otherwise).
// An object of the other mode answers exactly like one that does not exist.
import type { Context } from "hono";
import type { Mode } from "../domain/mode.ts";
import { modeFor, principalOf } from "./auth.ts";
import { validate } from "./body.ts";
import type { AppEnv } from "./context.ts";
import { objectQuery } from "./schemas/webhooks.ts";

/** The mode of this request: `requested` (from a body or a validated query) or the query's `mode`. */
export function actingMode(c: Context<AppEnv>, requested?: Mode): Mode {
  const asked = requested ?? validate(objectQuery, { mode: c.req.query("mode") }).mode;
  return modeFor(principalOf(c), asked);
}

/** `object` when it is of the request's mode, else null (the caller answers 404). */
export function inMode<T extends { mode: Mode }>(c: Context<AppEnv>, object: T | null): T | null {
  return object !== null && object.mode === actingMode(c) ? object : null;
}
