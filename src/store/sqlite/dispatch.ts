// SQL for the dispatcher: claiming due deliveries under a lease, settling attempts, releasing
// leases, and the queue's shape for /metrics.
import type { Database } from "bun:sqlite";
import type { DeliveryStatus } from "../../domain/delivery.ts";
import { type RateLog, rateAllowance, recordStarts } from "../../domain/delivery-rate.ts";
import { DEFAULT_MODE, type Mode } from "../../domain/mode.ts";
import { decideHealth, summarizeAttempts } from "../../domain/retry.ts";
import { buildPayload } from "../../domain/signer.ts";
import { effectiveMaxInFlight, leaseEnd } from "../../domain/webhook.ts";
import type { IdGenerator } from "../../runtime/ids.ts";
import { attemptsBySubscription } from "../attempt-outcomes.ts";
import type {
  AttemptResult,
  ClaimedDelivery,
  ClaimRequest,
  DisabledWebhook,
  EventRecord,
  FinalCount,
  HealthPolicy,
  QueueStats,
  SettleOutcome,
} from "../store.ts";
import { addFinal } from "../store.ts";
import { failQueued, insertAttempt, insertDelivery, markDueBy, refreshDue } from "./deliveries.ts";
import {
  type LeasedRow,
  leaseFifoHead,
  raiseDue,
  readRateLog,
  refreshFifoDueOf,
  writeRateLog,
} from "./delivery-controls.ts";
import { insertEvent } from "./events.ts";
import type { SubscriptionIndex } from "./subscriptions.ts";
import { selectWebhook } from "./webhooks.ts";

/**
 * The live leases this process granted, per subscription: granted and not yet settled, released,
 * ended (the subscription was deleted or disabled) or expired. SQLite has one writer process, so
 * this count is exact without a query per claim.
 */
export interface LeaseCounter {
  count(webhookId: string, now: number): number;
  add(deliveryId: string, owner: string, webhookId: string, until: number): void;
  /** The lease `owner` holds on `deliveryId` is over (a stale owner's is not the live one). */
  remove(deliveryId: string, owner: string): void;
  /** Like remove(), answering a function that counts the lease again (a transaction rolled back). */
  take(deliveryId: string, owner: string): () => void;
  /** Every lease of the subscription ended with its queued deliveries. */
  forgetWebhook(webhookId: string): void;
}

interface Lease {
  deliveryId: string;
  owner: string;
  until: number;
}

export function createLeaseCounter(): LeaseCounter {
  const byWebhook = new Map<string, Map<string, Lease>>();
  const webhookOf = new Map<string, string>();
  const drop = (deliveryId: string) => {
    const webhookId = webhookOf.get(deliveryId);
    if (webhookId === undefined) return;
    webhookOf.delete(deliveryId);
    const leases = byWebhook.get(webhookId);
    leases?.delete(deliveryId);
    if (leases?.size === 0) byWebhook.delete(webhookId);
  };
  const add = (deliveryId: string, owner: string, webhookId: string, until: number) => {
    drop(deliveryId);
    webhookOf.set(deliveryId, webhookId);
    const leases = byWebhook.get(webhookId) ?? new Map<string, Lease>();
    leases.set(deliveryId, { deliveryId, owner, until });
    byWebhook.set(webhookId, leases);
  };
  const take = (deliveryId: string, owner: string) => {
    const webhookId = webhookOf.get(deliveryId);
    const lease = webhookId === undefined ? undefined : byWebhook.get(webhookId)?.get(deliveryId);
    if (webhookId === undefined || !lease || lease.owner !== owner) return () => {};
    drop(deliveryId);
    return () => add(deliveryId, owner, webhookId, lease.until);
  };
  return {
    count(webhookId, now) {
      const leases = byWebhook.get(webhookId);
      if (!leases) return 0;
      for (const lease of leases.values()) if (lease.until <= now) drop(lease.deliveryId);
      return byWebhook.get(webhookId)?.size ?? 0;
    },
    add,
    remove(deliveryId, owner) {
      take(deliveryId, owner);
    },
    take,
    forgetWebhook(webhookId) {
      for (const deliveryId of byWebhook.get(webhookId)?.keys() ?? []) webhookOf.delete(deliveryId);
      byWebhook.delete(webhookId);
    },
  };
}

