// SQL for the dispatcher on PostgreSQL, where any number of instances claim from one queue:
// - a claim locks the subscriptions it serves with FOR UPDATE SKIP LOCKED (instances spread over
//   different subscriptions instead of queueing behind each other), leases due deliveries with
//   FOR UPDATE SKIP LOCKED and re-checks the due condition on the locked rows;
// - each subscription's in_flight counts its leased deliveries for all instances together: claims
//   add the fresh leases they grant (a claim holds the row lock, so the count is exact), settles
//   and releases take theirs back, ended deliveries take theirs back, the reaper recounts;
// - leases and due times are in the database's time (time.ts).
import type { DeliveryStatus } from "../../domain/delivery.ts";
import { decideHealth, summarizeAttempts } from "../../domain/retry.ts";
import { buildPayload } from "../../domain/signer.ts";
import type { IdGenerator } from "../../runtime/ids.ts";
import { attemptsBySubscription } from "../attempt-outcomes.ts";
import type {
  AttemptResult,
  ClaimedDelivery,
  ClaimRequest,
  DisabledWebhook,
  EventRecord,
  HealthPolicy,
  QueueStats,
} from "../store.ts";
import type { PgClient, Query } from "./client.ts";
import {
  endQueued,
  insertAttempts,
  insertDeliveries,
  lockDueShared,
  lowerDue,
  markDueBy,
  refreshDue,
} from "./deliveries.ts";
import { insertEvents } from "./events.ts";
import type { Fanout } from "./fanout.ts";
import { num, numOrNull } from "./keyset.ts";
import type { DbTime } from "./time.ts";
import { toWebhook, WEBHOOK_SELECT, type WebhookRow } from "./webhooks.ts";

/** Extra lease time beyond a subscription's timeout, so a live attempt never outlasts its lease. */
const LEASE_MARGIN_MS = 5_000;
/** The channel that says "work may be due", one per schema (a channel name is at most 63 bytes). */
const WORK_CHANNEL_SQL = "'hookd_' || md5(current_setting('search_path'))";
export const NOTIFY_WORK = `SELECT pg_notify(${WORK_CHANNEL_SQL}, '')`;
export const WORK_CHANNEL_NAME = `SELECT ${WORK_CHANNEL_SQL} AS channel`;

type CandidateRow = WebhookRow & { in_flight: number; lease_check_at: string | number };
/** lease_check_at when no lease is held: no lease can end before it. */
const NO_LEASE = "9007199254740991";

interface LeasedRow {
  id: string;
  status: string;
  series_attempts: number;
  event_id: string;
  event_type: string;
  fresh: boolean;
}

// Leases up to $3 due deliveries of one subscription, of which at most $4 not leased before (the
// rest were under leases that ended). $7: 'any', 'pending' (first attempts only) or 'retrying';
// $8: only deliveries whose lease ended.
const LEASE_DUE = `WITH picked AS (
    SELECT id, next_attempt_at, lease_owner IS NULL AS fresh FROM deliveries
    WHERE webhook_id = $1 AND status IN ('pending', 'retrying') AND next_attempt_at <= $2
      AND (lease_owner IS NULL OR leased_until <= $2)
      AND ($7 = 'any' OR status = $7) AND (NOT $8::boolean OR lease_owner IS NOT NULL)
    ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED),
  ranked AS (
    SELECT id, fresh, sum(fresh::int) OVER (ORDER BY next_attempt_at, id) AS nfresh FROM picked),
  chosen AS (SELECT id, fresh FROM ranked WHERE NOT fresh OR nfresh <= $4)
  UPDATE deliveries d SET lease_owner = $5, leased_until = $6
  FROM chosen c
  WHERE d.id = c.id AND d.status IN ('pending', 'retrying') AND d.next_attempt_at <= $2
    AND (d.lease_owner IS NULL OR d.leased_until <= $2)
  RETURNING d.id, d.status, d.series_attempts, d.event_id, d.event_type, c.fresh`;

