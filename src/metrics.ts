// Prometheus metrics (SPEC §5), on a registry of this daemon's own (tests run several daemons).
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface Metrics {
  readonly registry: Registry;
  eventsAccepted: Counter<"mode">;
  deliveries: Counter<"status" | "mode">;
  attemptDuration: Histogram<"outcome" | "mode">;
  queueDepth: Gauge;
  oldestDue: Gauge;
  inFlight: Gauge;
  instances: Gauge;
  webhooksDisabled: Counter<"reason">;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    eventsAccepted: new Counter({
      name: "hookd_events_accepted_total",
      help: "Events accepted (202), replays of an idempotency key excluded.",
      labelNames: ["mode"],
      registers,
    }),
    deliveries: new Counter({
      name: "hookd_deliveries_total",
      help: "Deliveries that reached a final status.",
      labelNames: ["status", "mode"],
      registers,
    }),
    attemptDuration: new Histogram({
      name: "hookd_attempt_duration_seconds",
      help: "Duration of delivery attempts.",
      labelNames: ["outcome", "mode"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    queueDepth: new Gauge({
      name: "hookd_queue_depth",
      help: "Deliveries queued (pending or retrying).",
      registers,
    }),
    oldestDue: new Gauge({
      name: "hookd_oldest_due_seconds",
      help: "How long the oldest due delivery has been waiting.",
      registers,
    }),
    inFlight: new Gauge({ name: "hookd_in_flight", help: "Attempts in flight.", registers }),
    instances: new Gauge({
      name: "hookd_instances",
      help: "Live hookd instances sharing this database (1 on SQLite).",
      registers,
    }),
    webhooksDisabled: new Counter({
      name: "hookd_webhooks_disabled_total",
      help: "Subscriptions disabled by hookd.",
      labelNames: ["reason"],
      registers,
    }),
  };
}
