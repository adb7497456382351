// Request and response shapes of /v1/webhooks, built from the config (URL policy, event catalog,
// defaults). These zod schemas validate requests and generate /openapi.json.
import { z } from "zod";
import type { EventCatalog } from "../../domain/event-types.ts";
import { isValidEventPattern, isValidEventTypeName } from "../../domain/event-types.ts";
import { type Filter, filterProblems, MAX_FILTER_BYTES, MAX_FILTER_DEPTH } from "../../domain/filter.ts";
import { MODES } from "../../domain/mode.ts";
import { decodeSecret, isSigningKey, publicKeyOf, secretLast4 } from "../../domain/secrets.ts";
import {
  DISABLED_REASONS,
  headerNameProblem,
  headerValueProblem,
  MAX_RATE_LIMIT,
  ORDERINGS,
  SIGNATURE_SCHEMES,
  type UrlPolicy,
  type Webhook,
  webhookUrlProblem,
} from "../../domain/webhook.ts";
import { toIso } from "../../runtime/clock.ts";
import { WEBHOOK_ORDERS } from "../../store/store.ts";
import { pageQueryShape } from "../pagination.ts";

/**
 * A string stored in a plain text column. PostgreSQL's text cannot hold U+0000 (SQLite's can), so
 * it is refused here for both drivers alike; that check runs first and alone (`abort`), so a NUL is
 * reported as itself rather than as whatever format the field has. Strings kept inside JSON (event
 * data, metadata, headers) are not plain columns and are not checked here.
 */
export const plainString = (params?: Parameters<typeof z.string>[0]) =>
  z.string(params).refine((s) => !s.includes("\u0000"), {
    message: "must not contain the NUL character (U+0000)",
    abort: true,
  });

export const TENANT_ID = plainString().regex(
  /^[A-Za-z0-9_-]{1,64}$/,
  "must be 1-64 letters, digits, '_' or '-'",
);
/** live or test (SPEC §2 Live and test mode). */
export const MODE = z.enum(MODES, { error: 'must be "live" or "test"' });
export const MODE_ON_READ =
  "Admin credentials only (a tenant credential may name its own); defaults to the credential's mode.";
const MODE_ON_WRITE = MODE_ON_READ;
/** The query of a route that names one object: an admin credential reaches the other mode with `mode`. */
export const objectQuery = z.object({ mode: MODE.optional().describe(MODE_ON_READ) });
/** A string that survives storage unchanged: no NUL, no lone UTF-16 surrogates (they would become U+FFFD). */
export const text = plainString().refine(
  (s) => s.isWellFormed(),
  "must be valid Unicode (no lone surrogates)",
);
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

function stringMap(options: { maxEntries: number; maxKey: number; maxValue: number }) {
  const map = z.record(z.string(), z.string({ error: "must be a string" })).superRefine((map, ctx) => {
    const entries = Object.entries(map);
    if (entries.length > options.maxEntries) {
      ctx.addIssue({ code: "custom", message: `must have at most ${options.maxEntries} entries` });
    }
    for (const [key, value] of entries) {
      if (FORBIDDEN_KEYS.has(key)) {
        ctx.addIssue({ code: "custom", path: [key], message: "is a reserved key" });
      } else if (key.length === 0 || key.length > options.maxKey) {
        ctx.addIssue({ code: "custom", path: [key], message: `keys must be 1-${options.maxKey} characters` });
      }
      if (!key.isWellFormed() || !value.isWellFormed()) {
        ctx.addIssue({ code: "custom", path: [key], message: "must be valid Unicode (no lone surrogates)" });
      }
      if (value.length > options.maxValue) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `must be at most ${options.maxValue} characters`,
        });
      }
    }
  });
  // zod leaves a `__proto__` key out of a parsed record without an issue, so the check above never
  // sees it: look for it in the raw input, or the map would be stored without it, silently.
  return z.preprocess((input, ctx) => {
    if (input !== null && typeof input === "object" && Object.hasOwn(input, "__proto__")) {
      ctx.addIssue({ code: "custom", path: ["__proto__"], message: "is a reserved key" });
    }
    return input;
  }, map);
}

