// isolation: 20 subscriptions, each on its own origin and event type; 2 of them (10%) hang (their
// origins never answer; timeout_seconds 2, so attempts time out and retry during the run). Events
// arrive at 1000 ev/s round-robin over the types, so 10% of them go to hanging endpoints. The
// healthy subscriptions' p99 is compared with the latency scenario's p99 at the same rate (the
// issue's comparison), and with a first phase of this scenario where none of the 20 hangs (the same
// subscriptions, seconds apart rather than minutes: the less noisy comparison on a shared machine).
import type { Scenario } from "../context.ts";
import { waitForUnique } from "../drain.ts";
import { startHookd } from "../hookd.ts";
import { eventData, openLoop } from "../load.ts";
import type { ReceiverStats } from "../receiver.ts";
import { row } from "../report.ts";

const WEBHOOKS = 20;
const HANGING = 2;
const RATE = 1000;

export const isolation: Scenario = {
  name: "isolation",
  needs: ["latency"],
  capMs: { quick: 40_000, full: 90_000 },
  async run(ctx) {
    if (!ctx.drivers.includes("sqlite")) {
      ctx.log("skipped: this scenario runs on SQLite, not benched in this run (--driver postgres)");
      return;
    }
    const durationMs = ctx.quick ? 3000 : 10_000;
    const healthy = await ctx.receiver.addOrigins(WEBHOOKS - HANGING, { kind: "fast" });
    const hanging = await ctx.receiver.addOrigins(HANGING, { kind: "hold" });
    const hookd = await startHookd({ dir: ctx.newDir("isolation"), synchronous: "full" });
    try {
      for (let i = 0; i < WEBHOOKS; i++) {
        const isHealthy = i < healthy.length;
        const port = isHealthy ? healthy[i] : hanging[i - healthy.length];
        await hookd.api.createWebhook({
          url: `http://127.0.0.1:${port}/w/${i}`,
          events: [`bench.w${i}`],
          ...(isHealthy ? { max_in_flight: 64 } : { timeout_seconds: 2 }),
        });
      }
      let healthyAccepted = 0;
      const send = async (seq: number) => {
        const n = await hookd.api.publish(`bench.w${seq % WEBHOOKS}`, eventData(seq));
        if (n > 0 && seq % WEBHOOKS < healthy.length) healthyAccepted++;
        return n;
      };
      await openLoop({ rate: 500, durationMs: 500, maxInFlight: 256, send }); // warm-up
      // Phase 1, the same 20 subscriptions with none hanging: this run's own baseline.
      // Phase 2, two of them hang.
      const phases: Record<string, { load: unknown; healthy: ReceiverStats; accepted: number }> = {};
      for (const phase of ["none", "hanging"] as const) {
        await ctx.receiver.setBehaviour(hanging, phase === "none" ? { kind: "fast" } : { kind: "hold" });
        await ctx.receiver.reset(null);
        healthyAccepted = 0;
        const load = await openLoop({
          rate: RATE,
          durationMs: ctx.within(durationMs),
          maxInFlight: 1024,
          send,
        });
        const stats = await waitForUnique(ctx, healthy, healthyAccepted);
        phases[phase] = { load, healthy: stats, accepted: healthyAccepted };
      }
      const none = phases.none as { healthy: ReceiverStats; accepted: number };
      const hung = phases.hanging as { healthy: ReceiverStats; accepted: number };
      const missing = (p: { healthy: ReceiverStats; accepted: number }) =>
        p.healthy.unique < p.accepted
          ? { note: `${p.accepted - p.healthy.unique} healthy deliveries not received` }
          : {};
      ctx.rows.push(
        row({
          scenario: "isolation",
          figure: `healthy p99 at ${RATE} ev/s, ${HANGING} of ${WEBHOOKS} endpoints hang`,
          value: hung.healthy.latency.p99,
          unit: "ms",
          ceiling: ctx.shared.get("latency.p99.1000") ?? null,
          ceilingOf: "latency scenario p99 at 1000 ev/s (no hanging endpoints)",
          target: { on: "ratio", op: "<=", bound: 1.5 },
          ...missing(hung),
        }),
        row({
          scenario: "isolation",
          figure: `the same, vs the same ${WEBHOOKS} subscriptions with none hanging`,
          value: hung.healthy.latency.p99,
          unit: "ms",
          ceiling: none.healthy.latency.p99,
          ceilingOf: "phase 1 of this scenario: the same subscriptions, none hanging",
          target: { on: "ratio", op: "<=", bound: 1.5 },
          ...missing(none),
        }),
      );
      ctx.details.isolation = {
        ...phases,
        hanging: await ctx.receiver.stats(hanging),
        memory: hookd.memory(),
      };
    } finally {
      await hookd.stop();
      await ctx.receiver.setBehaviour(hanging, { kind: "fast" });
    }
  },
};
