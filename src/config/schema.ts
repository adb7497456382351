// The one configuration schema: defaults, units and every rule of SPEC §4. The parsed result is
// deep-frozen by load.ts; nothing else reads YAML or the environment.
import { z } from "zod";
import { isValidEventTypeName } from "../domain/event-types.ts";
import { parseCidr } from "../domain/ip.ts";
import { schemaProblem } from "../domain/json-schema.ts";
import { DEFAULT_MODE, MODES } from "../domain/mode.ts";
import { LOG_LEVELS } from "../runtime/logger.ts";
import { parseDuration } from "./duration.ts";

export const SCOPES = [
  "webhooks:read",
  "webhooks:write",
  "events:read",
  "events:write",
  "deliveries:read",
  "deliveries:write",
  "portal:write",
] as const;
export type Scope = (typeof SCOPES)[number];

const strict = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape);

/** A duration string with a unit, parsed to milliseconds. */
const duration = (opts: { min?: number; max?: number } = {}) =>
  z
    .string({ error: "must be a duration with a unit, such as 500ms, 5s, 5m, 2h or 5d" })
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === null) {
        ctx.addIssue({
          code: "custom",
          message: `"${text}" is not a duration: use a number and a unit (ms, s, m, h, d)`,
        });
        return z.NEVER;
      }
      if (opts.min !== undefined && ms < opts.min) {
        ctx.addIssue({ code: "custom", message: `must be at least ${opts.min}ms` });
        return z.NEVER;
      }
      if (opts.max !== undefined && ms > opts.max) {
        ctx.addIssue({ code: "custom", message: `must be at most ${opts.max}ms` });
        return z.NEVER;
      }
      return ms;
    });

// Values that came from `${ENV}` are strings: numeric and boolean keys accept their text forms.
const fromText = (value: unknown) => {
  if (typeof value !== "string") return value;
  const text = value.trim();
  if (/^-?\d+$/.test(text)) return Number(text);
  if (text === "true" || text === "false") return text === "true";
  return value;
};
const int = (min: number, max: number) =>
  z.preprocess(
    fromText,
    // Bounds carry their own messages: the schema-level `error` would otherwise replace them too.
    z
      .number({ error: "must be a number" })
      .int("must be a whole number")
      .min(min, `must be at least ${min}`)
      .max(max, `must be at most ${max}`),
  );
const positiveInt = (max: number) => int(1, max);
const bool = () => z.preprocess(fromText, z.boolean({ error: "must be true or false" }));

const DEFAULT_RETRY_SCHEDULE = ["5s", "5m", "30m", "2h", "5h", "10h", "10h"];

const retrySchedule = z.union(
  [
    z
      .array(duration({ min: 0, max: 30 * 86_400_000 }))
      .min(1, "needs at least one delay")
      .max(100),
    strict({ every: duration({ min: 1 }), for: duration({ min: 1 }) }),
  ],
  { error: "must be a list of durations or { every, for }" },
);

const tenant = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'")
  .optional();

/** Which objects a credential sees and creates (SPEC §2 Live and test mode). */
const mode = z.enum(MODES).default(DEFAULT_MODE);

const apiKey = strict({
  name: z.string().min(1).max(100),
  key: z.string().min(16, "must be at least 16 characters").max(512).optional(),
  key_sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex characters (the SHA-256 of the key)")
    .transform((hex) => hex.toLowerCase())
    .optional(),
  scopes: z.array(z.enum([...SCOPES, "*"])).min(1, "needs at least one scope"),
  tenant,
  mode,
}).superRefine((key, ctx) => {
  if ((key.key === undefined) === (key.key_sha256 === undefined)) {
    ctx.addIssue({ code: "custom", message: "needs exactly one of key or key_sha256" });
  }
});

/** An OAuth2 client (SPEC §2 OAuth2 client credentials): the same scopes, tenant and mode as a key's. */
const oauthClient = strict({
  // RFC 3986's unreserved characters: the id reads the same however a client encodes it (§2.3.1).
  client_id: z
    .string()
    .regex(/^[A-Za-z0-9._~-]{1,128}$/, "must be 1-128 letters, digits, '.', '_', '~' or '-'"),
  client_secret: z.string().min(16, "must be at least 16 characters").max(512).optional(),
  client_secret_sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex characters (the SHA-256 of the secret)")
    .transform((hex) => hex.toLowerCase())
    .optional(),
  scopes: z.array(z.enum([...SCOPES, "*"])).min(1, "needs at least one scope"),
  tenant,
  mode,
}).superRefine((client, ctx) => {
  if ((client.client_secret === undefined) === (client.client_secret_sha256 === undefined)) {
    ctx.addIssue({ code: "custom", message: "needs exactly one of client_secret or client_secret_sha256" });
  }
});

const eventType = strict({
  name: z.string().refine(isValidEventTypeName, "must be a dot-separated name such as invoice.paid"),
  description: z.string().max(1000).default(""),
  schema: z
    .record(z.string(), z.unknown())
    .superRefine((schema, ctx) => {
      const problem = schemaProblem(schema);
      if (problem) ctx.addIssue({ code: "custom", message: `is not a valid JSON Schema: ${problem}` });
    })
    .optional(),
});

/**
 * A CSP frame-ancestors source (SPEC §7 console.frame_ancestors): an origin, a wildcard-subdomain
 * origin or 'self'. Nothing that could end the directive (spaces, ';', ',') gets through.
 */
const frameAncestor = z
  .string()
  .regex(
    /^(?:'self'|https?:\/\/(?:\*\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d{1,5})?)$/,
    "must be an origin such as https://app.example.com (or https://*.example.com, or 'self')",
  );

function isPublicUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (
      (url.protocol === "http:" || url.protocol === "https:") &&
      url.username === "" &&
      url.password === "" &&
      url.search === "" &&
      url.hash === "" &&
      !text.includes("?") &&
      !text.includes("#")
    );
  } catch {
    return false;
  }
}

/**
 * The public URL when server.public_url is not set: http://<host>:<port>, a wildcard host
 * (0.0.0.0, ::) read as 127.0.0.1, since a browser cannot open it.
 */
export function defaultPublicUrl(host: string, port: number): string {
  const shown = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host;
  return `http://${shown.includes(":") ? `[${shown}]` : shown}:${port}`;
}

const cidr = z.string().refine((text) => parseCidr(text) !== null, "must be a CIDR range such as 10.0.0.0/8");

export const configSchema = strict({
  server: strict({
    host: z.string().min(1).default("127.0.0.1"),
    port: int(0, 65535).default(8080),
    /** How browsers reach this server (portal and console links); default from host and port. */
    public_url: z
      .string()
      .refine(isPublicUrl, "must be an http:// or https:// URL without credentials, query or fragment")
      .transform((url) => url.replace(/\/+$/, ""))
      .optional(),
  }).prefault({}),
  storage: strict({
    driver: z.enum(["sqlite", "postgres"]).default("sqlite"),
    sqlite: strict({
      path: z.string().min(1).default("./data/hookd.db"),
      synchronous: z.enum(["full", "normal"]).default("full"),
    }).prefault({}),
    postgres: strict({
      url: z
        .string()
        .min(1)
        .refine((url) => /^postgres(ql)?:\/\//.test(url), "must be a postgres:// or postgresql:// URL")
        .optional(),
      pool_size: positiveInt(1000).default(10),
      statement_timeout: duration({ min: 100, max: 600_000 }).prefault("5s"),
    }).prefault({}),
  })
    .prefault({})
    .superRefine((storage, ctx) => {
      if (storage.driver === "postgres" && !storage.postgres.url) {
        ctx.addIssue({
          code: "custom",
          path: ["postgres", "url"],
          message: "is required when driver is postgres",
        });
      }
    }),
  console: strict({
    enabled: bool().default(true),
    frame_ancestors: z.array(frameAncestor).max(50).default([]),
  }).prefault({}),
  auth: strict({
    keys: z.array(apiKey).default([]),
    oauth_clients: z.array(oauthClient).default([]),
    token_ttl: duration({ min: 1000, max: 86_400_000 }).prefault("1h"),
  })
    .prefault({})
    .superRefine((auth, ctx) => {
      const seen = new Set<string>();
      auth.keys.forEach((key, index) => {
        if (seen.has(key.name))
          ctx.addIssue({ code: "custom", path: ["keys", index, "name"], message: "is used twice" });
        seen.add(key.name);
      });
      // A client id names its principal in logs and rate-limit buckets, as a key's name does.
      const clients = new Set<string>();
      auth.oauth_clients.forEach((client, index) => {
        const path = ["oauth_clients", index, "client_id"];
        if (clients.has(client.client_id)) ctx.addIssue({ code: "custom", path, message: "is used twice" });
        else if (seen.has(client.client_id))
          ctx.addIssue({ code: "custom", path, message: "is also the name of an API key" });
        clients.add(client.client_id);
      });
    }),
  rate_limits: strict({
    read: positiveInt(1_000_000).default(600),
    write: positiveInt(1_000_000).default(300),
    ingest: positiveInt(10_000_000).default(6000),
  }).prefault({}),
  event_types: z
    .array(eventType)
    .default([])
    .superRefine((types, ctx) => {
      const seen = new Set<string>();
      types.forEach((type, index) => {
        if (seen.has(type.name))
          ctx.addIssue({ code: "custom", path: [index, "name"], message: "is declared twice" });
        seen.add(type.name);
      });
    }),
  limits: strict({
    max_payload_bytes: int(1024, 64 * 1024 * 1024).default(262_144),
    idempotency_window: duration({ min: 1000 }).prefault("24h"),
  }).prefault({}),
  delivery: strict({
    timeout: duration({ min: 1000, max: 60_000 }).prefault("10s"),
    retry_schedule: retrySchedule.prefault(DEFAULT_RETRY_SCHEDULE),
    max_in_flight: positiveInt(10_000).default(256),
    max_in_flight_per_webhook: positiveInt(1000).default(8),
    lease: duration({ min: 1000 }).prefault("60s"),
    disable_after: duration({ min: 0 }).prefault("5d"),
    disable_after_failures: positiveInt(1_000_000).default(10),
    allow_http: bool().default(false),
    allow_private_networks: bool().default(false),
    allowed_cidrs: z.array(cidr).default([]),
  }).prefault({}),
  retention: duration({ min: 60_000 }).prefault("30d"),
  shutdown_grace: duration({ min: 0 }).prefault("10s"),
  log: strict({ level: z.enum(LOG_LEVELS).default("info") }).prefault({}),
}).superRefine((config, ctx) => {
  // An idempotency key must not outlive the event it answers with.
  if (config.retention < config.limits.idempotency_window) {
    ctx.addIssue({
      code: "custom",
      path: ["retention"],
      message: "must be at least limits.idempotency_window",
    });
  }
});

export type Config = z.output<typeof configSchema>;
export type ApiKeyConfig = Config["auth"]["keys"][number];
export type OAuthClientConfig = Config["auth"]["oauth_clients"][number];
export type EventTypeConfig = Config["event_types"][number];