const metadataField = stringMap({ maxEntries: 50, maxKey: 255, maxValue: 1000 }).describe(
  "Free-form string to string map, for your own use.",
);

const headersField = stringMap({ maxEntries: 50, maxKey: 256, maxValue: 4096 })
  .superRefine((headers, ctx) => {
    const seen = new Set<string>();
    for (const [name, value] of Object.entries(headers)) {
      const problem = headerNameProblem(name) ?? headerValueProblem(value);
      if (problem) ctx.addIssue({ code: "custom", path: [name], message: problem });
      if (seen.has(name.toLowerCase()))
        ctx.addIssue({ code: "custom", path: [name], message: "is given twice" });
      seen.add(name.toLowerCase());
    }
  })
  .describe("Custom headers added to every delivery.");

/** A payload filter (docs/filters.md); each fault is reported at its own path, `filter.data.amount.$gt`. */
const filterField = z
  .unknown()
  .superRefine((value, ctx) => {
    if (value === null) return;
    for (const problem of filterProblems(value)) {
      ctx.addIssue({
        code: "custom",
        path: problem.path === "" ? [] : [problem.path],
        message: problem.message,
      });
    }
  })
  .transform((value) => value as Filter | null)
  .meta({
    type: "object",
    nullable: true,
    additionalProperties: true,
    description: `Matched against each event's {type, account_id, data} at fan-out; an event that does not match creates no delivery for this webhook (the test event is not filtered). Dotted paths to literals (equality) or operators ($eq $neq $gt $gte $lt $lte $in $nin $exists $startsWith $endsWith $contains), combined with $and, $or, $not; at most ${MAX_FILTER_BYTES} bytes and ${MAX_FILTER_DEPTH} levels. null for none. See docs/filters.md.`,
    example: { "data.amount": { $gte: 1000 }, "data.customer.country": { $in: ["DE", "FR"] } },
  });

const orderingField = z
  .enum(ORDERINGS, { error: "must be 'unordered' or 'fifo'" })
  .describe(
    "fifo: one attempt at a time (max_in_flight counts as 1), in the order the events were created (ties by event id); a failing delivery holds the later ones pending until it ends, then the next goes at once; a manual retry of an older delivery waits for the attempt in flight. unordered: no per-webhook order. See docs/ordering-and-rate-limits.md.",
  );
const rateLimitField = z
  .number({ error: "must be a whole number or null" })
  .int("must be a whole number")
  .min(1)
  .max(MAX_RATE_LIMIT)
  .nullable()
  .describe(
    `At most this many attempts started within any one-second window (a burst of N, then about N a second), for all instances together, 1-${MAX_RATE_LIMIT}; deliveries over it wait (pending or retrying), are not counted as attempts and never fail for it. null for no limit.`,
  );
const signatureSchemeField = z
  .enum(SIGNATURE_SCHEMES, { error: "must be 'v1' or 'v1a'" })
  .describe(
    "v1: HMAC-SHA256 with a whsec_ secret; v1a: Ed25519, hookd makes the key pair and shows its public_key.",
  );

