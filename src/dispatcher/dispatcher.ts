// The delivery loop: claim due deliveries under a lease → send → settle in batches. Woken at once
// on ingest and when an attempt frees capacity, by a timer for scheduled retries otherwise.
// Isolation: a global cap, per-subscription caps (enforced by the claim), and a share of the
// global cap kept for first attempts so a retry backlog cannot starve fresh events.
import { StorageUnavailableError } from "../domain/errors.ts";
import { decideRetry, parseRetryAfter, type RetrySchedule } from "../domain/retry.ts";
import { liveSecrets, signPayload } from "../domain/signer.ts";
import { effectiveMaxInFlight } from "../domain/webhook.ts";
import type { Metrics } from "../metrics.ts";
import type { Clock } from "../runtime/clock.ts";
import type { IdGenerator } from "../runtime/ids.ts";
import type { Logger } from "../runtime/logger.ts";
import type { Random } from "../runtime/random.ts";
import type {
  AttemptResult,
  ClaimedDelivery,
  HealthPolicy,
  Settlement,
  SettleOutcome,
  Store,
} from "../store/store.ts";
import type { HttpClient } from "./http-client.ts";

export interface DispatcherOptions {
  store: Store;
  client: HttpClient;
  clock: Clock;
  random: Random;
  ids: IdGenerator;
  logger: Logger;
  metrics: Metrics;
  maxInFlight: number;
  retrySchedule: RetrySchedule;
  leaseMs: number;
  health: HealthPolicy;
  userAgent: string;
  /** Identifies this process in lease owners. */
  instanceId: string;
}

export interface Dispatcher {
  start(): void;
  /** Claim now (an event was accepted, a delivery re-queued). */
  wake(): void;
  /** Stop claiming, wait up to `graceMs` for attempts in flight, release the rest. */
  stop(graceMs: number): Promise<void>;
  isRunning(): boolean;
  inFlight(): number;
  /** Resolves when nothing is in flight or waiting to be settled (tests). */
  idle(): Promise<void>;
}

/** The share of max_in_flight that retries may not use. */
export const FIRST_ATTEMPT_RESERVE = 0.25;
const MAX_IDLE_WAIT_MS = 1000;
const SETTLE_BATCH = 500;
const MIN_BUSY_WAIT_MS = 25;
/** Event-loop turns a settlement waits at most for more answers to arrive (gatherAnswers). */
const GATHER_TURNS = 3;
const SETTLE_RETRY_MS = 500;
const UNAVAILABLE_LOG_INTERVAL_MS = 10_000;

