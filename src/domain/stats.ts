// Delivery statistics (SPEC §2 Statistics): the aggregates both stores keep, and the answer built
// from them. Pure.
//
// The stores keep, per webhook and per minute, hour and UTC day ("spans"), the events fanned out to
// it, its attempts, how many succeeded and failed, and a histogram of attempt durations over the
// fixed bounds below (plus a tenant-level row, webhook_id '', counting events accepted). A request
// sums the rows of one span; nothing scans deliveries or attempts.
//
// Percentiles are approximate: the histogram says how many attempts fell between two bounds, and
// the percentile is interpolated linearly inside the bucket that holds its rank. The error is at
// most the width of that bucket (bounds grow by about 1.5x, so within roughly ±25% of the value);
// an attempt longer than the last bound counts as that bound.
import type { Mode } from "./mode.ts";

/** Upper bounds (exclusive, in ms) of the duration histogram; the last bucket is open-ended. */
export const DURATION_BOUNDS_MS = [
  1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 5000, 7000,
  10_000, 20_000, 30_000, 60_000,
] as const;
/** Buckets: one per bound, and one for everything at or above the last bound. */
export const DURATION_BUCKETS = DURATION_BOUNDS_MS.length + 1;

export function durationBucket(ms: number): number {
  for (let i = 0; i < DURATION_BOUNDS_MS.length; i++) if (ms < (DURATION_BOUNDS_MS[i] as number)) return i;
  return DURATION_BOUNDS_MS.length;
}

/** The `p` quantile (0–1) of a histogram of durations; null when it is empty. */
export function percentile(histogram: readonly number[], p: number): number | null {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(p * total));
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    const n = histogram[i] as number;
    if (n === 0) continue;
    if (seen + n >= rank) {
      const lower = i === 0 ? 0 : (DURATION_BOUNDS_MS[i - 1] as number);
      if (i >= DURATION_BOUNDS_MS.length) return lower;
      const upper = DURATION_BOUNDS_MS[i] as number;
      return Math.round((lower + ((upper - lower) * (rank - seen)) / n) * 10) / 10;
    }
    seen += n;
  }
  return DURATION_BOUNDS_MS[DURATION_BOUNDS_MS.length - 1] as number;
}

export const STAT_BUCKETS = { "1m": 60_000, "1h": 3_600_000, "1d": 86_400_000 } as const;
export type StatBucket = keyof typeof STAT_BUCKETS;
/** The spans the stores keep: a bucket of the API is read from the span of the same width. */
export const STAT_SPANS = Object.values(STAT_BUCKETS);
export const MAX_STAT_BUCKETS = 1000;

/** One span's counts, as the stores write them (one per webhook, span start; summed on read). */
export interface StatCounts {
  events: number;
  attempts: number;
  succeeded: number;
  failed: number;
  /** DURATION_BUCKETS counts. */
  durations: number[];
}

export const emptyCounts = (): StatCounts => ({
  events: 0,
  attempts: 0,
  succeeded: 0,
  failed: 0,
  durations: new Array(DURATION_BUCKETS).fill(0),
});

/** Adds to one row per (webhook, span, span start) of a write: what an ingest or a settle adds. */
export interface StatDelta extends StatCounts {
  webhookId: string;
  tenantId: string;
  /** Of the events counted (an attempt's row takes its webhook's mode when written). */
  mode: Mode;
  span: number;
  start: number;
}

export type StatDeltas = ReturnType<typeof createStatDeltas>;

