// The columns of webhook_stats both drivers write and read (the migrations spell them out), and the
// deltas an ingest or a settle batch adds to them.

import type { Mode } from "../domain/mode.ts";
import { createStatDeltas, DURATION_BUCKETS, type StatDelta, type StatDeltas } from "../domain/stats.ts";
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
/** What a settle adds to (an ingest adds to `events` alone). */
export const ATTEMPT_COLUMNS: readonly string[] = ["attempts", "succeeded", "failed", ...DURATION_COLUMNS];

/** One write's deltas: an ingest's count events, a settle's count attempts. */
export type StatWrite = { kind: "events"; deltas: StatDelta[] } | { kind: "attempts"; deltas: StatDelta[] };

/** An attempt delta's values in ATTEMPT_COLUMNS order. */
export const attemptValues = (d: StatDelta): number[] => [d.attempts, d.succeeded, d.failed, ...d.durations];

/** A settle batch's deltas: every attempt recorded (applied or not), by when it started. */
export function settleDeltas(results: readonly AttemptResult[]): StatWrite {
  const deltas = createStatDeltas();
  for (const { webhookId, attempt, settlement } of results) {
    // The tenant is the webhook's, looked up by the statement ("" = unknown here).
    deltas.attempt(webhookId, "", attempt.startedAt, settlement.action === "succeed", attempt.durationMs);
  }
  return { kind: "attempts", deltas: deltas.list() };
}

/** Adds an ingest's events to `deltas`: each for the tenant (webhook ''), and once for each webhook it fans out to. */
export function recordIngest(
  deltas: StatDeltas,
  tenantId: string,
  events: readonly { createdAt: number; webhookIds: readonly string[] }[],
  mode: Mode = "live",
): void {
  for (const event of events) {
    deltas.event("", tenantId, event.createdAt, 1, mode);
    for (const webhookId of event.webhookIds) deltas.event(webhookId, tenantId, event.createdAt, 1, mode);
  }
}

/** An ingest's deltas (recordIngest) as one write. */
export function ingestDeltas(
  tenantId: string,
  events: readonly { createdAt: number; webhookIds: readonly string[] }[],
  mode: Mode = "live",
): StatWrite {
  const deltas = createStatDeltas();
  recordIngest(deltas, tenantId, events, mode);
  return { kind: "events", deltas: deltas.list() };
}
