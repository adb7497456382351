// The PostgreSQL implementation of Store (SPEC §6): any number of hookd instances over one
// database. Statements live in sibling modules, one per concern; this file composes them into the
// contract's calls, each one transaction at most, none open across an HTTP attempt.
import { RECOVERABLE_STATUSES, RETRYABLE_STATUSES } from "../../domain/delivery.ts";
import { DEFAULT_MODE, type Mode } from "../../domain/mode.ts";
import { createStatDeltas } from "../../domain/stats.ts";
import type { Clock } from "../../runtime/clock.ts";
import type { IdGenerator } from "../../runtime/ids.ts";
import type { Logger } from "../../runtime/logger.ts";
import { ingestDeltas, recordIngest, settleDeltas } from "../stat-deltas.ts";
import {
  addFinal,
  type ClaimedDelivery,
  type DisabledWebhook,
  type IngestRequest,
  type IngestResult,
  type SettleOutcome,
  type Store,
} from "../store.ts";
import { createAnalyzer } from "./analyze.ts";
import { createPgClient, isUnavailable, type Query } from "./client.ts";
import * as deliveries from "./deliveries.ts";
import * as dispatch from "./dispatch.ts";
import * as events from "./events.ts";
import { createFanout, FANOUT_LOCK_SHARED, type Fanout, lockFanoutForChange } from "./fanout.ts";
import { migrate } from "./migrate.ts";
import { MIGRATIONS } from "./migrations/index.ts";
import * as rows from "./rows.ts";
import * as sessions from "./sessions.ts";
import * as stats from "./stats.ts";
import { type DbTime, measureDbTime, type TimeBase } from "./time.ts";
import * as webhooks from "./webhooks.ts";

export interface PostgresStoreOptions {
  url: string;
  poolSize: number;
  statementTimeoutMs: number;
  ids: IdGenerator;
  clock: Clock;
  logger?: Logger;
  /** Told when deliveries reach a final state outside a settlement (delete, disable), for metrics. */
  onFinal?: (status: "cancelled" | "failed", mode: Mode, count: number) => void;
  /** Written into the instances table. */
  version?: string;
  /**
   * How the store tells the database's time between readings (time.ts): `monotonic` for a daemon
   * on the system clock (immune to wall-clock steps), `clock` (default) to follow the given clock.
   */
  timeBase?: TimeBase;
}

export type PostgresStore = Store & { readonly time: DbTime };

/** Thrown inside an ingest transaction so it rolls back what the request already wrote. */
class IdempotencyConflict extends Error {}
/** Thrown inside a settle that must disable a subscription, to run again under the fan-out lock. */
class NeedsFanoutLock extends Error {}

/** How long the maintenance lease lasts if its holder dies mid-run. */
const MAINTENANCE_LEASE_MS = 5 * 60_000;

/** Subscriptions a work notification names at most (a payload holds up to 8000 bytes). */
const NOTIFY_TARGETS = 200;
/** How long a claim that found every due subscription at its caps answers for the next ones. */
const QUIET_MS = 25;
/** Due subscriptions at their caps that a quiet claim remembers, at most (more: no quiet). */
const QUIET_FULL_MAX = 64;

