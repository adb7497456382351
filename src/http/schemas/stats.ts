// Query and answer of GET /v1/stats and GET /v1/webhooks/{id}/stats (SPEC §2 Statistics).
import { z } from "zod";
import { STAT_BUCKETS } from "../../domain/stats.ts";
import { isoTime } from "./events.ts";
import { TENANT_ID } from "./webhooks.ts";

const BUCKETS = Object.keys(STAT_BUCKETS) as [keyof typeof STAT_BUCKETS, ...(keyof typeof STAT_BUCKETS)[]];

const rangeShape = {
  since: isoTime
    .optional()
    .describe("Start (ISO 8601; default: 24 hours before until), down to its bucket's start."),
  until: isoTime.optional().describe("End (ISO 8601; default: now), up to its bucket's end."),
  bucket: z
    .enum(BUCKETS)
    .optional()
    .describe("Bucket width: 1m, 1h (default) or 1d (UTC days); at most 1000 buckets."),
};

export const statsQuery = z.object({
  ...rangeShape,
  webhook_id: z.string().min(1).max(255).optional().describe("One subscription alone."),
  tenant_id: TENANT_ID.optional().describe("Admin keys only."),
});

export const webhookStatsQuery = z.object(rangeShape);

export const statsResource = z.object({
  since: z.string(),
  until: z.string(),
  bucket: z.enum(BUCKETS),
  series: z.array(
    z.object({
      start: z.string(),
      events: z.number(),
      attempts: z.number(),
      succeeded: z.number(),
      failed: z.number(),
    }),
  ),
  totals: z.object({
    events: z.number(),
    attempts: z.number(),
    succeeded: z.number(),
    failed: z.number(),
    success_rate: z.number().nullable(),
    p50_ms: z.number().nullable().describe("Approximate (a fixed histogram of durations, docs/portal.md)."),
    p95_ms: z.number().nullable(),
  }),
  queue: z.object({ depth: z.number(), oldest_due_seconds: z.number() }),
  webhooks: z.object({ enabled: z.number(), disabled: z.number(), failing: z.number() }),
});
