import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  type AttemptOutcome,
  decideHealth,
  decideRetry,
  JITTER,
  parseRetryAfter,
  type RetrySchedule,
  scheduleDelays,
  summarizeAttempts,
} from "../../src/domain/retry.ts";
import type { Random } from "../../src/runtime/random.ts";

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const S = 1000;
const SCHEDULE = [5 * S, 60 * S, 600 * S];

/** A Random whose float() is fixed, so the jitter is known. */
const fixed = (float: number): Random => ({ bytes: (n) => new Uint8Array(n), float: () => float });
const MID = fixed(0.5); // no jitter: 1 - 0.2 + 0.4 * 0.5 = 1

const decide = (
  outcome: Partial<AttemptOutcome>,
  options: { seriesAttempts?: number; schedule?: RetrySchedule; random?: Random } = {},
) =>
  decideRetry({
    outcome: { statusCode: null, error: null, ...outcome },
    seriesAttempts: options.seriesAttempts ?? 1,
    schedule: options.schedule ?? SCHEDULE,
    now: NOW,
    random: options.random ?? MID,
  });

describe("scheduleDelays", () => {
  test("a list is used as given", () => {
    expect(scheduleDelays([1, 2, 3])).toEqual([1, 2, 3]);
  });

  test("{every, for} repeats `every` to fill `for`", () => {
    expect(scheduleDelays({ every: 3_600_000, for: 48 * 3_600_000 })).toEqual(new Array(48).fill(3_600_000));
    expect(scheduleDelays({ every: 10, for: 35 })).toEqual([10, 10, 10]);
  });

  test("{every, for} with `for` shorter than `every` still retries once", () => {
    expect(scheduleDelays({ every: 60_000, for: 1000 })).toEqual([60_000]);
  });
});