export function claimDue(
  db: Database,
  request: ClaimRequest,
  leases: Pick<LeaseCounter, "count">,
  /**
   * max_in_flight per subscription as last read, forgotten whenever subscriptions change: one at
   * its cap is passed over without reading its row (ingest wakes the dispatcher every turn, while
   * a default subscription's 8 places are taken).
   */
  caps: Map<string, number> = new Map(),
): ClaimedDelivery[] {
  const { now, owner } = request;
  const inFlight = new Map<string, number>();
  const skip = new Set<string>();
  const claimed: ClaimedDelivery[] = [];
  let remaining = request.limit;
  let retriesLeft = request.retryLimit;
  const payloads = new Map<string, string>();
  const payloadOf = db.query<{ payload: string }, [string]>("SELECT payload FROM events WHERE id = ?");
  const candidates = db.query<{ id: string }, [number, string]>(
    `SELECT id FROM webhooks WHERE next_due_at <= ? AND id NOT IN (SELECT value FROM json_each(?))
     ORDER BY next_due_at LIMIT 32`,
  );
  // Leases up to LIMIT due deliveries of one subscription in one statement. Mode: 0 first attempts
  // only, 1 any, 2 retries only.
  const leaseDue = db.query<LeasedRow, [number, string, string, number, number, number]>(
    `UPDATE deliveries SET next_attempt_at = ?1, lease_owner = ?2
     WHERE rowid IN (SELECT rowid FROM deliveries
       WHERE webhook_id = ?3 AND next_attempt_at IS NOT NULL AND next_attempt_at <= ?4
         AND CASE ?5 WHEN 0 THEN status = 'pending' WHEN 2 THEN status = 'retrying' ELSE 1 END
       ORDER BY next_attempt_at LIMIT ?6)
     RETURNING id, status, series_attempts, event_id, event_type`,
  );
  while (remaining > 0) {
    const round = candidates.all(now, JSON.stringify([...skip]));
    if (round.length === 0) break;
    let progressed = false;
    for (const { id: webhookId } of round) {
      if (remaining <= 0) break;
      const cap = caps.get(webhookId);
      if (cap !== undefined && cap - leases.count(webhookId, now) - (inFlight.get(webhookId) ?? 0) <= 0) {
        skip.add(webhookId);
        continue;
      }
      const webhook = selectWebhook(db, webhookId);
      if (webhook) caps.set(webhookId, effectiveMaxInFlight(webhook));
      if (!webhook?.enabled) {
        if (webhook) failQueued(db, webhookId, now);
        refreshDue(db, webhookId);
        skip.add(webhookId);
        continue;
      }
      const spare =
        effectiveMaxInFlight(webhook) - leases.count(webhookId, now) - (inFlight.get(webhookId) ?? 0);
      if (spare <= 0) {
        skip.add(webhookId);
        continue;
      }
      // A rate-limited subscription takes what its window has left; with none left it waits,
      // its hint raised to when some is free (so nothing claims it again before then).
      let room = spare;
      let rateLog: RateLog | null = null;
      if (webhook.rateLimit !== null) {
        rateLog = readRateLog(db, webhookId);
        const allowance = rateAllowance(rateLog, webhook.rateLimit, now);
        if (allowance.freeAt !== null) {
          raiseDue(db, webhookId, allowance.freeAt);
          skip.add(webhookId);
          continue;
        }
        room = Math.min(room, allowance.allowed);
      }
      const take = Math.min(room, remaining);
      const leaseUntil = leaseEnd(now, request.leaseMs, webhook);
      let rows: LeasedRow[];
      if (webhook.ordering === "fifo") {
        // Only its head, and only when nothing of it is in flight; the hint follows the head.
        rows = leaseFifoHead(db, webhookId, now, { until: leaseUntil, owner }, retriesLeft > 0);
      } else {
        // Retries only within what is left of their share; first attempts always.
        rows =
          retriesLeft >= take
            ? leaseDue.all(leaseUntil, owner, webhookId, now, 1, take)
            : leaseDue.all(leaseUntil, owner, webhookId, now, 0, take);
        if (retriesLeft > 0 && retriesLeft < take && rows.length < take) {
          rows = rows.concat(
            leaseDue.all(leaseUntil, owner, webhookId, now, 2, Math.min(retriesLeft, take - rows.length)),
          );
        }
        // next_due_at may be early, never late: while a full take may have left more due, it stays
        // as it is (the next claim that finds fewer refreshes it); a short take drained what was due.
        if (rows.length < take) refreshDue(db, webhookId);
      }
      if (rateLog !== null && webhook.rateLimit !== null && rows.length > 0) {
        const logged = recordStarts(rateLog, now, rows.length);
        writeRateLog(db, webhookId, logged);
        const left = rateAllowance(logged, webhook.rateLimit, now);
        if (left.freeAt !== null) raiseDue(db, webhookId, left.freeAt);
      }
      for (const row of rows) {
        if (row.status === "retrying") retriesLeft--;
        // A payload read once per event in a claim (an event's deliveries to several subscriptions
        // share it), by its primary key: cheaper than one IN (json_each) query per subscription.
        let payload = payloads.get(row.event_id);
        if (payload === undefined) {
          payload = payloadOf.get(row.event_id)?.payload ?? "{}";
          payloads.set(row.event_id, payload);
        }
        claimed.push({
          id: row.id,
          leaseOwner: owner,
          eventId: row.event_id,
          eventType: row.event_type,
          payload,
          status: row.status as DeliveryStatus,
          seriesAttempts: row.series_attempts,
          leaseUntil,
          webhook,
        });
      }
      const taken = rows.length;
      inFlight.set(webhookId, (inFlight.get(webhookId) ?? 0) + taken);
      remaining -= taken;
      if (taken > 0) progressed = true;
      // Nothing more to take from it in this claim: at its cap or rate, drained, or only retries left.
      if (taken === 0 || taken >= room) skip.add(webhookId);
    }
    if (!progressed) break;
  }
  return claimed;
}