export async function claimDue(q: Query, time: DbTime, request: ClaimRequest): Promise<ClaimedDelivery[]> {
  const { now, owner } = request;
  const dbNow = time.toDb(now);
  const skip: string[] = [];
  const claimed: ClaimedDelivery[] = [];
  let remaining = request.limit;
  let retriesLeft = request.retryLimit;
  const payloads = new Map<string, string>();
  while (remaining > 0) {
    const round = await q<CandidateRow>(
      `${WEBHOOK_SELECT.replace("w.updated_at,", "w.updated_at, w.in_flight, w.lease_check_at,")}
       WHERE w.next_due_at <= $1 AND NOT (w.id = ANY($2::text[]))
       ORDER BY w.next_due_at LIMIT 32 FOR UPDATE OF w SKIP LOCKED`,
      [dbNow, skip],
    );
    if (round.length === 0) break;
    let progressed = false;
    for (const row of round) {
      skip.push(row.id);
      if (remaining <= 0) break;
      const webhook = toWebhook(row);
      if (!webhook.enabled) {
        await endQueued(q, webhook.id, "failed", now);
        await refreshDue(q, webhook.id, dbNow);
        continue;
      }
      const inFlight = row.in_flight;
      const spare = Math.max(0, webhook.maxInFlight - inFlight);
      // Room for fresh leases, plus the leases that may have ended (taken over at no new cost).
      // With no room, only ended leases can be taken, and only once one may have ended.
      const mayHaveEnded = inFlight > 0 && num(row.lease_check_at) <= dbNow;
      const take = Math.min(remaining, spare > 0 ? spare + inFlight : mayHaveEnded ? inFlight : 0);
      if (take <= 0) continue;
      const leaseUntil = dbNow + Math.max(request.leaseMs, webhook.timeoutSeconds * 1000 + LEASE_MARGIN_MS);
      const onlyEnded = spare === 0;
      const lease = (limit: number, mode: string, freshAllowed: number) =>
        q<LeasedRow>(LEASE_DUE, [webhook.id, dbNow, limit, freshAllowed, owner, leaseUntil, mode, onlyEnded]);
      // Retries only within what is left of their share; first attempts always.
      let rows = retriesLeft >= take ? await lease(take, "any", spare) : await lease(take, "pending", spare);
      if (retriesLeft > 0 && retriesLeft < take && rows.length < take) {
        const freshLeft = spare - rows.filter((r) => r.fresh).length;
        rows = rows.concat(await lease(Math.min(retriesLeft, take - rows.length), "retrying", freshLeft));
      }
      const missing = [...new Set(rows.map((r) => r.event_id))].filter((id) => !payloads.has(id));
      if (missing.length > 0) {
        const events = await q<{ id: string; payload: string }>(
          "SELECT id, payload FROM events WHERE id = ANY($1::text[])",
          [missing],
        );
        for (const event of events) payloads.set(event.id, event.payload);
      }
      let fresh = 0;
      for (const r of rows) {
        if (r.status === "retrying") retriesLeft--;
        if (r.fresh) fresh++;
        claimed.push({
          id: r.id,
          leaseOwner: owner,
          eventId: r.event_id,
          eventType: r.event_type,
          payload: payloads.get(r.event_id) ?? "{}",
          status: r.status as DeliveryStatus,
          seriesAttempts: r.series_attempts,
          leaseUntil: time.fromDb(leaseUntil),
          webhook,
        });
      }
      if (spare === 0) {
        // Every place is held: the earliest lease end from the rows themselves (a scan of this
        // subscription's queued rows, at most once per lease length while it stays saturated).
        await q(
          `UPDATE webhooks SET in_flight = in_flight + $1, lease_check_at = coalesce((SELECT min(leased_until)
             FROM deliveries WHERE webhook_id = $2 AND status IN ('pending', 'retrying') AND lease_owner IS NOT NULL),
             ${NO_LEASE}) WHERE id = $2`,
          [fresh, webhook.id],
        );
      } else if (rows.length > 0) {
        await q(
          "UPDATE webhooks SET in_flight = in_flight + $1, lease_check_at = least(lease_check_at, $2) WHERE id = $3",
          [fresh, leaseUntil, webhook.id],
        );
      }
      // next_due_at may be early, never late: a short take drained what was due now.
      if (rows.length < take) await refreshDue(q, webhook.id, dbNow);
      remaining -= rows.length;
      if (rows.length > 0) progressed = true;
    }
    if (!progressed) break;
  }
  return claimed;
}