describe("decideRetry", () => {
  test("any 2xx without an error succeeds", () => {
    for (const statusCode of [200, 201, 204, 299])
      expect(decide({ statusCode })).toEqual({ action: "succeed" });
  });

  test("a 2xx is not a success when the attempt also reports an error", () => {
    expect(decide({ statusCode: 200, error: "timeout" }).action).toBe("retry");
  });

  test("410 Gone fails the delivery, whatever the schedule", () => {
    expect(decide({ statusCode: 410 })).toEqual({ action: "fail", reason: "gone" });
    expect(decide({ statusCode: 410 }, { seriesAttempts: 99 })).toEqual({ action: "fail", reason: "gone" });
  });

  test("a blocked address fails the delivery instead of retrying it", () => {
    expect(decide({ error: "blocked_address" })).toEqual({ action: "fail", reason: "blocked_address" });
  });

  test("5xx, 4xx, 3xx and network errors retry after the schedule's next delay", () => {
    const outcomes: Partial<AttemptOutcome>[] = [
      { statusCode: 500 },
      { statusCode: 404 },
      { statusCode: 400 },
      { statusCode: 302, error: "redirect" },
      { error: "timeout" },
      { error: "connection_refused" },
      { error: "dns" },
    ];
    for (const outcome of outcomes) expect(decide(outcome)).toEqual({ action: "retry", at: NOW + 5 * S });
  });

  test("the n-th attempt of a series waits the n-th delay; after the last one it is exhausted", () => {
    expect(decide({ statusCode: 500 }, { seriesAttempts: 1 })).toEqual({ action: "retry", at: NOW + 5 * S });
    expect(decide({ statusCode: 500 }, { seriesAttempts: 2 })).toEqual({ action: "retry", at: NOW + 60 * S });
    expect(decide({ statusCode: 500 }, { seriesAttempts: 3 })).toEqual({
      action: "retry",
      at: NOW + 600 * S,
    });
    expect(decide({ statusCode: 500 }, { seriesAttempts: 4 })).toEqual({ action: "exhaust" });
    expect(decide({ statusCode: 500 }, { seriesAttempts: 5 })).toEqual({ action: "exhaust" });
  });

  test("an {every, for} schedule retries every interval, then is exhausted", () => {
    const schedule = { every: 3_600_000, for: 4 * 3_600_000 };
    for (let n = 1; n <= 4; n++)
      expect(decide({ statusCode: 503 }, { seriesAttempts: n, schedule })).toEqual({
        action: "retry",
        at: NOW + 3_600_000,
      });
    expect(decide({ statusCode: 503 }, { seriesAttempts: 5, schedule })).toEqual({ action: "exhaust" });
  });

  test("jitter spans ±20% of the delay: the ends of random.float() give 0.8× and 1.2×", () => {
    expect(JITTER).toBe(0.2);
    expect(decide({ statusCode: 500 }, { random: fixed(0) })).toEqual({ action: "retry", at: NOW + 4 * S });
    expect(decide({ statusCode: 500 }, { random: fixed(0.25) })).toEqual({
      action: "retry",
      at: NOW + 4.5 * S,
    });
    expect(decide({ statusCode: 500 }, { random: fixed(0.75) })).toEqual({
      action: "retry",
      at: NOW + 5.5 * S,
    });
    const top = decide({ statusCode: 500 }, { random: fixed(1 - 2 ** -32) });
    expect(top).toEqual({ action: "retry", at: NOW + 6 * S });
  });

  test("every jittered delay stays within ±20% (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 30 * 86_400_000 }), { minLength: 1, maxLength: 10 }),
        fc.nat({ max: 20 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (schedule, index, float) => {
          const seriesAttempts = (index % schedule.length) + 1;
          const base = schedule[seriesAttempts - 1] as number;
          const decision = decide({ statusCode: 500 }, { schedule, seriesAttempts, random: fixed(float) });
          if (decision.action !== "retry") return false;
          const delay = decision.at - NOW;
          return delay >= Math.floor(base * 0.8) && delay <= Math.ceil(base * 1.2);
        },
      ),
    );
  });

  test("Retry-After on a 429 or 503 is honoured without jitter when it asks for longer", () => {
    for (const statusCode of [429, 503]) {
      const decision = decide({ statusCode, retryAfterMs: 30 * S }, { random: fixed(0.99) });
      expect(decision).toEqual({ action: "retry", at: NOW + 30 * S });
    }
  });

  test("Retry-After that asks for less than the schedule is ignored", () => {
    expect(decide({ statusCode: 429, retryAfterMs: 1 * S })).toEqual({ action: "retry", at: NOW + 5 * S });
    expect(decide({ statusCode: 503, retryAfterMs: 0 })).toEqual({ action: "retry", at: NOW + 5 * S });
  });

  test("Retry-After is capped at the longest delay of the schedule", () => {
    expect(decide({ statusCode: 429, retryAfterMs: 86_400 * S })).toEqual({
      action: "retry",
      at: NOW + 600 * S,
    });
  });

  test("a capped Retry-After never brings the retry earlier than the schedule's own delay", () => {
    // One delay of 10s, jittered up to 12s; the receiver asks for an hour (capped at 10s).
    const decision = decide(
      { statusCode: 429, retryAfterMs: 3600 * S },
      { schedule: [10 * S], random: fixed(1 - 2 ** -32) },
    );
    expect(decision).toEqual({ action: "retry", at: NOW + 12 * S });
  });

  test("Retry-After on other statuses is ignored", () => {
    for (const statusCode of [500, 502, 408, 400])
      expect(decide({ statusCode, retryAfterMs: 300 * S })).toEqual({ action: "retry", at: NOW + 5 * S });
  });

  test("Retry-After does not extend a schedule that is used up", () => {
    expect(decide({ statusCode: 429, retryAfterMs: 30 * S }, { seriesAttempts: 4 })).toEqual({
      action: "exhaust",
    });
  });
});

