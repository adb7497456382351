// Delivery states and the predicates over them: the one place that says which states are queued,
// final, or open to a manual retry (SPEC §2 Deliveries).
import type { Mode } from "./mode.ts";

export const DELIVERY_STATUS = Object.freeze({
  pending: "pending",
  retrying: "retrying",
  success: "success",
  failed: "failed",
  exhausted: "exhausted",
  cancelled: "cancelled",
} as const);

export type DeliveryStatus = (typeof DELIVERY_STATUS)[keyof typeof DELIVERY_STATUS];
export const DELIVERY_STATUSES = Object.values(DELIVERY_STATUS) as DeliveryStatus[];

/** Waiting for an attempt (now or later). */
export const QUEUED_STATUSES: readonly DeliveryStatus[] = ["pending", "retrying"];
/** Re-queued by POST /v1/deliveries/{id}/retry. */
export const RETRYABLE_STATUSES: readonly DeliveryStatus[] = ["failed", "exhausted", "success"];
/** Re-queued by POST /v1/webhooks/{id}/recover. */
export const RECOVERABLE_STATUSES: readonly DeliveryStatus[] = ["failed", "exhausted"];

export const isQueued = (status: DeliveryStatus) => QUEUED_STATUSES.includes(status);

export interface Delivery {
  id: string;
  tenantId: string;
  /** Its webhook's and event's mode. */
  mode: Mode;
  eventId: string;
  webhookId: string;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  responseStatusCode: number | null;
  lastAttemptAt: number | null;
  nextAttemptAt: number | null;
  createdAt: number;
  payload: string;
  signature: string | null;
}

export const EVENT_STATUSES = ["pending", "delivered", "failed", "no_subscribers"] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];

/** The aggregate status of an event from the counts of its deliveries by status. */
export function eventStatus(counts: Partial<Record<DeliveryStatus, number>>): EventStatus {
  const total = Object.values(counts).reduce((sum, n) => sum + (n ?? 0), 0);
  if (total === 0) return "no_subscribers";
  if ((counts.pending ?? 0) + (counts.retrying ?? 0) > 0) return "pending";
  if ((counts.failed ?? 0) + (counts.exhausted ?? 0) > 0) return "failed";
  if ((counts.success ?? 0) > 0) return "delivered";
  return "failed"; // every delivery was cancelled: nothing reached anyone
}

/** The error classes an attempt can end with (besides a non-2xx answer). */
export const ATTEMPT_ERRORS = [
  "timeout",
  "connection_refused",
  "connection_reset",
  "dns",
  "tls",
  "blocked_address",
  "redirect",
  "http_status",
  "invalid_response",
  "network",
] as const;
export type AttemptError = (typeof ATTEMPT_ERRORS)[number];

export interface Attempt {
  id: string;
  deliveryId: string;
  startedAt: number;
  durationMs: number;
  responseStatusCode: number | null;
  responseHeaders: Record<string, string> | null;
  responseBody: string | null;
  error: AttemptError | null;
}
