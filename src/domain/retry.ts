// The retry policy as a pure decision (SPEC §3): given how an attempt ended and where the delivery
// is in its schedule, what happens next. The dispatcher applies the decision in one store call.
import type { Random } from "../runtime/random.ts";

export type RetrySchedule = readonly number[] | { readonly every: number; readonly for: number };

export interface AttemptOutcome {
  /** The HTTP status, when an answer came back. */
  statusCode: number | null;
  /** Set when the attempt failed without a usable answer, or with a 3xx. */
  error: string | null;
  /** A Retry-After the receiver sent (429/503), in milliseconds from now. */
  retryAfterMs?: number | null;
}

export type RetryDecision =
  | { action: "succeed" }
  | { action: "retry"; at: number }
  | { action: "fail"; reason: "gone" | "blocked_address" }
  | { action: "exhaust" };

/** Delays of the schedule, in order: a list as given, or `every` repeated to fill `for`. */
export function scheduleDelays(schedule: RetrySchedule): readonly number[] {
  if (Array.isArray(schedule)) return schedule as readonly number[];
  const { every, for: span } = schedule as { every: number; for: number };
  return new Array<number>(Math.max(1, Math.floor(span / every))).fill(every);
}

export const JITTER = 0.2;

/**
 * @param seriesAttempts attempts in the current series, this one included (1 after the first).
 */
export function decideRetry(input: {
  outcome: AttemptOutcome;
  seriesAttempts: number;
  schedule: RetrySchedule;
  now: number;
  random: Random;
}): RetryDecision {
  const { outcome, now } = input;
  const code = outcome.statusCode;
  if (outcome.error === null && code !== null && code >= 200 && code < 300) return { action: "succeed" };
  if (code === 410) return { action: "fail", reason: "gone" };
  if (outcome.error === "blocked_address") return { action: "fail", reason: "blocked_address" };

  const delays = scheduleDelays(input.schedule);
  const next = delays[input.seriesAttempts - 1];
  if (next === undefined) return { action: "exhaust" };
  const jittered = Math.round(next * (1 - JITTER + 2 * JITTER * input.random.float()));
  const longest = Math.max(...delays);
  const retryAfter = code === 429 || code === 503 ? (outcome.retryAfterMs ?? null) : null;
  // The cap may fall below this jittered delay: a Retry-After never brings the retry earlier.
  if (retryAfter !== null && retryAfter > jittered)
    return { action: "retry", at: now + Math.max(jittered, Math.min(retryAfter, longest)) };
  return { action: "retry", at: now + jittered };
}

/** Retry-After as seconds or an HTTP date, in milliseconds from `now`; null when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | null {
  if (!value) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}

/** What a subscription's health asks for after its attempts were recorded. */
export type HealthDecision = { action: "keep" } | { action: "disable"; reason: "failing" | "gone" };

/**
 * The auto-disable rule (SPEC §3), decided after a subscription's attempts were counted: a 410 Gone
 * disables at once (`gone`); otherwise `disable_after_failures` consecutive failures with no success
 * for `disable_after` disable it (`failing`). A subscription already disabled is kept as it is.
 * Pure: the stores count failures in the database and apply the decision.
 */
export function decideHealth(input: {
  enabled: boolean;
  /** A 410 Gone among the attempts since the last success. */
  gone: boolean;
  /** After the attempts just recorded. */
  consecutiveFailures: number;
  healthSince: number;
  now: number;
  disableAfterFailures: number;
  disableAfterMs: number;
}): HealthDecision {
  if (!input.enabled || input.consecutiveFailures === 0) return { action: "keep" };
  if (input.gone) return { action: "disable", reason: "gone" };
  const failing =
    input.consecutiveFailures >= input.disableAfterFailures &&
    input.now - input.healthSince >= input.disableAfterMs;
  return failing ? { action: "disable", reason: "failing" } : { action: "keep" };
}

/**
 * What one batch of attempts does to a subscription's health counters: reset at the last success
 * (and restart the window there), plus one per failure after it. Applied relatively in the database
 * (`consecutive_failures = consecutive_failures + n`), so concurrent settlers never lose a count.
 */
export function summarizeAttempts(outcomes: readonly { ok: boolean; gone: boolean; startedAt: number }[]): {
  resetAt: number | null;
  failuresAfter: number;
  gone: boolean;
} {
  let resetAt: number | null = null;
  let failuresAfter = 0;
  let gone = false;
  for (const outcome of outcomes) {
    if (outcome.ok) {
      resetAt = outcome.startedAt;
      failuresAfter = 0;
      gone = false;
    } else {
      failuresAfter++;
      if (outcome.gone) gone = true;
    }
  }
  return { resetAt, failuresAfter, gone };
}
