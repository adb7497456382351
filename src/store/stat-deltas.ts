// The columns of webhook_stats both drivers write and read (the migrations spell them out), and the
// deltas an ingest or a settle batch adds to them.
import { createStatDeltas, DURATION_BUCKETS, type StatDelta } from "../domain/stats.ts";
import type { AttemptResult } from "./store.ts";

/** d0..d27: attempts per duration bucket (domain/stats.ts DURATION_BOUNDS_MS). */
export const DURATION_COLUMNS: readonly string[] = Array.from(
  { length: DURATION_BUCKETS },
  (_, i) => `d${i}`,
);
export const COUNT_COLUMNS: readonly string[] = [
  "events",
  "attempts",
  "succeeded",
  "failed",
  ...DURATION_COLUMNS,
];

/** A delta as one JSON array: span, webhook_id, start, tenant_id, mode, then COUNT_COLUMNS. */
export function deltaTuple(delta: StatDelta, mode: string): (string | number)[] {
  return [
    delta.span,
    delta.webhookId,
    delta.start,
    delta.tenantId,
    mode,
    delta.events,
    delta.attempts,
    delta.succeeded,
    delta.failed,
    ...delta.durations,
  ];
}

/** The first COUNT_COLUMNS position in a delta tuple. */
export const TUPLE_COUNTS_AT = 5;

/** A settle batch's deltas: every attempt recorded (applied or not), by when it started. */
export function settleDeltas(results: readonly AttemptResult[]): StatDelta[] {
  const deltas = createStatDeltas();
  for (const { webhookId, attempt, settlement } of results) {
    // The tenant is the webhook's, looked up by the statement ("" = unknown here).
    deltas.attempt(webhookId, "", attempt.startedAt, settlement.action === "succeed", attempt.durationMs);
  }
  return deltas.list();
}

/** An ingest's deltas: each event for the tenant (webhook ''), and once for each webhook it fans out to. */
export function ingestDeltas(
  tenantId: string,
  events: readonly { createdAt: number; webhookIds: readonly string[] }[],
): StatDelta[] {
  const deltas = createStatDeltas();
  for (const event of events) {
    deltas.event("", tenantId, event.createdAt);
    for (const webhookId of event.webhookIds) deltas.event(webhookId, tenantId, event.createdAt);
  }
  return deltas.list();
}
