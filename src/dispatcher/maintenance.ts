// Background upkeep: the retention sweep, expired idempotency keys and the in-flight recount, in
// small batches so the database is never held for long; on one instance at a time (the store's
// maintenance lock). `runOnce()` is public for tests and operators.
import type { Clock } from "../runtime/clock.ts";
import type { Logger } from "../runtime/logger.ts";
import type { Store } from "../store/store.ts";

export interface Maintenance {
  start(): void;
  stop(): void;
  /** Null when another instance is running maintenance now. */
  runOnce(): Promise<{ removed: number; idempotencyKeys: number; recounted: number } | null>;
}

const BATCH = 500;
const MAX_BATCHES_PER_RUN = 200;
const INTERVAL_MS = 60_000;

export function createMaintenance(options: {
  store: Store;
  clock: Clock;
  logger: Logger;
  retentionMs: number;
  intervalMs?: number;
}): Maintenance {
  const { store, clock, logger } = options;
  let timer: ReturnType<typeof setInterval> | undefined;
  let running: Promise<unknown> | null = null;

  const sweep = async (step: () => Promise<number>) => {
    let total = 0;
    for (let i = 0; i < MAX_BATCHES_PER_RUN; i++) {
      const n = await step();
      total += n;
      if (n === 0) break;
      await new Promise((resolve) => setImmediate(resolve)); // let requests in between batches
    }
    return total;
  };

  const runOnce = () =>
    store.withMaintenanceLock(async () => {
      const removed = await sweep(() => store.sweepRetention(clock.now() - options.retentionMs, BATCH));
      const idempotencyKeys = await sweep(() => store.sweepIdempotencyKeys(clock.now(), BATCH));
      if (removed + idempotencyKeys > 0)
        logger.info({ removed, idempotency_keys: idempotencyKeys }, "retention sweep");
      const recounted = await store.reconcileInFlight(clock.now());
      if (recounted > 0) logger.warn({ recounted }, "in-flight counts corrected from the leases");
      return { removed, idempotencyKeys, recounted };
    });

  return {
    runOnce,
    start() {
      timer = setInterval(() => {
        if (running) return;
        running = runOnce()
          .catch((error) => logger.error({ err: error }, "retention sweep failed"))
          .finally(() => {
            running = null;
          });
      }, options.intervalMs ?? INTERVAL_MS);
      timer.unref?.();
    },
    stop() {
      clearInterval(timer);
    },
  };
}
