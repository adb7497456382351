// The rate window of SPEC §3: whatever the claims ask and whenever they come, no window of one
// second (plus the slack) ever holds more than the limit's worth of started attempts, and a claim
// that is refused learns when it may try again.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  parseRateLog,
  RATE_SLACK_MS,
  RATE_WINDOW_MS,
  type RateLog,
  rateAllowance,
  recordStarts,
} from "../../src/domain/delivery-rate.ts";

describe("rateAllowance and recordStarts", () => {
  test("a burst of N, then nothing until the window has passed", () => {
    let log: RateLog = [];
    expect(rateAllowance(log, 20, 1000)).toEqual({ allowed: 20, freeAt: null });
    log = recordStarts(log, 1000, 20);
    expect(rateAllowance(log, 20, 1001)).toEqual({
      allowed: 0,
      freeAt: 1000 + RATE_WINDOW_MS + RATE_SLACK_MS,
    });
    expect(rateAllowance(log, 20, 1000 + RATE_WINDOW_MS + RATE_SLACK_MS - 1).allowed).toBe(0);
    expect(rateAllowance(log, 20, 1000 + RATE_WINDOW_MS + RATE_SLACK_MS).allowed).toBe(20);
  });

  test("a full window frees up when its oldest claim leaves it, not its newest", () => {
    // 3 at 0 and 2 at 500 fill a limit of 5; the 3 of the first claim are free again at 0 + span.
    const span = RATE_WINDOW_MS + RATE_SLACK_MS;
    const log = recordStarts(recordStarts([], 0, 3), 500, 2);
    expect(rateAllowance(log, 5, 600)).toEqual({ allowed: 0, freeAt: span });
    expect(rateAllowance(log, 5, span)).toEqual({ allowed: 3, freeAt: null });
  });

  test("a partial claim leaves the rest of the limit", () => {
    const log = recordStarts([], 0, 7);
    expect(rateAllowance(log, 10, 5)).toEqual({ allowed: 3, freeAt: null });
  });

  test("the log keeps only the window", () => {
    let log: RateLog = [];
    for (let t = 0; t < 100_000; t += 100) log = recordStarts(log, t, 1);
    expect(log.length).toBeLessThanOrEqual(Math.ceil((RATE_WINDOW_MS + RATE_SLACK_MS) / 100) + 1);
  });

  test("property: no window of one second holds more than the limit, and a refusal names a later time", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 60 })), {
          maxLength: 200,
        }),
        (limit, steps) => {
          let log: RateLog = [];
          let now = 0;
          const starts: number[] = [];
          for (const [gap, wanted] of steps) {
            now += gap;
            const { allowed, freeAt } = rateAllowance(log, limit, now);
            if (allowed === 0) expect(freeAt).toBeGreaterThan(now);
            const take = Math.min(allowed, wanted);
            log = recordStarts(log, now, take);
            for (let i = 0; i < take; i++) starts.push(now);
          }
          for (let i = 0; i < starts.length; i++) {
            const from = starts[i] as number;
            const inWindow = starts.filter((s) => s >= from && s < from + RATE_WINDOW_MS + RATE_SLACK_MS);
            expect(inWindow.length).toBeLessThanOrEqual(limit);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test("a stored log that is not one reads as empty", () => {
    for (const text of [null, "", "{", "{}", "[1,2]", '[["a",1]]', "[[1,-1]]", "[[1,1.5]]"])
      expect(parseRateLog(text)).toEqual([]);
    expect(parseRateLog("[[5,2],[6,1]]")).toEqual([
      [5, 2],
      [6, 1],
    ]);
  });
});
