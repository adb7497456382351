// Time, injected: the only place that reads the wall clock. Tests pass a manual clock.

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface ManualClock extends Clock {
  set(ms: number): void;
  advance(ms: number): void;
}

export function createManualClock(start = Date.UTC(2026, 0, 1)): ManualClock {
  let current = start;
  return {
    now: () => current,
    set: (ms) => {
      current = ms;
    },
    advance: (ms) => {
      current += ms;
    },
  };
}

/** ISO 8601 UTC with millisecond precision, the one timestamp format of the API. */
export function toIso(ms: number): string {
  return new Date(ms).toISOString();
}