const SETTLE_STATUS: Record<string, string> = {
  succeed: "success",
  retry: "retrying",
  fail: "failed",
  exhaust: "exhausted",
};
const FINAL_OF: Record<string, DeliveryStatus> = { succeed: "success", fail: "failed", exhaust: "exhausted" };

/** Records the attempts and applies the settlements (by their lease owners) in one transaction. */
export async function settleAttempts(
  q: Query,
  time: DbTime,
  results: readonly AttemptResult[],
  now: number,
  health: HealthPolicy,
): Promise<{
  applied: boolean[];
  finals: Partial<Record<DeliveryStatus, number>>;
  disable: { webhookId: string; reason: "failing" | "gone" }[];
}> {
  const recorded = await insertAttempts(
    q,
    results.map((r) => ({ ...r.attempt, deliveryId: r.deliveryId })),
  );
  // A result whose attempt is already recorded was settled by an earlier try of this batch.
  const fresh = results.filter((r) => recorded.has(r.attempt.id));
  const updated = await q<{ id: string; webhook_id: string; retry_at: string | number | null }>(
    `UPDATE deliveries d SET status = u.status, next_attempt_at = u.retry_at, lease_owner = NULL, leased_until = NULL,
       attempts = d.attempts + 1, series_attempts = d.series_attempts + 1, response_status_code = u.code,
       last_attempt_at = u.started, signature = coalesce(u.signature, d.signature), updated_at = $1
     FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::int[], $7::bigint[], $8::text[])
       AS u(id, owner, status, retry_at, code, started, signature)
     WHERE d.id = u.id AND d.lease_owner = u.owner AND d.status IN ('pending', 'retrying')
     RETURNING d.id, d.webhook_id, u.retry_at`,
    [
      now,
      fresh.map((r) => r.deliveryId),
      fresh.map((r) => r.leaseOwner),
      fresh.map((r) => SETTLE_STATUS[r.settlement.action]),
      fresh.map((r) => (r.settlement.action === "retry" ? time.toDb(r.settlement.at) : null)),
      fresh.map((r) => r.attempt.responseStatusCode),
      fresh.map((r) => r.attempt.startedAt),
      fresh.map((r) => r.signature),
    ],
  );
  const appliedIds = new Set(updated.map((row) => row.id));
  // Applied: by this try, or (attempt already recorded) by the earlier one whose answer was lost.
  const applied = results.map((r) => appliedIds.has(r.deliveryId) || !recorded.has(r.attempt.id));
  const finals: Partial<Record<DeliveryStatus, number>> = {};
  for (const r of fresh) {
    const final = FINAL_OF[r.settlement.action];
    if (appliedIds.has(r.deliveryId) && final) finals[final] = (finals[final] ?? 0) + 1;
  }
  const freed = new Map<string, number>();
  const due = new Map<string, number>();
  for (const row of updated) {
    freed.set(row.webhook_id, (freed.get(row.webhook_id) ?? 0) + 1);
    const at = numOrNull(row.retry_at);
    if (at !== null) due.set(row.webhook_id, Math.min(due.get(row.webhook_id) ?? at, at));
  }

  // Health follows every attempt, applied or not (it reflects the endpoint), counted relatively so
  // settlers on other instances never lose a count; then the domain rule decides.
  const disable: { webhookId: string; reason: "failing" | "gone" }[] = [];
  for (const [webhookId, outcomes] of attemptsBySubscription(fresh)) {
    const summary = summarizeAttempts(outcomes);
    const [row] = await q<{ consecutive_failures: number; health_since: string | number; enabled: boolean }>(
      `UPDATE webhooks SET in_flight = greatest(0, in_flight - $1),
         consecutive_failures = CASE WHEN $2::bigint IS NULL THEN consecutive_failures + $3 ELSE $3 END,
         health_since = coalesce($2::bigint, health_since)
       WHERE id = $4 RETURNING consecutive_failures, health_since, enabled`,
      [freed.get(webhookId) ?? 0, summary.resetAt, summary.failuresAfter, webhookId],
    );
    if (!row) continue;
    const decision = decideHealth({
      enabled: row.enabled,
      gone: summary.gone,
      consecutiveFailures: row.consecutive_failures,
      healthSince: num(row.health_since),
      now,
      disableAfterFailures: health.disableAfterFailures,
      disableAfterMs: health.disableAfterMs,
    });
    if (decision.action === "disable") disable.push({ webhookId, reason: decision.reason });
  }
  await markDueBy(q, due);
  return { applied, finals, disable };
}

