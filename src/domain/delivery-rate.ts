// Per-webhook rate limits (SPEC §3 "Rate limit"): at most N attempts started within any sliding
// window of one second, across instances. The store keeps, per limited webhook, the log of recent
// claims (when, how many); a claim may start what the window has left. Pure: the caller passes the
// time and stores the log it gets back.

/** The window SPEC §3 names. */
export const RATE_WINDOW_MS = 1000;
/**
 * Claims are judged over a window longer by this much: an attempt starts at the receiver a little
 * after its claim (the request is written, the network carries it), and that delay varies, so two
 * bursts claimed exactly one second apart could arrive less than a second apart. 200 ms of slack
 * keeps any one-second window at the receiver within the limit unless the delay varies by more.
 */
export const RATE_SLACK_MS = 200;
const SPAN_MS = RATE_WINDOW_MS + RATE_SLACK_MS;

/** Recent claims of a webhook: [claimed at (ms), attempts started]. Oldest first. */
export type RateLog = readonly (readonly [number, number])[];

export interface RateAllowance {
  /** How many attempts may start now (0 to `limit`). */
  allowed: number;
  /** When, if none may start now, the next one may; null when some may start now. */
  freeAt: number | null;
}

/** The part of `log` still inside the window at `now`. */
export function liveEntries(log: RateLog, now: number): RateLog {
  return log.filter(([at]) => at > now - SPAN_MS && at <= now);
}

export function rateAllowance(log: RateLog, limit: number, now: number): RateAllowance {
  const live = liveEntries(log, now);
  const used = live.reduce((sum, [, n]) => sum + n, 0);
  const allowed = Math.max(0, limit - used);
  if (allowed > 0) return { allowed, freeAt: null };
  // The oldest live claim leaves the window first: then at least its attempts are free again.
  const oldest = live[0]?.[0] ?? now;
  return { allowed: 0, freeAt: oldest + SPAN_MS };
}

/** The log after `count` attempts started at `now` (pruned to the window). */
export function recordStarts(log: RateLog, now: number, count: number): RateLog {
  const live = liveEntries(log, now);
  return count > 0 ? [...live, [now, count]] : live;
}

/** Parses a stored log; anything malformed reads as empty (a limit briefly lifted, never a crash). */
export function parseRateLog(text: string | null): RateLog {
  if (text === null) return [];
  try {
    const value: unknown = JSON.parse(text);
    if (!Array.isArray(value)) return [];
    return value.filter(
      (e): e is [number, number] =>
        Array.isArray(e) && e.length === 2 && Number.isFinite(e[0]) && Number.isInteger(e[1]) && e[1] > 0,
    );
  } catch {
    return [];
  }
}
