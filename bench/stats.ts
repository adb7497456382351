// Small numeric helpers shared by the bench: percentiles, rates, rounding, a growable sample buffer.

/** The wall clock in milliseconds, comparable across processes on this machine (sub-ms precision). */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A growable Float64Array with a hard cap, so a long run cannot grow memory without bound. */
export class Samples {
  private data = new Float64Array(1024);
  private n = 0;
  constructor(private readonly cap = 4_000_000) {}
  push(value: number): void {
    if (this.n >= this.cap) return;
    if (this.n === this.data.length) {
      const next = new Float64Array(Math.min(this.cap, this.data.length * 2));
      next.set(this.data);
      this.data = next;
    }
    this.data[this.n++] = value;
  }
  get length(): number {
    return this.n;
  }
  values(): Float64Array {
    return this.data.subarray(0, this.n);
  }
  clear(): void {
    this.n = 0;
  }
}

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Percentiles (nearest rank) of one or more sample sets, merged. */
export function percentiles(sets: readonly Float64Array[]): Percentiles {
  const total = sets.reduce((n, s) => n + s.length, 0);
  const all = new Float64Array(total);
  let at = 0;
  for (const s of sets) {
    all.set(s, at);
    at += s.length;
  }
  all.sort();
  const rank = (p: number) =>
    total === 0 ? Number.NaN : (all[Math.min(total - 1, Math.ceil(p * total) - 1)] ?? 0);
  let sum = 0;
  for (const v of all) sum += v;
  return {
    count: total,
    p50: rank(0.5),
    p95: rank(0.95),
    p99: rank(0.99),
    max: total === 0 ? Number.NaN : (all[total - 1] ?? 0),
    mean: total === 0 ? Number.NaN : sum / total,
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Rounds to a readable number of significant digits for tables. */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const factor = 10 ** Math.max(0, digits - 1 - magnitude);
  return Math.round(value * factor) / factor;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `everyMs` until it returns a value other than undefined, or throws at the deadline. */
export async function pollUntil<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 5,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