interface Flight {
  delivery: ClaimedDelivery;
  isRetry: boolean;
}

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { store, client, clock, logger, metrics } = options;
  const reserve =
    options.maxInFlight > 1 ? Math.max(1, Math.floor(options.maxInFlight * FIRST_ATTEMPT_RESERVE)) : 0;
  const retryCap = options.maxInFlight - reserve;
  const flights = new Set<Flight>();
  const perWebhook = new Map<string, number>();
  const maxPerWebhook = new Map<string, number>();
  let retriesInFlight = 0;
  let claimSeq = 0;
  let running = false;
  let loopDone: Promise<void> = Promise.resolve();
  let wakeUp: (() => void) | null = null;
  let wakeRequested = false;
  let abort = new AbortController();
  // Resolved by stop(): a loop waiting for a settlement (say, retrying an unavailable database)
  // stops waiting.
  let stopped: () => void = () => {};
  let stopping = new Promise<void>((resolve) => (stopped = resolve));
  const aborted: { deliveryId: string; leaseOwner: string }[] = [];
  let settleQueue: AttemptResult[] = [];
  let settling: Promise<void> | null = null;
  const idleWaiters: (() => void)[] = [];
  const newEventId = () => options.ids.next("evt");

  // While the database is unavailable every loop turn fails the same way: say so once in a while,
  // as a warning without a stack; anything else is an error worth its stack each time.
  const lastUnavailable = new Map<string, number>();
  const logProblem = (error: unknown, message: string, extra: Record<string, unknown> = {}) => {
    if (!(error instanceof StorageUnavailableError)) {
      logger.error({ err: error, ...extra }, message);
      return;
    }
    const now = performance.now();
    if (now - (lastUnavailable.get(message) ?? -Infinity) < UNAVAILABLE_LOG_INTERVAL_MS) return;
    lastUnavailable.set(message, now);
    logger.warn({ err: error.message, ...extra }, message);
  };

  const wake = () => {
    wakeRequested = true;
    const resolve = wakeUp;
    wakeUp = null;
    resolve?.();
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (wakeRequested || !running) return resolve();
      const timer = setTimeout(() => {
        wakeUp = null;
        resolve();
      }, ms);
      wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const saturated = () =>
    [...perWebhook].filter(([id, n]) => n >= (maxPerWebhook.get(id) ?? Infinity)).map(([id]) => id);

  const checkIdle = () => {
    if (flights.size === 0 && settleQueue.length === 0 && !settling)
      for (const w of idleWaiters.splice(0)) w();
  };

  // Fresh deliveries handed over by the ingest that created them (Store.handOff), while no claim
  // is between its request and its launches: the room it reports is then exact.
  let filling = false;
  const taker = {
    room: () => (running && !filling ? Math.max(0, options.maxInFlight - flights.size) : 0),
    owner: () => `${options.instanceId}.${++claimSeq}`,
    leaseMs: options.leaseMs,
    take(claimed: readonly ClaimedDelivery[]) {
      for (const delivery of claimed) launch(delivery);
    },
  };
  let stopHandOff = () => {};

  async function fill(): Promise<number> {
    filling = true;
    try {
      return await claimAndLaunch();
    } finally {
      filling = false;
    }
  }

  async function claimAndLaunch(): Promise<number> {
    const capacity = Math.max(0, options.maxInFlight - flights.size);
    const request = {
      now: clock.now(),
      owner: `${options.instanceId}.${++claimSeq}`,
      leaseMs: options.leaseMs,
      limit: capacity,
      retryLimit: Math.max(0, retryCap - retriesInFlight),
    };
    let claimed: ClaimedDelivery[] | null = null;
    if (store.settleAndClaim && settleQueue.length > 0 && !settling) {
      // One transaction settles what finished and claims the places it freed.
      const batch = settleQueue.slice(0, SETTLE_BATCH);
      try {
        const done = await store.settleAndClaim(batch, request.now, options.health, newEventId, request);
        settleQueue = settleQueue.slice(batch.length);
        applySettled(batch, done.outcome);
        claimed = done.claimed;
      } catch {
        // The settlement path on its own knows how to find a failing result or wait for the
        // database; the claim goes on without it.
        startSettle();
      }
      checkIdle();
    }
    if (claimed === null) claimed = capacity > 0 ? await store.claimDue(request) : [];
    for (const delivery of claimed) launch(delivery);
    return claimed.length;
  }

  function launch(delivery: ClaimedDelivery) {
    const flight: Flight = { delivery, isRetry: delivery.status === "retrying" };
    const webhookId = delivery.webhook.id;
    flights.add(flight);
    perWebhook.set(webhookId, (perWebhook.get(webhookId) ?? 0) + 1);
    maxPerWebhook.set(webhookId, effectiveMaxInFlight(delivery.webhook));
    if (flight.isRetry) retriesInFlight++;
    metrics.inFlight.set(flights.size);
    attempt(delivery)
      .catch((error) => logger.error({ err: error, delivery_id: delivery.id }, "attempt failed unexpectedly"))
      .finally(() => {
        flights.delete(flight);
        const left = (perWebhook.get(webhookId) ?? 1) - 1;
        if (left <= 0) {
          perWebhook.delete(webhookId);
          maxPerWebhook.delete(webhookId);
        } else perWebhook.set(webhookId, left);
        if (flight.isRetry) retriesInFlight--;
        metrics.inFlight.set(flights.size);
        wake();
        checkIdle();
      });
  }

  async function attempt(delivery: ClaimedDelivery): Promise<void> {
    const { webhook } = delivery;
    const startedAt = clock.now();
    const timestamp = Math.floor(startedAt / 1000);
    const signature = signPayload(
      liveSecrets(webhook, startedAt),
      delivery.eventId,
      timestamp,
      delivery.payload,
    );
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(webhook.headers)) headers[name.toLowerCase()] = value;
    Object.assign(headers, {
      "content-type": "application/json",
      "user-agent": options.userAgent,
      "webhook-id": delivery.eventId,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signature,
    });
    const signal = abort.signal;
    const response = await client.send(
      { url: webhook.url, headers, body: delivery.payload, timeoutMs: webhook.timeoutSeconds * 1000 },
      signal,
    );
    if (signal.aborted) {
      // Shutdown cut it short: give the lease back rather than count an attempt.
      aborted.push({ deliveryId: delivery.id, leaseOwner: delivery.leaseOwner });
      return;
    }
    const now = clock.now();
    const decision = decideRetry({
      outcome: {
        statusCode: response.statusCode,
        error: response.error,
        retryAfterMs: parseRetryAfter(response.headers?.["retry-after"], now),
      },
      seriesAttempts: delivery.seriesAttempts + 1,
      schedule: options.retrySchedule,
      now,
      random: options.random,
    });
    const settlement: Settlement = decision;
    const ok = decision.action === "succeed";
    metrics.attemptDuration.observe(
      { outcome: ok ? "success" : "failure", mode: webhook.mode },
      response.durationMs / 1000,
    );
    if (!ok) {
      logger.warn(
        {
          delivery_id: delivery.id,
          webhook_id: webhook.id,
          event_id: delivery.eventId,
          status_code: response.statusCode,
          error: response.error ?? "http_status",
          detail: response.detail,
          duration_ms: response.durationMs,
          next: decision.action === "retry" ? new Date(decision.at).toISOString() : decision.action,
        },
        "delivery attempt failed",
      );
    }
    settleQueue.push({
      deliveryId: delivery.id,
      leaseOwner: delivery.leaseOwner,
      webhookId: webhook.id,
      mode: webhook.mode,
      signature,
      settlement,
      attempt: {
        id: options.ids.next("atm"),
        startedAt,
        durationMs: response.durationMs,
        responseStatusCode: response.statusCode,
        responseHeaders: response.headers,
        responseBody: response.body,
        error: response.error ?? (ok ? null : "http_status"),
      },
    });
    scheduleSettle();
  }

  /**
   * The answers to one claim's requests come back over a few turns of the event loop. While
   * attempts are still out and each turn brings more (up to GATHER_TURNS), wait a turn more, so one
   * settlement carries them all instead of each turn's share paying a transaction's fixed cost (a
   * default webhook's 8 answers came in two turns; waiting saved 11–16 % of hookd's CPU a delivery
   * there on SQLite, 5–8 % in a mixed load; PostgreSQL drained 10 % faster, a quarter fewer settles).
   */
  async function gatherAnswers(): Promise<void> {
    for (let turn = 0; turn < GATHER_TURNS && running && flights.size > 0; turn++) {
      const before = settleQueue.length;
      if (before === 0) return;
      await new Promise((resolve) => setImmediate(resolve));
      if (settleQueue.length === before) return;
    }
  }

  function scheduleSettle() {
    // With a store that settles and claims in one call, the loop's next turn does both.
    if (running && store.settleAndClaim) return wake();
    startSettle();
  }

  function startSettle() {
    if (settling) return;
    settling = new Promise<void>((resolve) => setImmediate(resolve))
      .then(gatherAnswers)
      .then(flushSettlements)
      .finally(() => {
        settling = null;
        if (settleQueue.length > 0) startSettle();
        else checkIdle();
      });
  }

  function applySettled(batch: readonly AttemptResult[], outcome: SettleOutcome) {
    for (const { status, mode, count } of outcome.finals) metrics.deliveries.inc({ status, mode }, count);
    for (const disabled of outcome.disabled) {
      metrics.webhooksDisabled.inc({ reason: disabled.reason });
      logger.warn(
        { webhook_id: disabled.webhookId, tenant_id: disabled.tenantId, reason: disabled.reason },
        "webhook disabled",
      );
    }
    // The loop may be asleep on a lease-length wait computed while these were in flight: a
    // retry just scheduled (or a subscription disabled) changes what is due next.
    if (outcome.disabled.length > 0 || batch.some((r) => r.settlement.action === "retry")) wake();
    let lost = 0;
    for (const applied of outcome.applied) if (!applied) lost++;
    if (lost > 0) logger.debug({ lost }, "settlements skipped: lease no longer held");
  }

  async function flushSettlements(): Promise<void> {
    while (settleQueue.length > 0) {
      const batch = settleQueue.slice(0, SETTLE_BATCH);
      try {
        const outcome = await store.settle(batch, clock.now(), options.health, newEventId);
        settleQueue = settleQueue.slice(batch.length);
        applySettled(batch, outcome);
      } catch (error) {
        if (!(error instanceof StorageUnavailableError) && batch.length > 1) {
          // Not the database being away: find the one result that fails, so it cannot hold back
          // every settlement behind it. Settled alone, the others go through.
          settleQueue = [...(await settleOneByOne(batch)), ...settleQueue.slice(batch.length)];
          continue;
        }
        if (!(error instanceof StorageUnavailableError)) {
          logger.error(
            { err: error, delivery_id: batch[0]?.deliveryId },
            "dropping a settlement that cannot be stored",
          );
          settleQueue = settleQueue.slice(batch.length);
          continue;
        }
        logProblem(error, "cannot settle attempts; will retry", { pending: settleQueue.length });
        await new Promise((resolve) => setTimeout(resolve, SETTLE_RETRY_MS));
        if (!running && settleQueue.length > 0 && abort.signal.aborted) return;
      }
    }
  }

  /** Settles each result of a failed batch alone; answers those that hit an unavailable database. */
  async function settleOneByOne(batch: AttemptResult[]): Promise<AttemptResult[]> {
    const left: AttemptResult[] = [];
    for (const result of batch) {
      try {
        const outcome = await store.settle([result], clock.now(), options.health, newEventId);
        for (const { status, mode, count } of outcome.finals) metrics.deliveries.inc({ status, mode }, count);
      } catch (error) {
        if (error instanceof StorageUnavailableError) left.push(result);
        else
          logger.error(
            { err: error, delivery_id: result.deliveryId },
            "dropping a settlement that cannot be stored",
          );
      }
    }
    return left;
  }

  async function loop(): Promise<void> {
    while (running) {
      // Completions wake the loop one by one; claiming for each would cost a transaction per
      // delivery. Letting the I/O of this event-loop turn run first turns them into one claim per
      // turn, after their settlement (queued before this wake-up) has freed their places: a
      // default webhook (cap 8) turns a place around in one turn, not after a timer.
      await new Promise((resolve) => setImmediate(resolve));
      if (store.settleAndClaim) await gatherAnswers();
      if (settling) await Promise.race([settling, stopping]);
      if (!running) break;
      wakeRequested = false;
      let claimed = 0;
      try {
        claimed = await fill();
      } catch (error) {
        logProblem(error, "claim failed; retrying shortly");
        await sleep(MAX_IDLE_WAIT_MS);
        continue;
      }
      if (!running) break;
      // A short claim took everything claimable now (every due subscription at its cap or
      // drained); claiming again before a completion, an event or a due time would find nothing.
      if (wakeRequested) continue;
      let delay = MAX_IDLE_WAIT_MS;
      if (flights.size < options.maxInFlight) {
        try {
          const next = await store.nextDueAt(saturated());
          if (next !== null)
            delay = Math.min(
              MAX_IDLE_WAIT_MS,
              Math.max(claimed === 0 ? MIN_BUSY_WAIT_MS : 0, next - clock.now()),
            );
        } catch (error) {
          logProblem(error, "cannot read the next due time");
        }
      }
      await sleep(delay);
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      abort = new AbortController();
      stopping = new Promise<void>((resolve) => (stopped = resolve));
      stopHandOff = store.handOff?.(taker) ?? (() => {});
      loopDone = loop();
    },
    wake,
    isRunning: () => running,
    inFlight: () => flights.size,
    idle: () =>
      new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        checkIdle();
      }),
    async stop(graceMs) {
      if (!running) return;
      running = false;
      stopHandOff();
      stopped();
      wake();
      await loopDone;
      if (flights.size > 0) {
        const drained = new Promise<void>((resolve) => idleWaiters.push(resolve));
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
        clearTimeout(timer);
      }
      abort.abort();
      // Let aborted attempts unwind, then settle what finished and release what did not.
      while (flights.size > 0) await new Promise((resolve) => setTimeout(resolve, 5));
      if (settling) await settling;
      if (settleQueue.length > 0) await flushSettlements();
      if (aborted.length > 0) {
        const released = await store.releaseLeases(aborted.splice(0), clock.now());
        logger.info({ released }, "released the leases of attempts cut short");
      }
    },
  };
}
