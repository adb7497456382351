// Measuring a drain: publish while the subscribers' origins hold every request (so a real backlog
// builds up in hookd's database instead of being delivered as it arrives), then release them and
// time how fast the receiver sees the rest arrive.
import { loadavg } from "node:os";
import { type Context, checkDeadline } from "./context.ts";
import type { Behaviour, ReceiverStats } from "./receiver.ts";
import { pollUntil, sleep, wallMs } from "./stats.ts";

export interface DrainResult {
  /** Deliveries counted after the release (those already held are not). */
  delivered: number;
  expected: number;
  seconds: number;
  perSecond: number;
  duplicates: number;
  complete: boolean;
  /** hookd's CPU during the drain, in % of one core (all its threads), when `cpuSeconds` was given. */
  cpuPercent: number;
  /** The receiver's CPU during the drain, in % of one core (NaN when it runs in-process). */
  receiverCpuPercent: number;
  /** The 1-minute load average when the drain ended: above 2 the two cores were oversubscribed. */
  loadavg: number;
}

/** Waits until the held count on `ports` stops growing (hookd reached its in-flight caps). */
export async function waitForHeld(ctx: Context, ports: number[], atLeast: number): Promise<number> {
  let last = -1;
  let stableSince = performance.now();
  return pollUntil(
    "the receiver to hold hookd's first requests",
    async () => {
      checkDeadline(ctx, "waiting for held requests");
      const { held } = await ctx.receiver.stats(ports);
      if (held !== last) {
        last = held;
        stableSince = performance.now();
      }
      return held >= atLeast && performance.now() - stableSince > 300 ? held : undefined;
    },
    ctx.within(30_000),
    50,
  );
}

/**
 * Releases held requests on `ports` (answering as `behaviour` from now on) and waits until
 * `expected` further unique deliveries arrived or `maxMs` passed.
 */
export async function releaseAndDrain(
  ctx: Context,
  ports: number[],
  expected: number,
  maxMs: number,
  cpuSeconds: () => number = () => Number.NaN,
  behaviour: Behaviour = { kind: "fast" },
): Promise<DrainResult> {
  await ctx.receiver.reset(ports);
  const cpu0 = cpuSeconds();
  const receiverCpu0 = ctx.receiver.cpuSeconds();
  const releasedAt = wallMs();
  await ctx.receiver.setBehaviour(ports, behaviour);
  const end = performance.now() + ctx.within(maxMs);
  let stats = await ctx.receiver.stats(ports);
  while (stats.unique < expected && performance.now() < end) {
    await sleep(100);
    stats = await ctx.receiver.stats(ports);
  }
  const complete = stats.unique >= expected;
  // Complete: up to the last arrival. Cut off: up to now.
  const seconds = ((complete ? stats.lastAt : wallMs()) - releasedAt) / 1000;
  const elapsed = (wallMs() - releasedAt) / 1000;
  const cpuPercent = (100 * (cpuSeconds() - cpu0)) / elapsed;
  const receiverCpuPercent = (100 * (ctx.receiver.cpuSeconds() - receiverCpu0)) / elapsed;
  return {
    delivered: stats.unique,
    expected,
    seconds,
    perSecond: stats.unique / seconds,
    duplicates: stats.duplicates,
    complete,
    cpuPercent,
    receiverCpuPercent,
    loadavg: loadavg()[0] ?? Number.NaN,
  };
}

/** Waits (bounded: at most 10 s, within the cap) until `ports` saw `count` unique deliveries; their stats. */
export async function waitForUnique(ctx: Context, ports: number[], count: number): Promise<ReceiverStats> {
  const end = performance.now() + ctx.within(10_000);
  let stats = await ctx.receiver.stats(ports);
  while (stats.unique < count && performance.now() < end) {
    await sleep(50);
    stats = await ctx.receiver.stats(ports);
  }
  return stats;
}
