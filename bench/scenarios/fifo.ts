// fifo: a FIFO webhook's drain (SPEC §3 "Order"): one attempt at a time, so its bound is the
// receiver's round trip. A backlog is published while the origin holds the head, then released and
// timed at the receiver; the ceiling is 1 / the round trip, measured right before as a node:http
// keep-alive POST loop at C=1 against a fast origin of the same receiver. On SQLite, and on
// PostgreSQL with one instance.
import { startCluster } from "../cluster.ts";
import type { Context, Scenario } from "../context.ts";
import { releaseAndDrain, waitForHeld } from "../drain.ts";
import { startHookd } from "../hookd.ts";
import { row } from "../report.ts";
import { measurePost } from "./ceiling.ts";
import { publishBacklog } from "./delivery.ts";

export const fifo: Scenario = {
  name: "fifo",
  needs: [],
  capMs: { quick: 40_000, full: 80_000 },
  postgresCapMs: { quick: 40_000, full: 80_000 },
  async run(ctx) {
    const events = ctx.quick ? 2_000 : 5_000;
    if (ctx.drivers.includes("sqlite")) {
      const hookd = await startHookd({ dir: ctx.newDir("fifo"), synchronous: "full" });
      try {
        await drain(ctx, "SQLite", events, hookd.api, hookd.cpuSeconds);
      } finally {
        await hookd.stop();
      }
    }
    if (ctx.drivers.includes("postgres")) {
      const cluster = await startCluster(ctx, "postgres", 1, "fifo_x1");
      try {
        await drain(
          ctx,
          "PostgreSQL ×1",
          events,
          { createWebhook: cluster.api.createWebhook, publishBatch: cluster.publishBatch },
          cluster.cpuSeconds,
        );
      } finally {
        await cluster.stop();
      }
    }
  },
};

async function drain(
  ctx: Context,
  label: string,
  events: number,
  api: {
    createWebhook(fields: Record<string, unknown>): Promise<string>;
    publishBatch(events: { type: string; data: Record<string, unknown> }[]): Promise<number>;
  },
  cpuSeconds: () => number,
): Promise<void> {
  const ports = await ctx.receiver.addOrigins(1, { kind: "hold" });
  await api.createWebhook({
    url: `http://127.0.0.1:${ports[0]}/w/0`,
    ordering: "fifo",
    max_in_flight: 256, // stored as set; a FIFO webhook has one attempt in flight whatever it says
    timeout_seconds: 60,
  });
  const published = await publishBacklog(api.publishBatch, events, 0);
  if (published !== events) throw new Error(`only ${published} of ${events} accepted`);
  const held = await waitForHeld(ctx, ports, 1);
  const [fast] = await ctx.receiver.addOrigins(1, { kind: "fast" });
  const roundTrip = await measurePost(ctx, fast as number, "node", 1, ctx.quick ? 1000 : 2000, 250);
  const result = await releaseAndDrain(ctx, ports, events - held, ctx.quick ? 20_000 : 40_000, cpuSeconds);
  ctx.rows.push(
    row({
      scenario: "fifo",
      figure: `FIFO drain of ${events / 1000} k events, one at a time, ${label}`,
      value: result.perSecond,
      unit: "dlv/s",
      ceiling: roundTrip.rate,
      ceilingOf: "1 / the round trip: a node:http keep-alive POST loop at C=1, measured just before",
      ...(result.complete ? {} : { note: `cut off: ${result.delivered} of ${result.expected}` }),
    }),
  );
  ctx.log(
    `${label}: FIFO ${Math.round(result.perSecond)} dlv/s (held ${held}), C=1 round trip ` +
      `${(1000 / roundTrip.rate).toFixed(2)} ms (${Math.round(roundTrip.rate)}/s), hookd at ${Math.round(result.cpuPercent)}% CPU`,
  );
  (ctx.details as Record<string, unknown>)[`fifo_${label}`] = { ...result, held, ceiling_c1: roundTrip.rate };
}