describe("parseRetryAfter", () => {
  test("delay-seconds", () => {
    expect(parseRetryAfter("0", NOW)).toBe(0);
    expect(parseRetryAfter("1", NOW)).toBe(1000);
    expect(parseRetryAfter(" 120 ", NOW)).toBe(120_000);
  });

  test("an HTTP date, relative to now", () => {
    const at = new Date(NOW + 90 * S).toUTCString(); // IMF-fixdate, e.g. "Thu, 01 Jan 2026 12:01:30 GMT"
    expect(parseRetryAfter(at, NOW)).toBe(90 * S);
  });

  test("an HTTP date in the past means now", () => {
    expect(parseRetryAfter(new Date(NOW - 60 * S).toUTCString(), NOW)).toBe(0);
  });

  test("absent or unreadable is null", () => {
    expect(parseRetryAfter(undefined, NOW)).toBeNull();
    expect(parseRetryAfter(null, NOW)).toBeNull();
    expect(parseRetryAfter("", NOW)).toBeNull();
    expect(parseRetryAfter("soon", NOW)).toBeNull();
  });
});

describe("decideHealth", () => {
  const policy = { disableAfterFailures: 10, disableAfterMs: 5 * 86_400_000, enabled: true, gone: false };
  const failing = { action: "disable", reason: "failing" } as const;
  const keep = { action: "keep" } as const;

  test("needs both enough consecutive failures and the window since the last success", () => {
    const longAgo = NOW - 5 * 86_400_000;
    expect(decideHealth({ ...policy, consecutiveFailures: 10, healthSince: longAgo, now: NOW })).toEqual(
      failing,
    );
    expect(decideHealth({ ...policy, consecutiveFailures: 9, healthSince: longAgo, now: NOW })).toEqual(keep);
    expect(decideHealth({ ...policy, consecutiveFailures: 10, healthSince: longAgo + 1, now: NOW })).toEqual(
      keep,
    );
    expect(
      decideHealth({ ...policy, consecutiveFailures: 1000, healthSince: NOW - 60_000, now: NOW }),
    ).toEqual(keep);
  });

  test("with a zero window, the failure count alone decides", () => {
    const zero = { ...policy, disableAfterFailures: 3, disableAfterMs: 0 };
    expect(decideHealth({ ...zero, consecutiveFailures: 3, healthSince: NOW, now: NOW })).toEqual(failing);
    expect(decideHealth({ ...zero, consecutiveFailures: 2, healthSince: NOW, now: NOW })).toEqual(keep);
  });

  test("a 410 Gone disables at once; a disabled subscription is kept as it is", () => {
    const gone = { ...policy, gone: true, consecutiveFailures: 1, healthSince: NOW, now: NOW };
    expect(decideHealth(gone)).toEqual({ action: "disable", reason: "gone" });
    expect(decideHealth({ ...gone, enabled: false })).toEqual(keep);
    expect(
      decideHealth({ ...policy, enabled: false, consecutiveFailures: 99, healthSince: 0, now: NOW }),
    ).toEqual(keep);
  });
});

describe("summarizeAttempts", () => {
  test("counts the failures after the last success, which resets the window", () => {
    const f = (startedAt: number, gone = false) => ({ ok: false, gone, startedAt });
    const ok = (startedAt: number) => ({ ok: true, gone: false, startedAt });
    expect(summarizeAttempts([f(1), f(2)])).toEqual({ resetAt: null, failuresAfter: 2, gone: false });
    expect(summarizeAttempts([f(1, true), ok(2), f(3)])).toEqual({
      resetAt: 2,
      failuresAfter: 1,
      gone: false,
    });
    expect(summarizeAttempts([ok(1), f(2, true)])).toEqual({ resetAt: 1, failuresAfter: 1, gone: true });
    expect(summarizeAttempts([])).toEqual({ resetAt: null, failuresAfter: 0, gone: false });
  });
});
