// Route declarations: each route is registered once with its method, path, scope, rate class and
// zod schemas. The same declarations drive authentication, rate limiting, 405 answers and
// /openapi.json, so the document cannot drift from what the server does.
import type { Handler, Hono } from "hono";
import { z } from "zod";
import { SCOPES, type Scope } from "../config/schema.ts";
import { type Authenticator, requireScope } from "./auth.ts";
import type { AppEnv } from "./context.ts";
import type { RateClass, RateLimiter } from "./rate-limit.ts";

export type Method = "get" | "post" | "put" | "patch" | "delete";

export interface RouteSpec {
  method: Method;
  /** Hono syntax: `/v1/webhooks/:id`. */
  path: string;
  summary: string;
  tag: string;
  /** The scope required; "any" = any valid key; null = no authentication. */
  auth: Scope | "any" | null;
  /**
   * The scope a portal session needs here instead of `auth`, where its capabilities map otherwise
   * (the webhook test action: `replay`, that is deliveries:write, not webhooks:write).
   */
  sessionAuth?: Scope;
  rate?: RateClass;
  query?: z.ZodObject;
  body?: z.ZodType;
  bodyOptional?: boolean;
  /** Media types the body may come in (default JSON only). */
  bodyTypes?: readonly string[];
  /**
   * "oauth": errors are RFC 6749 §5.2's `{error, error_description}` (POST /oauth/token), declared
   * in `responses`; only the body limit's 413 keeps the API's shape.
   */
  errorFormat?: "oauth";
  /** OpenAPI security requirements, when not the API key's (or none for `auth: null`). */
  security?: Record<string, string[]>[];
  responses: Record<number, { description: string; schema?: z.ZodType }>;
}

export interface Api {
  readonly routes: readonly RouteSpec[];
  route(spec: RouteSpec, handler: Handler<AppEnv>): void;
  /** Methods registered for a concrete path, for 405 and OPTIONS answers. */
  allowedMethods(path: string): string[];
}

export function createApi(
  app: Hono<AppEnv>,
  deps: { authenticator: Authenticator; rateLimiter: RateLimiter },
): Api {
  const routes: RouteSpec[] = [];
  const matchers: { pattern: RegExp; method: string }[] = [];

  return {
    routes,
    route(spec, handler) {
      routes.push(spec);
      const pattern = new RegExp(`^${spec.path.replace(/:[a-z_]+/g, "[^/]+")}$`);
      matchers.push({ pattern, method: spec.method.toUpperCase() });
      const middleware = [];
      if (spec.auth !== null) middleware.push(requireScope(deps.authenticator, spec.auth, spec.sessionAuth));
      if (spec.rate) middleware.push(deps.rateLimiter.middleware(spec.rate));
      app.on(
        spec.method.toUpperCase(),
        spec.path,
        async (c, next) => {
          c.set("route", spec.path);
          await next();
        },
        ...middleware,
        handler,
      );
    },
    allowedMethods(path) {
      const methods = new Set(matchers.filter((m) => m.pattern.test(path)).map((m) => m.method));
      if (methods.has("GET")) methods.add("HEAD");
      return [...methods];
    },
  };
}

const ERROR_SCHEMA = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z
      .array(z.object({ path: z.string(), message: z.string(), code: z.string().optional() }))
      .optional(),
  }),
});

const toJson = (schema: z.ZodType, io: "input" | "output") =>
  z.toJSONSchema(schema, { io, unrepresentable: "any", target: "openapi-3.0" });

export function buildOpenApi(routes: readonly RouteSpec[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of routes) {
    const path = spec.path.replace(/:([a-z_]+)/g, "{$1}");
    const parameters: unknown[] = [...spec.path.matchAll(/:([a-z_]+)/g)].map((m) => ({
      name: m[1],
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    if (spec.query) {
      for (const [name, field] of Object.entries(spec.query.shape)) {
        const schema = toJson(field as z.ZodType, "input");
        parameters.push({
          name,
          in: "query",
          required: false,
          schema,
          description: (field as z.ZodType).description,
        });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(spec.responses)) {
      responses[status] = {
        description: response.description,
        ...(response.schema
          ? { content: { "application/json": { schema: toJson(response.schema, "output") } } }
          : {}),
      };
    }
    const errors: [number, string][] = [];
    // An "oauth" route declares its own 400s; only the body limit's 413 is shared.
    const oauth = spec.errorFormat === "oauth";
    if (spec.body && !oauth) errors.push([400, "Malformed JSON"]);
    if (spec.body) errors.push([413, "Body too large"]);
    if (spec.auth !== null) errors.push([401, "Missing or invalid API key or access token"]);
    if (spec.auth !== null && spec.auth !== "any") errors.push([403, "Missing scope or other tenant"]);
    if ((spec.body || spec.query) && !oauth) errors.push([422, "Validation failed"]);
    if (spec.rate) errors.push([429, "Rate limited"]);
    for (const [status, description] of errors) {
      responses[String(status)] ??= {
        description,
        content: { "application/json": { schema: toJson(ERROR_SCHEMA, "output") } },
      };
    }
    paths[path] ??= {};
    (paths[path] as Record<string, unknown>)[spec.method] = {
      summary: spec.summary,
      tags: [spec.tag],
      security:
        spec.security ??
        (spec.auth !== null
          ? [{ bearer: [] }, { apiKey: [] }, { oauth2: spec.auth === "any" ? [] : [spec.auth] }]
          : []),
      parameters,
      ...(spec.body
        ? {
            requestBody: {
              required: !spec.bodyOptional,
              content: Object.fromEntries(
                (spec.bodyTypes ?? ["application/json"]).map((type) => [
                  type,
                  { schema: toJson(spec.body as z.ZodType, "input") },
                ]),
              ),
            },
          }
        : {}),
      responses,
    };
  }
  return {
    openapi: "3.0.3",
    info: { title: "hookd", version, description: "Self-hosted webhook delivery daemon." },
    servers: [{ url: "/" }],
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer" },
        apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
        oauth2: {
          type: "oauth2",
          description: "An access token from POST /oauth/token, sent as 'Authorization: Bearer <token>'.",
          flows: {
            clientCredentials: {
              tokenUrl: "/oauth/token",
              scopes: Object.fromEntries([...SCOPES, "*"].map((scope) => [scope, `the ${scope} scope`])),
            },
          },
        },
        clientBasic: {
          type: "http",
          scheme: "basic",
          description: "An OAuth2 client's client_id and client_secret (POST /oauth/token).",
        },
      },
    },
    paths,
  };
}
