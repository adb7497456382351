// Request and response shapes of /v1/events, /v1/deliveries and attempts.
import { z } from "zod";
import { type Attempt, DELIVERY_STATUSES, type Delivery, EVENT_STATUSES } from "../../domain/delivery.ts";
import { isValidEventTypeName } from "../../domain/event-types.ts";
import { toIso } from "../../runtime/clock.ts";
import type { EventRecord, EventWithStatus } from "../../store/store.ts";
import { pageQueryShape } from "../pagination.ts";
import { plainString, TENANT_ID, text } from "./webhooks.ts";

const eventType = plainString({ error: "must be a string" }).refine(
  isValidEventTypeName,
  "must be a dot-separated event type such as invoice.paid",
);
const accountId = text.min(1).max(255);
const clientId = plainString()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces");

export const eventInput = z.strictObject({
  type: eventType,
  // Kept as parsed (not rebuilt by zod, which would drop a "__proto__" key): it is re-serialized as is.
  data: z.custom<Record<string, unknown>>(
    (value) => value !== null && typeof value === "object" && !Array.isArray(value),
    { error: "must be a JSON object" },
  ),
  account_id: accountId.nullable().optional(),
  id: clientId
    .optional()
    .describe("Your id for this event: an idempotency key, like the Idempotency-Key header."),
});

export const publishBody = eventInput.extend({
  tenant_id: TENANT_ID.optional().describe("Admin keys only."),
});

export const batchBody = z.strictObject({
  events: z.array(eventInput).min(1, "needs at least one event").max(500, "at most 500 events"),
  tenant_id: TENANT_ID.optional().describe("Admin keys only."),
});

export const isoTime = z
  .string()
  .refine((text) => parseIsoTime(text) !== null, {
    message: "must be an ISO 8601 date or date-time, such as 2026-01-31T12:00:00Z",
  })
  .transform((text) => parseIsoTime(text) as number);

const ISO = /^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d)(?::(\d\d)(?:\.\d{1,9})?)?(Z|[+-]\d\d:?\d\d)?)?$/;

/** Milliseconds for an ISO 8601 date or date-time (UTC when no offset); null for impossible dates. */
export function parseIsoTime(text: string): number | null {
  const m = ISO.exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m
    .slice(1, 7)
    .map((v) => (v === undefined ? 0 : Number(v))) as number[];
  const probe = new Date(Date.UTC(year as number, (month as number) - 1, day as number));
  if (probe.getUTCMonth() !== (month as number) - 1 || probe.getUTCDate() !== day) return null;
  if ((hour as number) > 23 || (minute as number) > 59 || (second as number) > 59) return null;
  const ms = Date.parse(m[4] === undefined ? `${text}T00:00:00Z` : m[7] === undefined ? `${text}Z` : text);
  return Number.isNaN(ms) ? null : ms;
}

export const eventListQuery = z.object({
  ...pageQueryShape,
  type: eventType.optional(),
  status: z.enum(EVENT_STATUSES).optional(),
  account_id: accountId.optional(),
  from: isoTime.optional().describe("created_at at or after (ISO 8601)."),
  to: isoTime.optional().describe("created_at before (ISO 8601)."),
  tenant_id: TENANT_ID.optional().describe("Admin keys only."),
});

export const deliveryListQuery = z.object({
  ...pageQueryShape,
  status: z.enum(DELIVERY_STATUSES).optional(),
  event_id: z.string().min(1).max(255).optional(),
  webhook_id: z.string().min(1).max(255).optional(),
  tenant_id: TENANT_ID.optional().describe("Admin keys only."),
});

export const webhookDeliveryListQuery = z.object({
  ...pageQueryShape,
  status: z.enum(DELIVERY_STATUSES).optional(),
});

export const attemptListQuery = z.object({ ...pageQueryShape });

export const recoverBody = z
  .strictObject({ since: isoTime, until: isoTime.optional() })
  .refine((body) => body.until === undefined || body.until > body.since, {
    path: ["until"],
    message: "must be after since",
    // Only between two valid times: a bad date is reported once, as itself.
    when: (payload) => payload.issues.length === 0,
  });

export const eventSummary = z.object({
  id: z.string(),
  tenant_id: z.string(),
  type: z.string(),
  account_id: z.string().nullable(),
  created_at: z.string(),
  deliveries_count: z.number(),
});

export const eventDetail = eventSummary.extend({
  data: z.record(z.string(), z.unknown()),
  status: z.enum(EVENT_STATUSES),
  deliveries: z.record(z.string(), z.number()).describe("Deliveries by status, and their total."),
});

export const deliveryResource = z.object({
  id: z.string(),
  tenant_id: z.string(),
  event_id: z.string(),
  webhook_id: z.string(),
  event_type: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number(),
  response_status_code: z.number().nullable(),
  last_attempt_at: z.string().nullable(),
  next_retry_at: z.string().nullable(),
  created_at: z.string(),
  payload: z.string().describe("The exact body sent."),
  signature: z.string().nullable().describe("The last webhook-signature header sent."),
});

export const attemptResource = z.object({
  id: z.string(),
  started_at: z.string(),
  duration_ms: z.number(),
  response_status_code: z.number().nullable(),
  response_headers: z.record(z.string(), z.string()).nullable(),
  response_body: z.string().nullable().describe("The first 4 KiB."),
  error: z.string().nullable(),
});

export const renderEventSummary = (event: EventRecord) => ({
  id: event.id,
  tenant_id: event.tenantId,
  type: event.type,
  account_id: event.accountId,
  created_at: toIso(event.createdAt),
  deliveries_count: event.deliveriesCount,
});

export function renderEventDetail(event: EventWithStatus) {
  const counts = Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, event.deliveryCounts[s] ?? 0]));
  return {
    ...renderEventSummary(event),
    data: (JSON.parse(event.payload) as { data: Record<string, unknown> }).data,
    status: event.status,
    deliveries: { total: event.deliveriesCount, ...counts },
  };
}

export const renderDelivery = (d: Delivery) => ({
  id: d.id,
  tenant_id: d.tenantId,
  event_id: d.eventId,
  webhook_id: d.webhookId,
  event_type: d.eventType,
  status: d.status,
  attempts: d.attempts,
  response_status_code: d.responseStatusCode,
  last_attempt_at: d.lastAttemptAt === null ? null : toIso(d.lastAttemptAt),
  next_retry_at: d.nextAttemptAt === null ? null : toIso(d.nextAttemptAt),
  created_at: toIso(d.createdAt),
  payload: d.payload,
  signature: d.signature,
});

export const renderAttempt = (a: Attempt) => ({
  id: a.id,
  started_at: toIso(a.startedAt),
  duration_ms: a.durationMs,
  response_status_code: a.responseStatusCode,
  response_headers: a.responseHeaders,
  response_body: a.responseBody,
  error: a.error,
});
