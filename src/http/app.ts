// The Hono application: access log, body limit, routes, and the one error handler.
import { Hono } from "hono";
import { ApiError, StorageUnavailableError } from "../domain/errors.ts";
import { type Api, createApi } from "./api.ts";
import { payloadTooLarge } from "./body.ts";
import type { AppEnv } from "./context.ts";
import type { HttpDeps } from "./deps.ts";
import { createRateLimiter } from "./rate-limit.ts";
import { registerConsoleRoutes } from "./routes/console.ts";
import { registerDeliveryRoutes } from "./routes/deliveries.ts";
import { registerEventTypeRoutes } from "./routes/event-types.ts";
import { registerEventRoutes } from "./routes/events.ts";
import { registerOAuthRoutes } from "./routes/oauth.ts";
import { registerOperationRoutes } from "./routes/operations.ts";
import { registerPortalSessionRoutes } from "./routes/portal-sessions.ts";
import { registerStatsRoutes } from "./routes/stats.ts";
import { registerWebhookRoutes } from "./routes/webhooks.ts";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function createApp(deps: HttpDeps): { app: Hono<AppEnv>; api: Api } {
  const { logger, clock } = deps;
  const app = new Hono<AppEnv>();
  // Token requests are limited per client_id like writes, in a bucket of their own.
  const limits = { ...deps.config.rate_limits, token: deps.config.rate_limits.write };
  const rateLimiter = createRateLimiter(limits, clock, deps.instances);
  const api = createApi(app, { authenticator: deps.authenticator, rateLimiter });
  const limit = deps.config.limits.max_payload_bytes;

  app.use("*", async (c, next) => {
    const started = performance.now();
    const incoming = c.req.header("x-request-id");
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
    c.set("requestId", requestId);
    c.header("X-Request-Id", requestId);
    await next();
    logger.info(
      {
        req_id: requestId,
        method: c.req.method,
        route: c.get("route") ?? null,
        status: c.res.status,
        duration_ms: Math.round((performance.now() - started) * 100) / 100,
        key_name: c.get("principal")?.name ?? null,
      },
      "request",
    );
  });

  app.use("*", async (c, next) => {
    const declared = c.req.header("content-length");
    if (declared !== undefined && Number(declared) > limit) throw payloadTooLarge(limit);
    await next();
  });

  registerOperationRoutes(api, deps);
  registerOAuthRoutes(api, deps, deps.oauthClients, rateLimiter);
  registerEventTypeRoutes(api, deps);
  registerWebhookRoutes(api, deps);
  registerEventRoutes(api, deps);
  registerDeliveryRoutes(api, deps);
  registerConsoleRoutes(app, deps.config.console);
  registerStatsRoutes(api, deps);
  registerPortalSessionRoutes(api, deps);

  app.notFound((c) => {
    const allowed = api.allowedMethods(c.req.path);
    if (allowed.length === 0) return c.json(new ApiError("not_found", "no such route").toBody(), 404);
    c.header("Allow", [...allowed, "OPTIONS"].join(", "));
    if (c.req.method === "OPTIONS") return c.body(null, 204);
    return c.json(new ApiError("method_not_allowed", `${c.req.method} is not allowed here`).toBody(), 405);
  });

  app.onError((error, c) => {
    if (error instanceof ApiError) {
      for (const [name, value] of Object.entries(error.headers ?? {})) c.header(name, value);
      return c.json(error.toBody(), error.status as 400);
    }
    if (error instanceof StorageUnavailableError) {
      logger.warn({ err: error.message, req_id: c.get("requestId") }, "storage unavailable");
      c.header("Retry-After", "1");
      return c.json(
        new ApiError("unavailable", "the database cannot be written right now; retry shortly").toBody(),
        503,
      );
    }
    logger.error({ err: error, req_id: c.get("requestId"), route: c.get("route") }, "unhandled error");
    return c.json(new ApiError("internal", "internal error").toBody(), 500);
  });

  return { app, api };
}