/**
 * Disables a subscription (unless another settle already did), fails its queued deliveries and
 * publishes `webhook.disabled`. The caller's transaction holds the fan-out lock (lockFanoutForChange).
 */
export async function disableWebhook(
  q: Query,
  time: DbTime,
  webhookId: string,
  reason: "failing" | "gone",
  now: number,
  deps: { ids: IdGenerator; fanout: Fanout; newEventId: () => string },
): Promise<{ disabled: DisabledWebhook; failedDeliveries: number } | null> {
  const [row] = await q<{ tenant_id: string; url: string }>(
    `UPDATE webhooks SET enabled = false, disabled_reason = $1, updated_at = $2 WHERE id = $3 AND enabled
     RETURNING tenant_id, url`,
    [reason, now, webhookId],
  );
  if (!row) return null;
  const failedDeliveries = await endQueued(q, webhookId, "failed", now);
  await refreshDue(q, webhookId, time.toDb(now));
  const eventId = deps.newEventId();
  const data = { webhook_id: webhookId, url: row.url, reason };
  const payload = buildPayload({
    id: eventId,
    type: "webhook.disabled",
    createdAt: now,
    accountId: null,
    dataJson: JSON.stringify(data),
  });
  const event = await publishInternal(
    q,
    time,
    row.tenant_id,
    { id: eventId, type: "webhook.disabled", payload, now },
    deps,
  );
  return { disabled: { webhookId, tenantId: row.tenant_id, url: row.url, reason, event }, failedDeliveries };
}

async function publishInternal(
  q: Query,
  time: DbTime,
  tenantId: string,
  event: { id: string; type: string; payload: string; now: number },
  deps: { ids: IdGenerator; fanout: Fanout },
): Promise<EventRecord> {
  // The fan-out lock is already held exclusively here; the cache is refreshed against the version.
  await deps.fanout.begin(q);
  const targets = await deps.fanout.match(q, tenantId, event.type, null);
  const [record] = await insertEvents(q, tenantId, [
    {
      event: {
        id: event.id,
        type: event.type,
        accountId: null,
        payload: event.payload,
        createdAt: event.now,
      },
      deliveriesCount: targets.length,
    },
  ]);
  await insertDeliveries(
    q,
    time,
    tenantId,
    targets.map((webhookId) => ({
      id: deps.ids.next("dlv"),
      eventId: event.id,
      webhookId,
      eventType: event.type,
      now: event.now,
    })),
  );
  await lowerDue(
    q,
    new Map(targets.map((id) => [id, time.toDb(event.now)])),
    targets.length > 0 ? NOTIFY_WORK : null,
  );
  return record as EventRecord;
}