export function createWebhookSchemas(options: {
  catalog: EventCatalog;
  urlPolicy: UrlPolicy;
  maxInFlightCap: number;
}) {
  const { catalog, urlPolicy } = options;

  const url = plainString({ error: "must be a string" })
    .superRefine((text, ctx) => {
      const problem = webhookUrlProblem(text, urlPolicy);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .describe("The https URL deliveries are POSTed to.");

  const events = z
    .union(
      [
        z.string(),
        z
          .array(z.string({ error: "must be a string" }))
          .min(1, "needs at least one event type")
          .max(100),
      ],
      {
        error: "must be an event type, a pattern, or a list of them",
      },
    )
    .superRefine((value, ctx) => {
      const list = typeof value === "string" ? [value] : value;
      list.forEach((pattern, index) => {
        const path = typeof value === "string" ? [] : [index];
        if (!isValidEventPattern(pattern)) {
          ctx.addIssue({
            code: "custom",
            path,
            message: `"${pattern.slice(0, 100)}" is not an event type, '*' or 'prefix.*'`,
          });
        } else if (!catalog.isKnownPattern(pattern)) {
          ctx.addIssue({
            code: "custom",
            path,
            message: `unknown_event_type: "${pattern}" is not in the event type catalog`,
            params: { code: "unknown_event_type" },
          });
        }
      });
    })
    .transform((value) => [...new Set(typeof value === "string" ? [value] : value)])
    .describe("Event types or patterns (`*`, `invoice.*`); a single string is accepted.");

  const accountIds = z
    .array(text.min(1).max(255))
    .min(1, "needs at least one account id, or null for every account")
    .max(1000)
    .nullable()
    .describe("When set, only events of these accounts are delivered.");

  const name = text.min(1, "must not be empty").max(255);
  const description = text.max(1000).nullable();
  const timeoutSeconds = z.number().int("must be a whole number").min(1).max(60);
  const maxInFlight = z.number().int("must be a whole number").min(1).max(options.maxInFlightCap);

  const create = z
    .strictObject({
      url,
      events,
      name: name.optional().describe("Defaults to the URL's host."),
      description: description.optional(),
      account_ids: accountIds.optional(),
      enabled: z.boolean().optional(),
      timeout_seconds: timeoutSeconds.optional().describe("Defaults to delivery.timeout."),
      headers: headersField.optional(),
      metadata: metadataField.optional(),
      max_in_flight: maxInFlight.optional().describe("Defaults to delivery.max_in_flight_per_webhook."),
      filter: filterField.optional(),
      ordering: orderingField.optional().describe("Default unordered."),
      rate_limit: rateLimitField.optional(),
      signature_scheme: signatureSchemeField.optional().describe("Default v1."),
      secret: z
        .string()
        .refine((s) => decodeSecret(s) !== null, "must be 'whsec_' followed by the base64 of 24 to 64 bytes")
        .optional()
        .describe("v1 only: your own secret; generated when absent."),
      tenant_id: TENANT_ID.optional().describe("Admin keys only; defaults to 'default'."),
      mode: MODE.optional().describe(MODE_ON_WRITE),
    })
    .superRefine((input, ctx) => {
      if (input.secret !== undefined && input.signature_scheme === "v1a") {
        ctx.addIssue({
          code: "custom",
          path: ["secret"],
          message: "a v1a webhook has no secret: hookd makes its Ed25519 key pair",
        });
      }
    });

  const readOnly = z.unknown().optional().describe("Read-only; ignored.");
  const update = z.strictObject({
    url: url.optional(),
    events: events.optional(),
    name: name.optional(),
    description: description.optional(),
    account_ids: accountIds.optional(),
    enabled: z.boolean().optional(),
    timeout_seconds: timeoutSeconds.nullable().optional().describe("null resets to delivery.timeout."),
    headers: headersField.nullable().optional().describe("null clears every custom header."),
    metadata: metadataField.nullable().optional().describe("null clears the metadata."),
    max_in_flight: maxInFlight.nullable().optional().describe("null resets to the configured default."),
    filter: filterField
      .optional()
      .describe("The payload filter, as on create (see docs/filters.md); null removes it."),
    ordering: orderingField.optional(),
    rate_limit: rateLimitField.optional().describe("null removes the limit."),
    signature_scheme: signatureSchemeField
      .optional()
      .describe(
        "A change makes new key material at once (a secret for v1, a key pair for v1a), shown in this answer; the old secret or key stops signing at once.",
      ),
    secret: z.never({ error: "cannot be changed here: use POST /v1/webhooks/{id}/rotate-secret" }).optional(),
    tenant_id: TENANT_ID.optional().describe("Read-only: must equal the current tenant when given."),
    mode: MODE.optional().describe("Read-only: must equal the webhook's mode when given."),
    id: readOnly,
    secret_last4: readOnly,
    public_key: readOnly,
    disabled_reason: readOnly,
    created_at: readOnly,
    updated_at: readOnly,
  });

  const list = z.object({
    ...pageQueryShape,
    order: z.enum(WEBHOOK_ORDERS).optional().describe("Default -created_at."),
    event: z
      .string()
      .refine(isValidEventTypeName, "must be an event type name")
      .optional()
      .describe("Subscriptions that would receive this event type."),
    enabled: z.enum(["true", "false"], { error: "must be true or false" }).optional(),
    account_id: z
      .string()
      .min(1)
      .max(255)
      .optional()
      .describe("Subscriptions that would receive this account's events."),
    search: plainString()
      .min(1)
      .max(200)
      .optional()
      .describe(
        "Subscriptions whose name, URL, id or description contains this text (ASCII letters in any case).",
      ),
    ordering: z.enum(ORDERINGS, { error: "must be 'unordered' or 'fifo'" }).optional(),
    tenant_id: TENANT_ID.optional().describe("Admin keys only."),
    mode: MODE.optional().describe(MODE_ON_READ),
  });

  const rotate = z.strictObject({
    grace_period_seconds: z
      .number()
      .int("must be a whole number")
      .min(0)
      .max(604_800)
      .optional()
      .describe("How long the old secret keeps signing deliveries, 0-604800 (default 0)."),
    secret: z
      .string()
      .refine((s) => decodeSecret(s) !== null, "must be 'whsec_' followed by the base64 of 24 to 64 bytes")
      .optional()
      .describe("v1 only: your own new secret; generated when absent."),
  });

  return { create, update, list, rotate };
}

export const webhookResource = z.object({
  id: z.string(),
  tenant_id: z.string(),
  mode: MODE,
  name: z.string(),
  description: z.string().nullable(),
  url: z.string(),
  events: z.array(z.string()),
  account_ids: z.array(z.string()).nullable(),
  enabled: z.boolean(),
  disabled_reason: z.enum(DISABLED_REASONS).nullable(),
  timeout_seconds: z.number(),
  headers: z.record(z.string(), z.string()),
  metadata: z.record(z.string(), z.string()),
  max_in_flight: z.number(),
  filter: z.record(z.string(), z.unknown()).nullable(),
  ordering: z.enum(ORDERINGS),
  rate_limit: z.number().nullable(),
  signature_scheme: z.enum(SIGNATURE_SCHEMES),
  public_key: z
    .string()
    .nullable()
    .describe(
      "v1a: the Ed25519 public key receivers verify with ('whpk_' + base64 of 32 bytes); null for v1.",
    ),
  secret_last4: z.string().describe("The last 4 characters of the secret (v1) or of public_key (v1a)."),
  created_at: z.string(),
  updated_at: z.string(),
});

export const webhookWithSecret = webhookResource.extend({
  secret: z.string().optional().describe("v1 only: the full secret, shown here and at rotation only."),
});

export type WebhookResource = z.output<typeof webhookResource>;

/** A webhook as answered with its new key material: the full secret for v1, nothing more for v1a. */
export function renderWithSecret(w: Webhook): WebhookResource & { secret?: string } {
  return w.signatureScheme === "v1" && !isSigningKey(w.secret)
    ? { ...renderWebhook(w), secret: w.secret }
    : renderWebhook(w);
}

export function renderWebhook(w: Webhook): WebhookResource {
  return {
    id: w.id,
    tenant_id: w.tenantId,
    mode: w.mode,
    name: w.name,
    description: w.description,
    url: w.url,
    events: w.events,
    account_ids: w.accountIds,
    enabled: w.enabled,
    disabled_reason: w.disabledReason,
    timeout_seconds: w.timeoutSeconds,
    headers: w.headers,
    metadata: w.metadata,
    max_in_flight: w.maxInFlight,
    filter: w.filter,
    ordering: w.ordering,
    rate_limit: w.rateLimit,
    signature_scheme: w.signatureScheme,
    public_key: isSigningKey(w.secret) ? publicKeyOf(w.secret) : null,
    secret_last4: secretLast4(w.secret),
    created_at: toIso(w.createdAt),
    updated_at: toIso(w.updatedAt),
  };
}
