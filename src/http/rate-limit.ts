// Token buckets per API key (or OAuth2 client) and route class (SPEC §2 Rate limiting), with
// RateLimit-* headers. Class "token" is POST /oauth/token, per client_id.
// Several instances over one database (SPEC §6) hold a key's limit together without a database
// round trip per request: each of the N live instances enforces 1/N of it (a load balancer spreads
// a key's requests over them), and the headers speak of the whole limit.
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../domain/errors.ts";
import type { Clock } from "../runtime/clock.ts";
import type { AppEnv } from "./context.ts";

export type RateClass = "read" | "write" | "ingest" | "token";

export interface RateDecision {
  allowed: boolean;
  /** RateLimit-* headers, with Retry-After when refused. */
  headers: Record<string, string>;
  /** Seconds until a refused request may be retried (0 when allowed). */
  retryAfter: number;
}

export interface RateLimiter {
  middleware(rateClass: RateClass): MiddlewareHandler<AppEnv>;
  /** Takes one request from `name`'s bucket of `rateClass` (a refused one takes nothing). */
  take(rateClass: RateClass, name: string): RateDecision;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createRateLimiter(
  limits: Record<RateClass, number>,
  clock: Clock,
  instances: () => number = () => 1,
): RateLimiter {
  const buckets = new Map<string, Bucket>();

  const take = (rateClass: RateClass, name: string): RateDecision => {
    const share = Math.max(1, instances());
    const perMinute = limits[rateClass] / share;
    const perMs = perMinute / 60_000;
    const id = `${rateClass}\u0000${name}`;
    const now = clock.now();
    const bucket = buckets.get(id) ?? { tokens: perMinute, at: now };
    bucket.tokens = Math.min(perMinute, bucket.tokens + Math.max(0, now - bucket.at) * perMs);
    bucket.at = now;
    buckets.set(id, bucket);

    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    const limit = limits[rateClass];
    const headers: Record<string, string> = {
      "RateLimit-Limit": String(limit),
      "RateLimit-Remaining": String(Math.floor(bucket.tokens * share)),
      "RateLimit-Reset": String(Math.ceil((perMinute - bucket.tokens) / perMs / 1000)),
      "RateLimit-Policy": `${limit};w=60`,
    };
    if (allowed) return { allowed, headers, retryAfter: 0 };
    const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000));
    return { allowed, headers: { ...headers, "Retry-After": String(retryAfter) }, retryAfter };
  };

  return {
    take,
    middleware: (rateClass) => async (c, next) => {
      const principal = c.get("principal");
      if (!principal) return next();
      const decision = take(rateClass, principal.name);
      if (!decision.allowed) {
        throw new ApiError(
          "rate_limited",
          `too many ${rateClass} requests; retry in ${decision.retryAfter}s`,
          undefined,
          decision.headers,
        );
      }
      for (const [name, value] of Object.entries(decision.headers)) c.header(name, value);
      await next();
    },
  };
}