export async function createPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const client = createPgClient({
    url: options.url,
    poolSize: options.poolSize,
    statementTimeoutMs: options.statementTimeoutMs,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  try {
    await migrate(client, MIGRATIONS);
  } catch (error) {
    await client.close();
    throw error;
  }
  const time = await measureDbTime(client, options.clock, options.timeBase ?? "clock");
  const { ids } = options;
  const fanout = createFanout();
  const q = client.query;
  const shard = stats.createShards();
  const analyzer = createAnalyzer({ tx: client.tx, ...(options.logger ? { logger: options.logger } : {}) });
  void analyzer.start();
  /** The rows accepted ingests wrote: events and their deliveries. */
  const wroteIngested = (results: readonly IngestResult[]) => {
    let events = 0;
    let queued = 0;
    for (const result of results) {
      if (result.kind !== "accepted") continue;
      events += result.events.length;
      for (const event of result.events) queued += event.deliveriesCount;
    }
    analyzer.wrote("events", events);
    analyzer.wrote("deliveries", queued);
  };

  /** A transaction that changes subscriptions: the fan-out lock first, then the change. */
  const changeWebhooks = <T>(fn: (q: Query) => Promise<T>) =>
    client.tx(async (tx) => {
      await lockFanoutForChange(tx);
      return fn(tx);
    });

  // Other instances hear of ingested work by a notification sent after the commit, not inside the
  // ingest: PostgreSQL serializes every committing transaction that notified on one database-wide
  // lock, held through its commit flush, which made it the bound on ingest (measured: half the
  // sessions waiting in COMMIT on Lock:object). One notification at a time per instance, later
  // ingests folded into the next; its transaction commits without waiting for the flush (a
  // notification is a hint: this instance's dispatcher is woken directly, and all of them poll).
  // A notification names its sender's token and, when they fit, the subscriptions its ingests
  // queued for ("token:wh_a,wh_b"). A listener ignores its own (the routes that queue work wake
  // this instance's dispatcher themselves, and each echo would cost a claim), and one that names
  // only subscriptions this instance just found at their caps (`quiet`, below).
  const origin = Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString("hex");
  let notifying = false;
  let notifyFor: Set<string> | null = new Set(); // null: more than a payload holds
  const notifyWork = (targets: readonly string[]) => {
    if (notifyFor) for (const id of targets) notifyFor.add(id);
    if (notifyFor && notifyFor.size > NOTIFY_TARGETS) notifyFor = null;
    if (notifying) return;
    notifying = true;
    void (async () => {
      while (notifyFor === null || notifyFor.size > 0) {
        const payload = notifyFor ? `${origin}:${[...notifyFor].join(",")}` : origin;
        notifyFor = new Set();
        // One statement that commits alone: the setting is local to its implicit transaction.
        await q(`${dispatch.NOTIFY_WORK_PAYLOAD}, set_config('synchronous_commit', 'off', true)`, [
          payload,
        ]).catch(
          () => {}, // the others poll
        );
      }
      notifying = false;
    })();
  };

  // After a claim found every due subscription at its cap (and claimed nothing), claims answer
  // nothing without asking the database for QUIET_MS, unless something that can free a place or
  // queue work for another subscription happened here meanwhile: a settlement, a release, a
  // subscription change, a requeue, or deliveries queued for a subscription not in `full`. Places
  // freed by another instance are claimed by that instance's own dispatcher; this one looks again
  // within QUIET_MS. Under a stream of events to subscriptions whose places are all taken, each
  // ingest woke a claim that found nothing (measured: 40 % of the server's samples at C = 64).
  // While quiet, this instance's ingests for those subscriptions notify no one: no instance could
  // take that work. A quiet that runs out by time alone is followed by a cheap look at whether a
  // due subscription has a place (dispatch.nothingOpen) before a claim: at a slow endpoint each
  // instance asks every QUIET_MS, and a claim that locks nothing still costs a millisecond of the
  // server's CPU (three instances at C = 64: 14–24 % of the server's samples).
  // (By the store's clock: a test's manual clock that moves past a lease's end ends it too.)
  let quiet: { full: Set<string>; since: number; until: number } | null = null;
  const stillQuiet = (now = options.clock.now()) => quiet !== null && now >= quiet.since && now < quiet.until;
  // Each end of quiet counts: a claim that started before it (and so may have read the database
  // before that change committed) does not make the store quiet when it answers.
  let quietEpoch = 0;
  const unquiet = () => {
    quiet = null;
    quietEpoch++;
  };
  // Work queued for named subscriptions is weaker news: it gives no place back, so a claim in
  // flight whose answer finds each of them at its caps may still make the store quiet. Each claim
  // in flight collects the names it hears of.
  const claimsInFlight = new Set<Set<string>>();
  const heardOf = (ids: readonly string[]) => {
    const known = quiet?.full;
    if (!known || !ids.every((id) => known.has(id))) quiet = null;
    for (const heard of claimsInFlight) for (const id of ids) heard.add(id);
  };
  /** A write that can free a place or queue work: it ends the quiet once it is done. */
  const changing = <T>(work: () => Promise<T>): Promise<T> => work().finally(unquiet);
  const queuedFor = (targets: readonly string[]) => {
    if (targets.length === 0) return;
    heardOf(targets);
    // No instance can take work for subscriptions this one just found at their caps (places are
    // counted in the database for all of them); the instance that gives a place back claims next.
    if (stillQuiet()) return;
    notifyWork(targets);
  };

  // A claim's housekeeping (dispatch.claimDue), run while its deliveries go out; the next claim
  // and the next due-time read wait for it. It never fails (a failure there loses nothing).
  let housekeeping: Promise<void> = Promise.resolve();
  const defer = (work: Promise<void>) => {
    housekeeping = Promise.all([housekeeping, work]).then(() => {});
  };

  /** One request in a transaction of its own (keys, or a tenant not cached yet). */
  const ingestAlone = async (request: IngestRequest): Promise<IngestResult> => {
    try {
      // Run again when it fanned out against an old copy of the subscriptions (it is refreshed).
      for (let attempt = 1; ; attempt++) {
        try {
          const { result, targets } = await client.tx((tx) =>
            ingest(tx, time, request, ids, fanout, shard()),
          );
          queuedFor(targets);
          wroteIngested([result]);
          return result;
        } catch (error) {
          if (!(error instanceof StaleFanout) || attempt >= 5) throw error;
        }
      }
    } catch (error) {
      if (error instanceof IdempotencyConflict) return { kind: "conflict" };
      throw error;
    }
  };

  // Ingest requests without keys are grouped (SQLite's write batcher does the same), each group one
  // call of hookd_ingest() and one commit flush, which is what bounds this path (the server's WAL
  // flushes). A request that arrives while no group that could take more is running starts one at
  // once with whatever waits, so nothing waits for a timer; while one runs, what arrives waits and
  // makes the next group bigger. Groups that are full (BATCH_EVENTS, or with more waiting than
  // fits) start whenever fewer than GROUPS run. Measured at C=64 on two cores: one open group at a
  // time took 7.3 k ev/s where up to five took 5.8 k (more, smaller commits). A group that fails
  // for another reason than the database being away is run again one request at a time, so one bad
  // request fails alone.
  const GROUPS = Math.max(1, Math.floor(options.poolSize / 2));
  const BATCH_EVENTS = 500;
  const waiting: {
    request: IngestRequest;
    resolve: (r: IngestResult) => void;
    reject: (e: unknown) => void;
  }[] = [];
  let groupsRunning = 0;
  let openRunning = 0;
  const runBatch = async (batch: typeof waiting) => {
    const alone: Promise<void>[] = [];
    const runAlone = (ws: typeof waiting) => {
      for (const w of ws) alone.push(ingestAlone(w.request).then(w.resolve, w.reject));
    };
    let rest = batch;
    for (let attempt = 1; attempt <= 3 && rest.length > 0; attempt++) {
      // A tenant whose copy was dropped meanwhile (a subscription changed) is loaded again, once
      // for all the requests waiting for it; where that fails, each request loads it on its own.
      const uncached = new Set(
        rest.filter((w) => !fanout.cached(w.request.tenantId)).map((w) => w.request.tenantId),
      );
      await Promise.all([...uncached].map((tenantId) => fanout.load(q, tenantId).catch(() => {})));
      runAlone(rest.filter((w) => !fanout.cached(w.request.tenantId)));
      rest = rest.filter((w) => fanout.cached(w.request.tenantId));
      if (rest.length === 0) break;
      const requests = rest.map((w) => w.request);
      try {
        const { results, targets } = await ingestBatch(q, time, requests, ids, fanout, shard());
        queuedFor(targets);
        wroteIngested(results);
        for (const [i, w] of rest.entries()) w.resolve(results[i]!);
        rest = [];
      } catch (error) {
        if (error instanceof StaleFanout) continue;
        if (isUnavailable(error)) for (const w of rest) w.reject(error);
        else runAlone(rest);
        rest = [];
      }
    }
    runAlone(rest);
    await Promise.all(alone);
  };
  const pump = () => {
    while (groupsRunning < GROUPS && waiting.length > 0) {
      let events = 0;
      let n = 0;
      while (n < waiting.length && (n === 0 || events + waiting[n]!.request.events.length <= BATCH_EVENTS)) {
        events += waiting[n]!.request.events.length;
        n++;
      }
      const open = events < BATCH_EVENTS && n === waiting.length;
      if (open && openRunning > 0) return;
      const batch = waiting.splice(0, n);
      groupsRunning++;
      if (open) openRunning++;
      void runBatch(batch).finally(() => {
        groupsRunning--;
        if (open) openRunning--;
        pump();
      });
    }
  };
  const batcher = {
    add: (request: IngestRequest) =>
      new Promise<IngestResult>((resolve, reject) => {
        waiting.push({ request, resolve, reject });
        pump();
      }),
  };

  const webhookRefusal = async (tx: Query, webhookId: string) => {
    const webhook = await webhooks.selectWebhook(tx, webhookId);
    if (!webhook) return "webhook_deleted" as const;
    return webhook.enabled ? null : ("webhook_disabled" as const);
  };

  return {
    driver: "postgres",
    time,

    async checkWritable(now) {
      await q(
        "INSERT INTO settings (key, value) VALUES ('heartbeat', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [String(now)],
      );
    },

    close: async () => {
      await housekeeping;
      await analyzer.idle();
      await client.close();
    },

    async getSetting(key) {
      const [row] = await q<{ value: string }>("SELECT value FROM settings WHERE key = $1", [key]);
      return row?.value ?? null;
    },

    async insertSettingIfAbsent(key, value) {
      const rows = await q(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
        [key, value],
      );
      return rows.length > 0;
    },

    async insertWebhook(webhook) {
      return changing(async () => {
        return changeWebhooks(async (tx) => {
          await webhooks.insertWebhook(tx, webhook);
          return (await webhooks.selectWebhook(tx, webhook.id))!;
        });
      });
    },

    findWebhook: (id, tenantId) => webhooks.selectWebhook(q, id, tenantId),
    listWebhooks: (filter, page) => webhooks.selectWebhookPage(q, filter, page),

    async updateWebhook(id, tenantId, changes, now) {
      return changing(async () => {
        let failed = 0;
        const result = await changeWebhooks(async (tx) => {
          if (!(await webhooks.updateWebhook(tx, id, tenantId, changes, now))) return null;
          if (changes.secret !== undefined) {
            // New key material (a change of scheme): every earlier secret stops signing now.
            await webhooks.capPreviousSecrets(tx, id, now);
            await webhooks.deleteExpiredSecrets(tx, id, now);
          }
          if (changes.ordering !== undefined || changes.rateLimit !== undefined) {
            // The hint was set under the old rules (a FIFO head's, a rate window's): due now, the
            // next claim sets it under the new ones. The update holds the row, as a claim would.
            await tx("UPDATE webhooks SET next_due_at = least(next_due_at, $2) WHERE id = $1", [
              id,
              time.toDb(now),
            ]);
          }
          if (changes.enabled === false) {
            failed = await deliveries.endQueued(tx, id, "failed", now);
            await deliveries.refreshDue(tx, id, time.toDb(now));
          }
          return webhooks.selectWebhook(tx, id);
        });
        if (failed > 0) options.onFinal?.("failed", result?.mode ?? DEFAULT_MODE, failed);
        return result;
      });
    },

    async deleteWebhook(id, tenantId, now) {
      return changing(async () => {
        let cancelled = 0;
        let mode: Mode = DEFAULT_MODE;
        const deleted = await changeWebhooks(async (tx) => {
          mode = (await webhooks.selectWebhook(tx, id, tenantId))?.mode ?? DEFAULT_MODE;
          if (!(await webhooks.deleteWebhook(tx, id, tenantId))) return false;
          cancelled = await deliveries.endQueued(tx, id, "cancelled", now);
          return true;
        });
        if (cancelled > 0) options.onFinal?.("cancelled", mode, cancelled);
        return deleted;
      });
    },

    async rotateWebhookSecret(id, tenantId, secret, now, graceUntil) {
      return changing(async () => {
        return client.tx(async (tx) => {
          if (!(await webhooks.lockWebhook(tx, id, tenantId))) return null;
          const current = await webhooks.selectWebhook(tx, id);
          if (!current) return null;
          await webhooks.capPreviousSecrets(tx, id, graceUntil);
          await webhooks.deleteExpiredSecrets(tx, id, now);
          if (graceUntil > now) await webhooks.insertPreviousSecret(tx, id, current.secret, graceUntil);
          await webhooks.replaceSecret(tx, id, secret, now);
          return webhooks.selectWebhook(tx, id);
        });
      });
    },

    async ingest(request) {
      if (request.idempotency || request.eventKeys?.some((key) => key)) return ingestAlone(request);
      // A tenant not cached yet (the first requests after a start or a subscription change) is
      // loaded once for every request that waits for it, and they join the groups.
      if (!fanout.cached(request.tenantId)) await fanout.load(q, request.tenantId).catch(() => {});
      return fanout.cached(request.tenantId) ? batcher.add(request) : ingestAlone(request);
    },

    async insertTestEvent(webhook, event) {
      return changing(async () => {
        return client.tx(async (tx) => {
          const [record] = await events.insertEvents(tx, webhook.tenantId, webhook.mode, [
            { event, deliveriesCount: 1 },
          ]);
          const id = ids.next("dlv");
          await deliveries.insertDeliveries(tx, time, webhook.tenantId, webhook.mode, [
            { id, eventId: event.id, webhookId: webhook.id, eventType: event.type, now: event.createdAt },
          ]);
          await deliveries.lowerDue(
            tx,
            new Map([[webhook.id, time.toDb(event.createdAt)]]),
            dispatch.NOTIFY_WORK,
          );
          await stats.addStats(
            tx,
            ingestDeltas(
              webhook.tenantId,
              [{ createdAt: event.createdAt, webhookIds: [webhook.id] }],
              webhook.mode,
            ),
            shard(),
          );
          return { event: record!, delivery: (await deliveries.selectDelivery(tx, time, id))! };
        });
      });
    },

    findEvent: (id, tenantId) => events.selectEventWithStatus(q, id, tenantId),
    listEvents: (filter, page) => events.selectEventPage(q, filter, page),
    findDelivery: (id, tenantId) => deliveries.selectDelivery(q, time, id, tenantId),
    listDeliveries: (filter, page) => deliveries.selectDeliveryPage(q, time, filter, page),
    listAttempts: (deliveryId, page) => deliveries.selectAttemptPage(q, deliveryId, page),

    async requeueDelivery(id, tenantId, now) {
      return changing(async () => {
        return client.tx(async (tx) => {
          const current = await deliveries.selectDelivery(tx, time, id, tenantId);
          if (!current) return null;
          if (current.status === "cancelled") return "cancelled";
          // The subscription's row first (the order every writer takes), then the delivery.
          // The due lock before the row lock: a raise holding the due lock may wait for the row.
          await deliveries.lockDueShared(tx, [current.webhookId]);
          if (!(await webhooks.lockWebhook(tx, current.webhookId))) return "webhook_deleted";
          const refusal = await webhookRefusal(tx, current.webhookId);
          if (refusal) return refusal;
          if (!(await deliveries.requeue(tx, time, id, now, RETRYABLE_STATUSES))) return "queued";
          await deliveries.lowerDue(tx, new Map([[current.webhookId, time.toDb(now)]]), dispatch.NOTIFY_WORK);
          return deliveries.selectDelivery(tx, time, id);
        });
      });
    },

    async recoverDeliveries(webhookId, since, until, now) {
      return changing(async () => {
        return client.tx(async (tx) => {
          await deliveries.lockDueShared(tx, [webhookId]); // before the row lock, as above
          if (!(await webhooks.lockWebhook(tx, webhookId))) return "webhook_deleted";
          const refusal = await webhookRefusal(tx, webhookId);
          if (refusal) return refusal;
          const n = await deliveries.requeueRange(
            tx,
            time,
            webhookId,
            since,
            until,
            now,
            RECOVERABLE_STATUSES,
          );
          if (n > 0) {
            await deliveries.lowerDue(tx, new Map([[webhookId, time.toDb(now)]]), dispatch.NOTIFY_WORK);
          }
          return n;
        });
      });
    },

    async claimDue(request) {
      if (stillQuiet(request.now)) return [];
      // The last claim's housekeeping first: its raised hints keep this claim from looking again.
      await housekeeping;
      // A quiet that ran out by time alone (nothing here ended it): most often nothing has changed,
      // which a statement a fraction of the claim's cost tells.
      const lapsed = quiet !== null;
      quiet = null;
      const epoch = quietEpoch;
      const heard = new Set<string>();
      claimsInFlight.add(heard);
      const seen: dispatch.ClaimSeen = {};
      let claimed: ClaimedDelivery[];
      try {
        claimed =
          lapsed && (await dispatch.nothingOpen(q, time, request.now, seen))
            ? []
            : await dispatch.claimDue(client, time, request, seen, defer);
      } finally {
        claimsInFlight.delete(heard);
      }
      // Nothing due at all is no reason: that claim was cheap, and nextDueAt says how long to wait.
      const full = new Set(seen.full ?? []);
      if (
        claimed.length === 0 &&
        full.size > 0 &&
        full.size <= QUIET_FULL_MAX &&
        epoch === quietEpoch &&
        [...heard].every((id) => full.has(id))
      ) {
        const until = Math.min(request.now + QUIET_MS, seen.until ?? Number.POSITIVE_INFINITY);
        quiet = { full, since: request.now, until };
      }
      return claimed;
    },

    async settle(results, now, health, newEventId): Promise<SettleOutcome> {
      analyzer.wrote("deliveries", results.length);
      analyzer.wrote("attempts", results.length);
      return changing(async () => {
        if (results.length === 0) return { applied: [], disabled: [], finals: [] };
        const usual = await dispatch.settleInOneCall(
          q,
          time,
          results,
          now,
          stats.attemptStatsJson(settleDeltas(results)),
          shard(),
        );
        if (usual) return { ...usual, disabled: [] };
        // A disable changes the fan-out, whose lock must come before any row lock (ingest takes it
        // first too). Disables are rare: a settle that finds one starts again with the lock held, so
        // the attempt, the disable and its `webhook.disabled` event commit together.
        const run = (lockFanout: boolean) =>
          client.tx(async (tx) => {
            if (lockFanout) await lockFanoutForChange(tx);
            const outcome = await dispatch.settleAttempts(tx, time, results, now, health);
            if (outcome.disable.length > 0 && !lockFanout) throw new NeedsFanoutLock();
            const disabled: DisabledWebhook[] = [];
            const finals = [...outcome.finals];
            for (const { webhookId, reason } of outcome.disable) {
              const done = await dispatch.disableWebhook(tx, time, webhookId, reason, now, {
                ids,
                fanout,
                newEventId,
              });
              if (!done) continue;
              disabled.push(done.disabled);
              addFinal(finals, "failed", done.mode, done.failedDeliveries);
            }
            // The statistics aggregates (stats.ts): one statement, last, after the subscription rows.
            await stats.addStats(tx, settleDeltas(outcome.recorded), shard());
            return { applied: outcome.applied, disabled, finals };
          });
        try {
          return await run(false);
        } catch (error) {
          if (!(error instanceof NeedsFanoutLock)) throw error;
          return run(true);
        }
      });
    },

    releaseLeases: (leases, now) =>
      changing(() => client.tx((tx) => dispatch.releaseLeases(tx, time, leases, now))),
    // While quiet, what is due is at its caps: the dispatcher waits for a wake-up or its shortest wait.
    nextDueAt: async (exclude) => {
      if (stillQuiet()) return options.clock.now();
      await housekeeping;
      return dispatch.nextDueAt(q, time, exclude);
    },
    queueStats: () => dispatch.queueStats(q, time),

    async heartbeat(instanceId, ttlMs) {
      await time.resync(client);
      const [row] = await q<{ live: number }>(
        `WITH beat AS (
           INSERT INTO instances (id, version, heartbeat_at, expires_at)
           VALUES ($1, $2, clock_timestamp(), clock_timestamp() + $3 * interval '1 millisecond')
           ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at
           RETURNING id),
         forgotten AS (DELETE FROM instances WHERE expires_at < clock_timestamp() - interval '1 hour')
         SELECT (SELECT count(*) FROM instances WHERE expires_at > clock_timestamp() AND id <> $1)::int + 1 AS live`,
        [instanceId, options.version ?? "", ttlMs],
      );
      return row?.live ?? 1;
    },

    async removeInstance(instanceId) {
      await q("DELETE FROM instances WHERE id = $1", [instanceId]);
    },

    async withMaintenanceLock(fn) {
      const me = `m.${ids.next("evt")}`; // any unique token
      const [taken] = await q(
        `UPDATE maintenance_lease SET owner = $1, expires_at = clock_timestamp() + $2 * interval '1 millisecond'
         WHERE id = 1 AND expires_at < clock_timestamp() RETURNING 1`,
        [me, MAINTENANCE_LEASE_MS],
      );
      if (!taken) return null;
      try {
        return await fn();
      } finally {
        await q("UPDATE maintenance_lease SET expires_at = '-infinity' WHERE id = 1 AND owner = $1", [
          me,
        ]).catch(
          () => {}, // the lease runs out by itself
        );
      }
    },

    async onWork(listener) {
      client.onReset(listener);
      const [row] = await q<{ channel: string }>(dispatch.WORK_CHANNEL_NAME);
      client.onReset(unquiet);
      return client.listen(row?.channel ?? "hookd_work", (payload) => {
        const [from, named] = (payload ?? "").split(":", 2);
        if (payload !== undefined && from === origin) return;
        if (named === undefined) unquiet();
        else {
          const ids = named.split(",");
          if (stillQuiet() && ids.every((id) => quiet?.full.has(id))) return;
          heardOf(ids);
        }
        listener();
      });
    },

    reconcileInFlight: () => changing(() => dispatch.reconcileInFlight(client)),
    hasData: () => rows.hasData(q),
    exportRows: (table, after, limit) => rows.exportRows(q, time, table, after, limit),
    importRows: (table, given) => rows.importRows(client, time, table, given),

    sweepRetention: (before, limit) =>
      client.tx(async (tx) => {
        // The queue deltas folded, aggregates and ended sessions removed in the same run; the count
        // is of history rows alone.
        await stats.foldQueueDeltas(tx);
        await stats.sweepStats(tx, before, limit);
        await sessions.deleteEndedSessions(tx, before, limit);
        return dispatch.sweepRetention(tx, before, limit);
      }),

    insertPortalSession: (session) => sessions.insertSession(q, session),
    findPortalSessionByToken: (tokenHash, now) => sessions.selectSessionByToken(q, tokenHash, now),
    findPortalSession: (id, tenantId, now) => sessions.selectSession(q, id, tenantId, now),
    listPortalSessions: (filter, page) => sessions.selectSessionPage(q, filter, page),
    deletePortalSession: (id, tenantId, now) => sessions.deleteSession(q, id, tenantId, now),
    deletePortalSessions: (tenantId, now, mode) => sessions.deleteSessions(q, tenantId, now, mode),
    readStats: (query) => stats.readStats(q, time, query),
    sweepIdempotencyKeys: (now, limit) => events.deleteExpiredIdempotencyKeys(q, now, limit),
  };
}

/** Thrown inside an ingest that fanned out against a copy of the subscriptions older than the database's. */
class StaleFanout extends Error {}

/**
 * One ingest request in its own transaction: idempotency, events, fan-out; `targets`, the
 * subscriptions it queued deliveries for. Two statements between BEGIN and COMMIT: the first takes the fan-out lock, the
 * targets' due locks (all shared) and the request's idempotency key; the second writes the events,
 * the deliveries and the lowered hints, and reads the fan-out version (its snapshot starts after
 * the lock, so it sees every change committed before): if the cached subscriptions the targets came
 * from are older, the transaction is rolled back and the ingest runs again. With the tenant cached
 * and no per-event keys, the two are pipelined (sent together): the second writes only if the
 * first took the key (its row names this request's events). Otherwise they run one after the other,
 * with the cache loaded or the per-event keys taken between.
 */
async function ingest(
  q: Query,
  time: DbTime,
  request: IngestRequest,
  ids: IdGenerator,
  fanout: Fanout,
  shard: number,
): Promise<{ result: IngestResult; targets: string[] }> {
  const { tenantId, now } = request;
  const mode = request.mode ?? DEFAULT_MODE;
  // Matched against the cached copy first, so that the statement taking the fan-out lock takes the
  // targets' due locks too (deliveries.ts: before the statement that lowers their hints). The
  // same statement takes the request's idempotency key, when it has one.
  let cached = fanout.cached(tenantId);
  const targetsOf = new Map<string, string[]>();
  if (cached) {
    for (const event of request.events) targetsOf.set(event.id, cached.match(mode, event));
  }
  const locked = new Set([...targetsOf.values()].flat());
  const eventIds = request.events.map((e) => e.id);
  const lock = `SELECT ${FANOUT_LOCK_SHARED},
    (SELECT count(${deliveries.DUE_LOCK_SHARED("u.id")}) FROM unnest($1::text[]) AS u(id))`;
  if (cached && !(request.eventKeys ?? []).some((key) => key)) {
    const from = cached;
    const plan = planIngest([request], (event) => targetsOf.get(event.id) ?? [], ids, time);
    const key = request.idempotency;
    const write = () =>
      events.insertIngested(
        q,
        time,
        plan.fresh,
        plan.deliveries,
        plan.due,
        key ? { tenantId, mode, key: key.key, eventIds } : undefined,
      );
    // The statistics aggregates (stats.ts) go with the writes when nothing can stop them; behind a
    // key, once the key is known to be this request's.
    const counted = () => stats.addStats(q, ingestDeltas(tenantId, fannedOutOf(plan), mode), shard);
    const [, written] = await Promise.all([
      key
        ? q(`WITH taken AS (${events.IDEMPOTENCY_UPSERT(2)} RETURNING 1) ${lock}`, [
            [...locked].sort(),
            ...events.idempotencyParams(tenantId, mode, key, eventIds, now),
          ])
        : q(lock, [[...locked].sort()]),
      write(),
      ...(key ? [] : [counted()]),
    ]);
    let outcome = written;
    if (key && !outcome.written) {
      const first = await events.idempotencyHeld(q, tenantId, mode, key, eventIds);
      if (first) {
        if (first.requestHash !== key.requestHash) return { result: { kind: "conflict" }, targets: [] };
        return {
          result: { kind: "replayed", events: await events.selectEvents(q, first.eventIds) },
          targets: [],
        };
      }
      outcome = await write(); // the key was taken over (its first events are gone)
    }
    if (outcome.version !== from.version) {
      fanout.saw(outcome.version);
      throw new StaleFanout();
    }
    if (key) await counted();
    return {
      result: {
        kind: "accepted",
        events: plan.fresh.map(({ event, deliveriesCount }) => ({
          ...event,
          tenantId,
          mode,
          deliveriesCount,
        })),
      },
      targets: plan.deliveries.map((d) => d.webhookId),
    };
  }
  if (request.idempotency) {
    const [row] = await q<{ taken: number }>(
      `WITH taken AS (${events.IDEMPOTENCY_UPSERT(2)} RETURNING 1) ${lock}, (SELECT count(*) FROM taken)::int AS taken`,
      [[...locked].sort(), ...events.idempotencyParams(tenantId, mode, request.idempotency, eventIds, now)],
    );
    const first = row?.taken
      ? null
      : await events.idempotencyHeld(q, tenantId, mode, request.idempotency, eventIds);
    if (first) {
      if (first.requestHash !== request.idempotency.requestHash)
        return { result: { kind: "conflict" }, targets: [] };
      return {
        result: { kind: "replayed", events: await events.selectEvents(q, first.eventIds) },
        targets: [],
      };
    }
  } else {
    await q(lock, [[...locked].sort()]);
  }
  if (!cached) {
    for (const event of request.events) {
      targetsOf.set(event.id, await fanout.match(q, tenantId, mode, event));
    }
    cached = fanout.cached(tenantId);
    const more = [...new Set([...targetsOf.values()].flat())].filter((id) => !locked.has(id));
    await deliveries.lockDueShared(q, more);
  }
  const out: { replayed?: string[]; event?: IngestRequest["events"][number] }[] = [];
  let created = 0;
  const fresh: { event: IngestRequest["events"][number]; deliveriesCount: number }[] = [];
  const newDeliveries: deliveries.NewDelivery[] = [];
  const due = new Map<string, number>();
  const keysHere = new Map<string, { requestHash: string; eventIds: string[] }>();
  for (const [index, event] of request.events.entries()) {
    const key = request.eventKeys?.[index] ?? null;
    if (key) {
      // A key this request took a moment ago: its events are not inserted yet (they go in at the end).
      const first =
        keysHere.get(key.key) ?? (await events.claimIdempotencyKey(q, tenantId, mode, key, [event.id], now));
      if (!first) keysHere.set(key.key, { requestHash: key.requestHash, eventIds: [event.id] });
      if (first) {
        if (first.requestHash !== key.requestHash) throw new IdempotencyConflict();
        out.push({ replayed: first.eventIds });
        continue;
      }
    }
    const targets = targetsOf.get(event.id) ?? [];
    out.push({ event });
    fresh.push({ event, deliveriesCount: targets.length });
    created++;
    const at = time.toDb(event.createdAt);
    for (const webhookId of targets) {
      newDeliveries.push({
        id: ids.next("dlv"),
        eventId: event.id,
        webhookId,
        eventType: event.type,
        now: event.createdAt,
      });
      due.set(webhookId, Math.min(due.get(webhookId) ?? at, at));
    }
  }
  if (fresh.length > 0) {
    const { version } = await events.insertIngested(
      q,
      time,
      fresh.map((f) => ({ ...f, tenantId, mode })),
      newDeliveries.map((d) => ({ ...d, tenantId, mode })),
      due,
    );
    if (version !== cached?.version) {
      fanout.saw(version);
      throw new StaleFanout();
    }
    const fannedOut = fannedOutOf({ fresh, deliveries: newDeliveries });
    await stats.addStats(q, ingestDeltas(tenantId, fannedOut, mode), shard);
  }
  const inserted = new Map(
    fresh.map(({ event, deliveriesCount }) => [event.id, { ...event, tenantId, mode, deliveriesCount }]),
  );
  const replayedIds = out.flatMap((o) => o.replayed ?? []);
  const replayed = new Map((await events.selectEvents(q, replayedIds)).map((e) => [e.id, e]));
  const records = out.flatMap((o) =>
    o.replayed
      ? o.replayed.map((id) => replayed.get(id)).filter((e) => e !== undefined)
      : [inserted.get(o.event!.id)!],
  );
  // The key was taken with the request's own event ids: written again only when replays changed them.
  if (request.idempotency && records.map((e) => e.id).join("\n") !== eventIds.join("\n")) {
    await events.setIdempotencyEvents(
      q,
      tenantId,
      mode,
      request.idempotency.key,
      records.map((e) => e.id),
    );
  }
  const result: IngestResult =
    created === 0 && records.length > 0
      ? { kind: "replayed", events: records }
      : { kind: "accepted", events: records };
  return { result, targets: newDeliveries.map((d) => d.webhookId) };
}

/** The events of requests with no per-event keys, their deliveries and the due times they set. */
function planIngest(
  requests: readonly IngestRequest[],
  targetsOf: (event: IngestRequest["events"][number], tenantId: string, mode: Mode) => string[],
  ids: IdGenerator,
  time: DbTime,
) {
  const fresh: {
    tenantId: string;
    mode: Mode;
    event: IngestRequest["events"][number];
    deliveriesCount: number;
  }[] = [];
  const newDeliveries: (deliveries.NewDelivery & { tenantId: string; mode: Mode })[] = [];
  const due = new Map<string, number>();
  for (const { tenantId, events, mode = DEFAULT_MODE } of requests) {
    for (const event of events) {
      const targets = targetsOf(event, tenantId, mode);
      fresh.push({ tenantId, mode, event, deliveriesCount: targets.length });
      const at = time.toDb(event.createdAt);
      for (const webhookId of targets) {
        newDeliveries.push({
          id: ids.next("dlv"),
          tenantId,
          mode,
          eventId: event.id,
          webhookId,
          eventType: event.type,
          now: event.createdAt,
        });
        due.set(webhookId, Math.min(due.get(webhookId) ?? at, at));
      }
    }
  }
  return { fresh, deliveries: newDeliveries, due };
}

/** The statistics deltas of a group of requests (each its tenant's and mode's). */
function groupDeltas(
  requests: readonly IngestRequest[],
  plan: ReturnType<typeof planIngest>,
): ReturnType<typeof ingestDeltas> {
  const deltas = createStatDeltas();
  for (const request of requests) {
    const ids = new Set(request.events.map((e) => e.id));
    recordIngest(
      deltas,
      request.tenantId,
      fannedOutOf({
        fresh: plan.fresh.filter((f) => ids.has(f.event.id)),
        deliveries: plan.deliveries.filter((d) => ids.has(d.eventId)),
      }),
      request.mode ?? DEFAULT_MODE,
    );
  }
  return { kind: "events", deltas: deltas.list() };
}

/** Each fresh event with the webhooks it was fanned out to, for the statistics (stat-deltas.ts). */
function fannedOutOf(plan: {
  fresh: readonly { event: { id: string; createdAt: number } }[];
  deliveries: readonly { eventId: string; webhookId: string }[];
}): { createdAt: number; webhookIds: string[] }[] {
  const targetsOf = new Map<string, string[]>();
  for (const d of plan.deliveries) {
    const targets = targetsOf.get(d.eventId);
    if (targets) targets.push(d.webhookId);
    else targetsOf.set(d.eventId, [d.webhookId]);
  }
  return plan.fresh.map(({ event }) => ({
    createdAt: event.createdAt,
    webhookIds: targetsOf.get(event.id) ?? [],
  }));
}

/**
 * Several ingest requests without idempotency keys, of tenants whose subscriptions are cached, in
 * one call of hookd_ingest() (group commit: one round trip and one commit flush for all; the
 * statements of `ingest`, run inside the server). Answers each request's events, in order;
 * StaleFanout when a cached copy was older than the database's version (nothing was written).
 */
async function ingestBatch(
  q: Query,
  time: DbTime,
  requests: readonly IngestRequest[],
  ids: IdGenerator,
  fanout: Fanout,
  shard: number,
): Promise<{ results: IngestResult[]; targets: string[] }> {
  const versions = new Set<string>();
  const copies = new Map<string, NonNullable<ReturnType<Fanout["cached"]>>>();
  for (const { tenantId } of requests) {
    const copy = fanout.cached(tenantId);
    if (!copy) throw new StaleFanout();
    copies.set(tenantId, copy);
    versions.add(copy.version);
  }
  const plan = planIngest(
    requests,
    (event, tenantId, mode) => copies.get(tenantId)?.match(mode, event) ?? [],
    ids,
    time,
  );
  const [expected, ...others] = [...versions].sort((a, b) => (BigInt(a) < BigInt(b) ? 1 : -1));
  if (others.length > 0) {
    fanout.saw(expected!); // the copies older than the newest one are dropped; the group runs again
    throw new StaleFanout();
  }
  const targets = [...new Set(plan.deliveries.map((d) => d.webhookId))].sort();
  const deltas = groupDeltas(requests, plan);
  const written = await events.callIngest(
    q,
    time,
    expected!,
    targets,
    plan.fresh,
    plan.deliveries,
    plan.due,
    stats.eventStatColumns(deltas),
    shard,
  );
  if (!written.written) {
    fanout.saw(written.version);
    throw new StaleFanout();
  }
  const records = new Map(
    plan.fresh.map(({ tenantId, mode, event, deliveriesCount }) => [
      event.id,
      { ...event, tenantId, mode, deliveriesCount },
    ]),
  );
  return {
    results: requests.map((r) => ({ kind: "accepted", events: r.events.map((e) => records.get(e.id)!) })),
    targets: plan.deliveries.map((d) => d.webhookId),
  };
}