export async function releaseLeases(
  q: Query,
  time: DbTime,
  leases: readonly { deliveryId: string; leaseOwner: string }[],
  now: number,
): Promise<number> {
  if (leases.length === 0) return 0;
  const dbNow = time.toDb(now);
  const rows = await q<{ webhook_id: string }>(
    `UPDATE deliveries d SET next_attempt_at = $1, lease_owner = NULL, leased_until = NULL
     FROM unnest($2::text[], $3::text[]) AS u(id, owner)
     WHERE d.id = u.id AND d.lease_owner = u.owner AND d.status IN ('pending', 'retrying')
     RETURNING d.webhook_id`,
    [dbNow, leases.map((l) => l.deliveryId), leases.map((l) => l.leaseOwner)],
  );
  if (rows.length === 0) return 0;
  const freed = new Map<string, number>();
  for (const row of rows) freed.set(row.webhook_id, (freed.get(row.webhook_id) ?? 0) + 1);
  const ids = [...freed.keys()].sort();
  await lockDueShared(q, ids);
  // The places given back and the hints lowered (deliveries.ts: after the due locks) in one statement.
  await q(
    `WITH freed AS (
       UPDATE webhooks w SET in_flight = greatest(0, w.in_flight - u.n),
         next_due_at = CASE WHEN w.next_due_at IS NULL OR w.next_due_at > $3 THEN $3 ELSE w.next_due_at END
       FROM unnest($1::text[], $2::int[]) AS u(id, n) WHERE w.id = u.id RETURNING 1)
     ${NOTIFY_WORK}`,
    [ids, ids.map((id) => freed.get(id)), dbNow],
  );
  return rows.length;
}

export async function nextDueAt(q: Query, time: DbTime, exclude: readonly string[]): Promise<number | null> {
  const [row] = await q<{ at: string | number | null }>(
    "SELECT min(next_due_at) AS at FROM webhooks WHERE next_due_at IS NOT NULL AND NOT (id = ANY($1::text[]))",
    [exclude],
  );
  return time.fromDbOrNull(numOrNull(row?.at ?? null));
}

export async function queueStats(q: Query, time: DbTime): Promise<QueueStats> {
  const [row] = await q<{ depth: number; oldest: string | number | null }>(
    `SELECT count(*)::int AS depth,
       min(CASE WHEN lease_owner IS NOT NULL THEN leased_until ELSE next_attempt_at END) AS oldest
     FROM deliveries WHERE status IN ('pending', 'retrying')`,
  );
  return { depth: row?.depth ?? 0, oldestDueAt: time.fromDbOrNull(numOrNull(row?.oldest ?? null)) };
}

export async function sweepRetention(q: Query, before: number, limit: number): Promise<number> {
  const [row] = await q<{ n: number }>(
    `WITH old AS (
       SELECT id FROM deliveries WHERE created_at < $1 AND status NOT IN ('pending', 'retrying')
       ORDER BY created_at LIMIT $2),
     gone_attempts AS (DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM old) RETURNING 1),
     gone_deliveries AS (DELETE FROM deliveries WHERE id IN (SELECT id FROM old) RETURNING 1)
     SELECT ((SELECT count(*) FROM gone_attempts) + (SELECT count(*) FROM gone_deliveries))::int AS n`,
    [before, limit],
  );
  const [events] = await q<{ n: number }>(
    `WITH gone AS (DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.created_at < $1
       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) ORDER BY e.created_at LIMIT $2) RETURNING 1)
     SELECT count(*)::int AS n FROM gone`,
    [before, limit],
  );
  return (row?.n ?? 0) + (events?.n ?? 0);
}

/**
 * The reaper: each subscription's in_flight recounted from its leased deliveries. The rows are
 * locked first and counted by a later statement, so the count sees every claim that committed
 * before the lock (claims of the same subscription wait behind it, settles apply after it).
 */
export async function reconcileInFlight(client: PgClient): Promise<number> {
  return client.tx(async (q) => {
    const locked = await q<{ id: string }>(
      "SELECT id FROM webhooks WHERE in_flight > 0 ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED",
    );
    if (locked.length === 0) return 0;
    const rows = await q<{ id: string }>(
      `UPDATE webhooks w SET in_flight = c.n
       FROM (SELECT l.id, (SELECT count(*) FROM deliveries d WHERE d.webhook_id = l.id
               AND d.status IN ('pending', 'retrying') AND d.lease_owner IS NOT NULL)::int AS n
             FROM unnest($1::text[]) AS l(id)) c
       WHERE w.id = c.id AND w.in_flight <> c.n RETURNING w.id`,
      [locked.map((row) => row.id)],
    );
    return rows.length;
  });
}