const SETTLE_SQL: Record<string, string> = {
  succeed: "'success', next_attempt_at = NULL",
  retry: "'retrying', next_attempt_at = ?",
  fail: "'failed', next_attempt_at = NULL",
  exhaust: "'exhausted', next_attempt_at = NULL",
};
const FINAL_OF: Record<string, DeliveryStatus> = { succeed: "success", fail: "failed", exhaust: "exhausted" };

export function settle(
  db: Database,
  results: readonly AttemptResult[],
  now: number,
  health: HealthPolicy,
  deps: { ids: IdGenerator; subscriptions: SubscriptionIndex; newEventId: () => string },
): SettleOutcome & { recorded: AttemptResult[] } {
  const applied: boolean[] = [];
  const disabled: DisabledWebhook[] = [];
  const finals: FinalCount[] = [];
  const settledWebhooks = new Set<string>();

  const fresh: AttemptResult[] = [];
  for (const result of results) {
    const { attempt, settlement } = result;
    // The same settlement again (a caller that did not hear the first answer): applied already.
    if (!insertAttempt(db, { ...attempt, deliveryId: result.deliveryId })) {
      applied.push(true);
      continue;
    }
    fresh.push(result);
    const params: (string | number | null)[] = [];
    if (settlement.action === "retry") params.push(settlement.at);
    const changed = db
      .query(
        `UPDATE deliveries SET status = ${SETTLE_SQL[settlement.action]}, lease_owner = NULL,
           attempts = attempts + 1, series_attempts = series_attempts + 1, response_status_code = ?,
           last_attempt_at = ?, signature = coalesce(?, signature), updated_at = ?
         WHERE id = ? AND lease_owner = ? AND status IN ('pending', 'retrying')`,
      )
      .run(
        ...params,
        attempt.responseStatusCode,
        attempt.startedAt,
        result.signature,
        now,
        result.deliveryId,
        result.leaseOwner,
      ).changes;
    applied.push(changed > 0);
    if (changed > 0) {
      settledWebhooks.add(result.webhookId);
      if (settlement.action === "retry") markDueBy(db, result.webhookId, settlement.at);
      const final = FINAL_OF[settlement.action];
      if (final) addFinal(finals, final, result.mode ?? DEFAULT_MODE);
    }
  }

  // A FIFO subscription's next head may go now (or its head retries later): its hint follows.
  refreshFifoDueOf(db, settledWebhooks, now);

  // The subscription's health follows every attempt, applied or not: it reflects the endpoint.
  // Counted once per subscription for the batch, then decided by the domain rule.
  const recordHealth = db.query<
    { consecutive_failures: number; health_since: number; enabled: number },
    [number | null, number, number | null, string]
  >(
    `UPDATE webhooks SET consecutive_failures = CASE WHEN ?1 IS NULL THEN consecutive_failures + ?2 ELSE ?2 END,
       health_since = coalesce(?3, health_since) WHERE id = ?4
     RETURNING consecutive_failures, health_since, enabled`,
  );
  for (const [webhookId, outcomes] of attemptsBySubscription(fresh)) {
    const summary = summarizeAttempts(outcomes);
    const row = recordHealth.get(summary.resetAt, summary.failuresAfter, summary.resetAt, webhookId);
    if (!row) continue;
    const decision = decideHealth({
      enabled: row.enabled === 1,
      gone: summary.gone,
      consecutiveFailures: row.consecutive_failures,
      healthSince: row.health_since,
      now,
      disableAfterFailures: health.disableAfterFailures,
      disableAfterMs: health.disableAfterMs,
    });
    if (decision.action !== "disable") continue;
    const outcome = disableWebhook(db, webhookId, decision.reason, now, deps);
    if (outcome) {
      disabled.push(outcome.disabled);
      addFinal(finals, "failed", outcome.mode, outcome.failedDeliveries);
    }
  }
  // `recorded`: the results whose attempts this call recorded (a repeated one counts nowhere again).
  return { applied, disabled, finals, recorded: fresh };
}

