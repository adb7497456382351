// Token buckets per API key and route class (SPEC §2 Rate limiting), with RateLimit-* headers.
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../domain/errors.ts";
import type { Clock } from "../runtime/clock.ts";
import type { AppEnv } from "./context.ts";

export type RateClass = "read" | "write" | "ingest";

export interface RateLimiter {
  middleware(rateClass: RateClass): MiddlewareHandler<AppEnv>;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createRateLimiter(limits: Record<RateClass, number>, clock: Clock): RateLimiter {
  const buckets = new Map<string, Bucket>();

  return {
    middleware: (rateClass) => async (c, next) => {
      const principal = c.get("principal");
      if (!principal) return next();
      const perMinute = limits[rateClass];
      const perMs = perMinute / 60_000;
      const id = `${rateClass}\u0000${principal.name}`;
      const now = clock.now();
      const bucket = buckets.get(id) ?? { tokens: perMinute, at: now };
      bucket.tokens = Math.min(perMinute, bucket.tokens + Math.max(0, now - bucket.at) * perMs);
      bucket.at = now;
      buckets.set(id, bucket);

      const allowed = bucket.tokens >= 1;
      if (allowed) bucket.tokens -= 1;
      const headers = {
        "RateLimit-Limit": String(perMinute),
        "RateLimit-Remaining": String(Math.floor(bucket.tokens)),
        "RateLimit-Reset": String(Math.ceil((perMinute - bucket.tokens) / perMs / 1000)),
        "RateLimit-Policy": `${perMinute};w=60`,
      };
      if (!allowed) {
        const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000));
        throw new ApiError(
          "rate_limited",
          `too many ${rateClass} requests; retry in ${retryAfter}s`,
          undefined,
          {
            ...headers,
            "Retry-After": String(retryAfter),
          },
        );
      }
      for (const [name, value] of Object.entries(headers)) c.header(name, value);
      await next();
    },
  };
}