/** Accumulates the deltas of one write batch, one per (webhook, span, start), in a stable order. */
export function createStatDeltas(): {
  event(webhookId: string, tenantId: string, at: number, n?: number, mode?: Mode): void;
  attempt(webhookId: string, tenantId: string, at: number, ok: boolean, durationMs: number): void;
  list(): StatDelta[];
} {
  const deltas = new Map<string, StatDelta>();
  // A batch's events mostly share their millisecond: each webhook's last rows found are kept.
  const recent = new Map<string, { at: number; mode: Mode; rows: StatDelta[] }>();
  const rows = (webhookId: string, tenantId: string, at: number, mode: Mode = "live") => {
    const known = recent.get(webhookId);
    if (known && known.at === at && known.mode === mode) return known.rows;
    const found = STAT_SPANS.map((span) => {
      const start = at - (((at % span) + span) % span);
      const key = `${span}\u0000${webhookId}\u0000${start}\u0000${mode}`;
      let delta = deltas.get(key);
      if (!delta) {
        delta = { webhookId, tenantId, mode, span, start, ...emptyCounts() };
        deltas.set(key, delta);
      }
      return delta;
    });
    recent.set(webhookId, { at, mode, rows: found });
    return found;
  };
  return {
    event(webhookId, tenantId, at, n = 1, mode = "live") {
      for (const row of rows(webhookId, tenantId, at, mode)) row.events += n;
    },
    attempt(webhookId, tenantId, at, ok, durationMs) {
      const bucket = durationBucket(durationMs);
      for (const row of rows(webhookId, tenantId, at)) {
        row.attempts++;
        if (ok) row.succeeded++;
        else row.failed++;
        row.durations[bucket] = (row.durations[bucket] ?? 0) + 1;
      }
    },
    // Sorted like the table's key: writers on several instances lock rows in the same order.
    list: () =>
      [...deltas.values()].sort(
        (a, b) =>
          a.span - b.span ||
          (a.webhookId < b.webhookId ? -1 : a.webhookId > b.webhookId ? 1 : 0) ||
          a.start - b.start ||
          (a.mode < b.mode ? -1 : a.mode > b.mode ? 1 : 0),
      ),
  };
}

export interface StatsRange {
  since: number;
  until: number;
  bucket: StatBucket;
}

/**
 * The range a request covers: `since` down to its bucket's start, `until` up to a bucket's end
 * (UTC), so that every bucket is whole. An error message when it has more than MAX_STAT_BUCKETS.
 */
export function alignRange(since: number, until: number, bucket: StatBucket): StatsRange | { error: string } {
  const width = STAT_BUCKETS[bucket];
  const start = Math.floor(since / width) * width;
  const end = Math.max(start + width, Math.ceil(until / width) * width);
  const count = (end - start) / width;
  if (count > MAX_STAT_BUCKETS)
    return {
      error: `covers ${count} buckets of ${bucket}; at most ${MAX_STAT_BUCKETS} (use a larger bucket)`,
    };
  return { since: start, until: end, bucket };
}

export interface StatsAnswer {
  series: { start: number; events: number; attempts: number; succeeded: number; failed: number }[];
  totals: {
    events: number;
    attempts: number;
    succeeded: number;
    failed: number;
    success_rate: number | null;
    p50_ms: number | null;
    p95_ms: number | null;
  };
}

/** Every bucket of the range, zeros included, and the totals, from the summed rows of one span. */
export function buildStats(
  range: StatsRange,
  rows: readonly ({ start: number } & StatCounts)[],
): StatsAnswer {
  const width = STAT_BUCKETS[range.bucket];
  const byStart = new Map(rows.map((r) => [r.start, r]));
  const total = emptyCounts();
  const series: StatsAnswer["series"] = [];
  for (let start = range.since; start < range.until; start += width) {
    const row = byStart.get(start) ?? emptyCounts();
    series.push({
      start,
      events: row.events,
      attempts: row.attempts,
      succeeded: row.succeeded,
      failed: row.failed,
    });
    total.events += row.events;
    total.attempts += row.attempts;
    total.succeeded += row.succeeded;
    total.failed += row.failed;
    row.durations.forEach((n, i) => {
      total.durations[i] = (total.durations[i] ?? 0) + n;
    });
  }
  const rate = total.attempts === 0 ? null : Math.round((total.succeeded / total.attempts) * 10_000) / 10_000;
  return {
    series,
    totals: {
      events: total.events,
      attempts: total.attempts,
      succeeded: total.succeeded,
      failed: total.failed,
      success_rate: rate,
      p50_ms: total.attempts === 0 ? null : percentile(total.durations, 0.5),
      p95_ms: total.attempts === 0 ? null : percentile(total.durations, 0.95),
    },
  };
}
