// The SQLite implementation of Store: bun:sqlite in WAL mode, one connection, statements in
// sibling modules. bun:sqlite is synchronous; the async surface is the Store contract. Ingest goes
// through the write batcher (group commit); other writes are short transactions of their own.
import type { Database } from "bun:sqlite";
import { RECOVERABLE_STATUSES, RETRYABLE_STATUSES } from "../../domain/delivery.ts";
import { StorageUnavailableError } from "../../domain/errors.ts";
import { DEFAULT_MODE, type Mode } from "../../domain/mode.ts";
import { createStatDeltas, type StatDeltas } from "../../domain/stats.ts";
import type { IdGenerator } from "../../runtime/ids.ts";
import { ingestDeltas, recordIngest, settleDeltas } from "../stat-deltas.ts";
import type {
  ClaimedDelivery,
  HandOffTaker,
  IngestRequest,
  IngestResult,
  NewEvent,
  NewWebhook,
  SettleOutcome,
  Store,
} from "../store.ts";
import * as deliveries from "./deliveries.ts";
import * as controls from "./delivery-controls.ts";
import * as dispatch from "./dispatch.ts";
import { guard } from "./errors.ts";
import * as events from "./events.ts";
import { createHandOffBatch, type HandOffBatch } from "./hand-off.ts";
import { type OpenOptions, openDatabase } from "./open.ts";
import * as rows from "./rows.ts";
import * as sessions from "./sessions.ts";
import * as stats from "./stats.ts";
import { createSubscriptionIndex, type SubscriptionIndex } from "./subscriptions.ts";
import { createWalSync, noWalSync } from "./wal-sync.ts";
import * as webhooks from "./webhooks.ts";
import { createWriteBatcher } from "./write-batch.ts";

export interface SqliteStoreOptions extends OpenOptions {
  ids: IdGenerator;
  /** Told when deliveries reach a final state outside a settlement (delete, disable), for metrics. */
  onFinal?: (status: "cancelled" | "failed", mode: Mode, count: number) => void;
}

/** Thrown inside an ingest write so the batcher rolls back what the request already wrote. */
class IdempotencyConflict extends Error {}

export type SqliteStore = Store & {
  readonly db: Database;
  settleAndClaim: NonNullable<Store["settleAndClaim"]>;
  handOff: NonNullable<Store["handOff"]>;
};