/** Disables a subscription, fails its queued deliveries, and publishes `webhook.disabled`. */
function disableWebhook(
  db: Database,
  webhookId: string,
  reason: "failing" | "gone",
  now: number,
  deps: { ids: IdGenerator; subscriptions: SubscriptionIndex; newEventId: () => string },
): { disabled: DisabledWebhook; mode: Mode; failedDeliveries: number } | null {
  const row = db
    .query<{ tenant_id: string; mode: Mode; url: string }, [string, number, string]>(
      `UPDATE webhooks SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ? AND enabled = 1
       RETURNING tenant_id, mode, url`,
    )
    .get(reason, now, webhookId);
  if (!row) return null;
  deps.subscriptions.invalidate();
  const failedDeliveries = failQueued(db, webhookId, now);
  refreshDue(db, webhookId);
  const eventId = deps.newEventId();
  const data = { webhook_id: webhookId, url: row.url, reason };
  const payload = buildPayload({
    id: eventId,
    type: "webhook.disabled",
    createdAt: now,
    mode: row.mode,
    accountId: null,
    dataJson: JSON.stringify(data),
  });
  const event = publishInternal(
    db,
    row.tenant_id,
    row.mode,
    { id: eventId, type: "webhook.disabled", payload, now },
    deps,
  );
  return {
    disabled: { webhookId, tenantId: row.tenant_id, url: row.url, reason, event },
    mode: row.mode,
    failedDeliveries,
  };
}

function publishInternal(
  db: Database,
  tenantId: string,
  mode: Mode,
  event: { id: string; type: string; payload: string; now: number },
  deps: { ids: IdGenerator; subscriptions: SubscriptionIndex },
): EventRecord {
  const targets = deps.subscriptions.match(tenantId, mode, { ...event, accountId: null });
  const record = insertEvent(
    db,
    tenantId,
    mode,
    { id: event.id, type: event.type, accountId: null, payload: event.payload, createdAt: event.now },
    targets.length,
  );
  for (const webhookId of targets) {
    insertDelivery(db, {
      id: deps.ids.next("dlv"),
      tenantId,
      mode,
      eventId: event.id,
      webhookId,
      eventType: event.type,
      now: event.now,
    });
    markDueBy(db, webhookId, event.now);
  }
  return record;
}

export function releaseLeases(
  db: Database,
  leases: readonly { deliveryId: string; leaseOwner: string }[],
  now: number,
): number {
  let released = 0;
  const release = db.query<{ webhook_id: string }, [number, string, string]>(
    `UPDATE deliveries SET next_attempt_at = ?, lease_owner = NULL
     WHERE id = ? AND lease_owner = ? AND status IN ('pending', 'retrying') RETURNING webhook_id`,
  );
  for (const lease of leases) {
    const row = release.get(now, lease.deliveryId, lease.leaseOwner);
    if (row) {
      markDueBy(db, row.webhook_id, now);
      released++;
    }
  }
  return released;
}

export function nextDueAt(db: Database, exclude: readonly string[]): number | null {
  const row = db
    .query<{ at: number | null }, [string]>(
      "SELECT min(next_due_at) AS at FROM webhooks WHERE next_due_at IS NOT NULL AND id NOT IN (SELECT value FROM json_each(?))",
    )
    .get(JSON.stringify(exclude));
  return row?.at ?? null;
}

export function queueStats(db: Database): QueueStats {
  const depth =
    db
      .query<{ n: number }, []>("SELECT count(*) AS n FROM deliveries WHERE next_attempt_at IS NOT NULL")
      .get()?.n ?? 0;
  const oldest = db
    .query<{ at: number | null }, []>(
      `SELECT min((SELECT min(d.next_attempt_at) FROM deliveries d
         WHERE d.webhook_id = w.id AND d.next_attempt_at IS NOT NULL)) AS at
       FROM webhooks w WHERE w.next_due_at IS NOT NULL`,
    )
    .get();
  return { depth, oldestDueAt: oldest?.at ?? null };
}

export function sweepRetention(db: Database, before: number, limit: number): number {
  const ids = db
    .query<{ id: string }, [number, number]>(
      "SELECT id FROM deliveries WHERE created_at < ? AND next_attempt_at IS NULL ORDER BY created_at LIMIT ?",
    )
    .all(before, limit)
    .map((row) => row.id);
  const json = JSON.stringify(ids);
  let removed = 0;
  if (ids.length > 0) {
    removed += db
      .query("DELETE FROM attempts WHERE delivery_id IN (SELECT value FROM json_each(?))")
      .run(json).changes;
    removed += db
      .query("DELETE FROM deliveries WHERE id IN (SELECT value FROM json_each(?))")
      .run(json).changes;
  }
  removed += db
    .query(
      `DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.created_at < ?
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) ORDER BY e.created_at LIMIT ?)`,
    )
    .run(before, limit).changes;
  return removed;
}