export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const db = openDatabase(options);
  const { ids } = options;
  const tx = <T>(fn: () => T): T => guard(() => db.transaction(fn).immediate());
  const read = <T>(fn: () => T): T => guard(fn);
  // Acknowledged writes (ingest, subscription changes, requeues) wait for the WAL to reach the disk
  // when synchronous is full; claims, settlements and lease releases do not: losing one to a power
  // cut can only repeat a delivery (at least once), never lose an event. Any later sync covers them.
  const wal =
    options.synchronous === "full" && options.path !== ":memory:" ? createWalSync(options.path) : noWalSync;
  const durable = async <T>(value: T): Promise<T> => {
    try {
      await wal.sync();
    } catch (error) {
      throw new StorageUnavailableError(`the write-ahead log cannot be synced: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return value;
  };
  const subscriptions = createSubscriptionIndex(db);
  const leases = dispatch.createLeaseCounter();
  // Ingest commits wake the dispatcher before their WAL sync: a claim of the new deliveries
  // overlaps the sync instead of following the 202 (an event can be delivered before its sync
  // ends; its 202 still waits for it, so nothing acknowledged is lost).
  const workListeners = new Set<() => void>();
  // The dispatcher that takes fresh deliveries from their ingest (hand-off.ts), and the leases of
  // the write batch being built, handed over at its commit.
  let taker: HandOffTaker | null = null;
  let handOff: HandOffBatch | null = null;
  const batchHandOff = () => {
    handOff ??= createHandOffBatch(db, taker, leases);
    return handOff;
  };
  // The statistics of a batch's ingests, written once, before its COMMIT (stats.ts): a busy batch
  // of many requests adds to a few rows rather than each request to its own.
  let ingested = createStatDeltas();
  // The due hints a batch's ingests lower, each subscription once before its COMMIT (a batch of
  // many requests to one webhook updated its row for each). A request that rolls back may leave
  // its hint lowered: early, which is allowed, never late.
  const dueBy = new Map<string, number>();
  const batcher = createWriteBatcher(db, {
    afterCommit: () => durable(undefined),
    onCommit: () => {
      const done = handOff;
      handOff = null;
      done?.commit();
      // Only deliveries left to a claim need the dispatcher awake.
      if (done?.queued) for (const listener of workListeners) listener();
    },
    beforeCommit: () => {
      for (const [webhookId, at] of dueBy) deliveries.markDueBy(db, webhookId, at);
      dueBy.clear();
      stats.addStats(db, { kind: "events", deltas: ingested.list() });
      ingested = createStatDeltas();
    },
    onRollback: () => {
      dueBy.clear();
      ingested = createStatDeltas();
      handOff = null;
    },
  });
  // max_in_flight per subscription for claims (dispatch.claimDue), forgotten on any change.
  const caps = new Map<string, number>();
  /** A settle batch's rows and its statistics aggregates (stats.ts), inside the caller's transaction. */
  const settleRows = (
    results: Parameters<Store["settle"]>[0],
    now: number,
    health: Parameters<Store["settle"]>[2],
    newEventId: () => string,
  ): SettleOutcome => {
    const { recorded, ...outcome } = dispatch.settle(db, results, now, health, {
      ids,
      subscriptions,
      newEventId,
    });
    stats.addStats(db, settleDeltas(recorded));
    return outcome;
  };
  const changedWebhooks = <T>(fn: () => T): T => {
    try {
      return tx(fn);
    } finally {
      subscriptions.invalidate();
      caps.clear();
    }
  };

  return {
    driver: "sqlite",
    db,

    async checkWritable(now) {
      guard(() =>
        db
          .query(
            "INSERT INTO settings (key, value) VALUES ('heartbeat', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          )
          .run(String(now)),
      );
    },

    async close() {
      try {
        guard(() => {
          db.run("PRAGMA optimize");
          db.run("PRAGMA wal_checkpoint(TRUNCATE)");
        });
      } finally {
        wal.close();
        db.close();
      }
    },

    async getSetting(key) {
      const row = read(() =>
        db.query<{ value: string }, [string]>("SELECT value FROM settings WHERE key = ?").get(key),
      );
      return row?.value ?? null;
    },

    async insertSettingIfAbsent(key, value) {
      return durable(
        read(
          () =>
            db.query("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)").run(key, value).changes > 0,
        ),
      );
    },

    async insertWebhook(webhook: NewWebhook) {
      return durable(
        changedWebhooks(() => {
          webhooks.insertWebhook(db, webhook);
          return webhooks.selectWebhook(db, webhook.id)!;
        }),
      );
    },

    async findWebhook(id, tenantId) {
      return read(() => webhooks.selectWebhook(db, id, tenantId));
    },

    async listWebhooks(filter, page) {
      return read(() => webhooks.selectWebhookPage(db, filter, page));
    },

    async updateWebhook(id, tenantId, changes, now) {
      return durable(
        changedWebhooks(() => {
          if (!webhooks.updateWebhook(db, id, tenantId, changes, now)) return null;
          if (changes.secret !== undefined) {
            // New key material (a change of scheme): every earlier secret stops signing now.
            webhooks.capPreviousSecrets(db, id, now);
            webhooks.deleteExpiredSecrets(db, id, now);
          }
          const updated = webhooks.selectWebhook(db, id);
          if (updated && (changes.ordering !== undefined || changes.rateLimit !== undefined)) {
            // The hint follows the rules it was set under: recompute it under the new ones.
            if (updated.ordering === "fifo") controls.refreshFifoDue(db, id, now);
            else deliveries.refreshDue(db, id);
          }
          if (changes.enabled === false) {
            leases.forgetWebhook(id);
            const failed = deliveries.failQueued(db, id, now);
            options.onFinal?.("failed", updated?.mode ?? DEFAULT_MODE, failed);
            deliveries.refreshDue(db, id);
          }
          return updated;
        }),
      );
    },

    async deleteWebhook(id, tenantId, now) {
      return durable(
        changedWebhooks(() => {
          const mode = webhooks.selectWebhook(db, id, tenantId)?.mode ?? DEFAULT_MODE;
          if (!webhooks.deleteWebhook(db, id, tenantId)) return false;
          leases.forgetWebhook(id);
          const cancelled = deliveries.cancelQueued(db, id, now);
          options.onFinal?.("cancelled", mode, cancelled);
          return true;
        }),
      );
    },

    async rotateWebhookSecret(id, tenantId, secret, now, graceUntil) {
      return durable(
        tx(() => {
          const current = webhooks.selectWebhook(db, id, tenantId);
          if (!current) return null;
          webhooks.capPreviousSecrets(db, id, graceUntil);
          webhooks.deleteExpiredSecrets(db, id, now);
          if (graceUntil > now) webhooks.insertPreviousSecret(db, id, current.secret, graceUntil);
          webhooks.replaceSecret(db, id, secret, now);
          return webhooks.selectWebhook(db, id);
        }),
      );
    },

    async ingest(request) {
      try {
        return await batcher.write(() =>
          ingest(db, request, ids, subscriptions, { stats: ingested, dueBy, handOff: batchHandOff() }),
        );
      } catch (error) {
        if (error instanceof IdempotencyConflict) return { kind: "conflict" };
        throw error;
      }
    },

    async insertTestEvent(webhook, event) {
      return durable(
        tx(() => {
          const record = events.insertEvent(db, webhook.tenantId, webhook.mode, event, 1);
          const id = ids.next("dlv");
          deliveries.insertDelivery(db, {
            id,
            tenantId: webhook.tenantId,
            mode: webhook.mode,
            eventId: event.id,
            webhookId: webhook.id,
            eventType: event.type,
            now: event.createdAt,
          });
          deliveries.markDueBy(db, webhook.id, event.createdAt);
          stats.addStats(
            db,
            ingestDeltas(
              webhook.tenantId,
              [{ createdAt: event.createdAt, webhookIds: [webhook.id] }],
              webhook.mode,
            ),
          );
          return { event: record, delivery: deliveries.selectDelivery(db, id)! };
        }),
      );
    },

    async findEvent(id, tenantId) {
      return read(() => events.selectEventWithStatus(db, id, tenantId));
    },

    async listEvents(filter, page) {
      return read(() => events.selectEventPage(db, filter, page));
    },

    async findDelivery(id, tenantId) {
      return read(() => deliveries.selectDelivery(db, id, tenantId));
    },

    async listDeliveries(filter, page) {
      return read(() => deliveries.selectDeliveryPage(db, filter, page));
    },

    async listAttempts(deliveryId, page) {
      return read(() => deliveries.selectAttemptPage(db, deliveryId, page));
    },

    async requeueDelivery(id, tenantId, now) {
      return durable(
        tx(() => {
          const current = deliveries.selectDelivery(db, id, tenantId);
          if (!current) return null;
          if (current.status === "cancelled") return "cancelled";
          const refusal = webhookRefusal(db, current.webhookId);
          if (refusal) return refusal;
          if (!deliveries.requeue(db, id, now, RETRYABLE_STATUSES)) return "queued";
          deliveries.markDueBy(db, current.webhookId, now);
          return deliveries.selectDelivery(db, id);
        }),
      );
    },

    async recoverDeliveries(webhookId, since, until, now) {
      return durable(
        tx(() => {
          const refusal = webhookRefusal(db, webhookId);
          if (refusal) return refusal;
          const n = deliveries.requeueRange(db, webhookId, since, until, now, RECOVERABLE_STATUSES);
          if (n > 0) deliveries.markDueBy(db, webhookId, now);
          return n;
        }),
      );
    },

    async claimDue(request) {
      const claimed = tx(() => dispatch.claimDue(db, request, leases, caps));
      for (const d of claimed) leases.add(d.id, d.leaseOwner, d.webhook.id, d.leaseUntil);
      return claimed;
    },

    async settle(results, now, health, newEventId) {
      const outcome = tx(() => {
        return settleRows(results, now, health, newEventId);
      });
      // Settled (or found lost): either way the attempt is over.
      for (const result of results) leases.remove(result.deliveryId, result.leaseOwner);
      for (const d of outcome.disabled) leases.forgetWebhook(d.webhookId);
      return outcome;
    },

    async settleAndClaim(results, now, health, newEventId, request) {
      // The results' leases stop counting before the claim, inside the transaction; should it
      // roll back, they count again (the settlement will be tried again).
      const restore: (() => void)[] = [];
      let done: { outcome: SettleOutcome; claimed: ClaimedDelivery[] };
      try {
        done = tx(() => {
          const outcome = settleRows(results, now, health, newEventId);
          for (const r of results) restore.push(leases.take(r.deliveryId, r.leaseOwner));
          for (const d of outcome.disabled) leases.forgetWebhook(d.webhookId);
          const claimed = request.limit > 0 ? dispatch.claimDue(db, request, leases, caps) : [];
          return { outcome, claimed };
        });
      } catch (error) {
        for (const undo of restore) undo();
        throw error;
      }
      for (const d of done.claimed) leases.add(d.id, d.leaseOwner, d.webhook.id, d.leaseUntil);
      return done;
    },

    handOff(next) {
      taker = next;
      return () => {
        if (taker === next) taker = null;
      };
    },

    async releaseLeases(given, now) {
      const released = tx(() => dispatch.releaseLeases(db, given, now));
      for (const lease of given) leases.remove(lease.deliveryId, lease.leaseOwner);
      return released;
    },

    async nextDueAt(exclude) {
      return read(() => dispatch.nextDueAt(db, exclude));
    },

    async queueStats() {
      return read(() => dispatch.queueStats(db));
    },

    async heartbeat() {
      return 1; // one process owns a SQLite file
    },

    async removeInstance() {},

    async withMaintenanceLock(fn) {
      return fn();
    },

    async onWork(listener) {
      workListeners.add(listener);
      return () => workListeners.delete(listener);
    },

    async reconcileInFlight() {
      return 0; // leases are counted in this process (dispatch.ts LeaseCounter)
    },

    async hasData() {
      return read(() => rows.hasData(db));
    },

    async exportRows(table, after, limit) {
      return read(() => rows.exportRows(db, table, after, limit));
    },

    async importRows(table, given) {
      guard(() => rows.importRows(db, table, given));
      if (table === "webhooks") {
        subscriptions.invalidate();
        caps.clear();
      }
      await durable(undefined);
    },

    async sweepRetention(before, limit) {
      return tx(() => {
        // Aggregates and ended sessions go in the same run; the count is of history rows alone.
        stats.sweepStats(db, before, limit);
        sessions.deleteEndedSessions(db, before, limit);
        return dispatch.sweepRetention(db, before, limit);
      });
    },

    async insertPortalSession(session) {
      await durable(read(() => sessions.insertSession(db, session)));
    },

    async findPortalSessionByToken(tokenHash, now) {
      return read(() => sessions.selectSessionByToken(db, tokenHash, now));
    },

    async findPortalSession(id, tenantId, now) {
      return read(() => sessions.selectSession(db, id, tenantId, now));
    },

    async listPortalSessions(filter, page) {
      return read(() => sessions.selectSessionPage(db, filter, page));
    },

    async deletePortalSession(id, tenantId, now) {
      return durable(read(() => sessions.deleteSession(db, id, tenantId, now)));
    },

    async deletePortalSessions(tenantId, now, mode) {
      return durable(read(() => sessions.deleteSessions(db, tenantId, now, mode)));
    },

    async readStats(query) {
      // One read transaction, so the counts, the queue and the webhooks agree with one another.
      return read(() => db.transaction(() => stats.readStats(db, query)).deferred());
    },

    async sweepIdempotencyKeys(now, limit) {
      return tx(() => events.deleteExpiredIdempotencyKeys(db, now, limit));
    },
  };
}

/** Why deliveries of this subscription may not be queued again, if they may not. */
function webhookRefusal(db: Database, webhookId: string): "webhook_deleted" | "webhook_disabled" | null {
  const webhook = webhooks.selectWebhook(db, webhookId);
  if (!webhook) return "webhook_deleted";
  return webhook.enabled ? null : "webhook_disabled";
}

/** One ingest request, inside a write batch: idempotency, events, fan-out. */
function ingest(
  db: Database,
  request: IngestRequest,
  ids: IdGenerator,
  subscriptions: SubscriptionIndex,
  batch: {
    /** The batch's statistics: this request's events are added once it has written them all. */
    stats: StatDeltas;
    /** The due hints the batch lowers before its COMMIT. */
    dueBy: Map<string, number>;
    /** The batch's leases at ingest: this request's are kept once it has written them all. */
    handOff: HandOffBatch;
  },
): IngestResult {
  const { dueBy, handOff } = batch;
  const { tenantId, now } = request;
  const mode = request.mode ?? DEFAULT_MODE;
  if (request.idempotency) {
    const first = events.selectIdempotencyKey(db, tenantId, mode, request.idempotency.key, now);
    if (first) {
      if (first.request_hash !== request.idempotency.requestHash) return { kind: "conflict" };
      return { kind: "replayed", events: events.selectEvents(db, JSON.parse(first.event_ids)) };
    }
  }
  const out = [];
  let created = 0;
  const leased: ClaimedDelivery[] = [];
  const fannedOut: { createdAt: number; webhookIds: readonly string[] }[] = [];
  // The rows are written in multi-row statements, events before their deliveries; a lookup of
  // an event's own key first writes what came before it (an earlier event may have taken the key).
  const newEvents: { event: NewEvent; deliveriesCount: number }[] = [];
  const newDeliveries: deliveries.NewDelivery[] = [];
  const write = () => {
    out.push(...events.insertEvents(db, tenantId, mode, newEvents.splice(0)));
    deliveries.insertDeliveries(db, newDeliveries.splice(0));
  };
  for (const [index, event] of request.events.entries()) {
    const key = request.eventKeys?.[index] ?? null;
    if (key) {
      write();
      const first = events.selectIdempotencyKey(db, tenantId, mode, key.key, now);
      if (first) {
        if (first.request_hash !== key.requestHash) throw new IdempotencyConflict();
        out.push(...events.selectEvents(db, JSON.parse(first.event_ids)));
        continue;
      }
    }
    const targets = subscriptions.match(tenantId, mode, event);
    newEvents.push({ event, deliveriesCount: targets.length });
    fannedOut.push({ createdAt: event.createdAt, webhookIds: targets });
    created++;
    for (const webhookId of targets) {
      const id = ids.next("dlv");
      const lease = handOff.lease(webhookId, now);
      newDeliveries.push({
        id,
        tenantId,
        mode,
        eventId: event.id,
        webhookId,
        eventType: event.type,
        now: event.createdAt,
        lease,
      });
      // A leased delivery is next due when its lease ends (the hint may be early, never late).
      const due = lease?.until ?? event.createdAt;
      dueBy.set(webhookId, Math.min(dueBy.get(webhookId) ?? due, due));
      if (lease) {
        leased.push({
          id,
          leaseOwner: lease.owner,
          eventId: event.id,
          eventType: event.type,
          payload: event.payload,
          status: "pending",
          seriesAttempts: 0,
          leaseUntil: lease.until,
          webhook: lease.webhook,
        });
      }
    }
    if (key) events.upsertIdempotencyKey(db, tenantId, mode, key, [event.id]);
  }
  write();
  if (request.idempotency) {
    events.upsertIdempotencyKey(
      db,
      tenantId,
      mode,
      request.idempotency,
      out.map((e) => e.id),
    );
  }
  recordIngest(batch.stats, tenantId, fannedOut, mode); // last: written with the batch (beforeCommit)
  handOff.keep(leased);
  return created === 0 && out.length > 0
    ? { kind: "replayed", events: out }
    : { kind: "accepted", events: out };
}
