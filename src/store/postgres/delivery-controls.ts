// The claim of a FIFO or rate-limited subscription on PostgreSQL (SPEC §3 "Order", "Rate limit",
// §6), exact across instances: one transaction holds the subscription's row lock (FOR UPDATE SKIP
// LOCKED, so its claimers are serialised and another instance passes it by), chooses the FIFO head
// or the window's allowance under it, and writes the leases, in_flight and the rate log before it
// commits. The one-statement claim (dispatch.ts) hands these subscriptions over untouched; the
// unordered ones never come here.
import type { DeliveryStatus } from "../../domain/delivery.ts";
import { parseRateLog, rateAllowance, recordStarts } from "../../domain/delivery-rate.ts";
import { effectiveMaxInFlight } from "../../domain/webhook.ts";
import type { ClaimedDelivery } from "../store.ts";
import type { Query } from "./client.ts";
import { DUE_LOCK_TRY, recomputeDue } from "./deliveries.ts";
import { num, numOrNull } from "./keyset.ts";
import type { DbTime } from "./time.ts";
import { toWebhook, WEBHOOK_SELECT, type WebhookRow } from "./webhooks.ts";

/** lease_check_at when no lease is held (as dispatch.ts). */
const NO_LEASE = "9007199254740991";
const QUEUED = "status IN ('pending', 'retrying')";

type ControlledRow = WebhookRow & {
  in_flight: number;
  lease_check_at: string | number;
  rate_log: string | null;
};

interface LeasedRow {
  id: string;
  status: string;
  series_attempts: number;
  event_id: string;
  event_type: string;
  fresh: boolean;
}

// Up to $3 due deliveries of one subscription, fresh ones or ones under leases that ended, oldest
// first, leased to $4 until $5. $6: 'any', 'pending' (first attempts only) or 'retrying'.
const LEASE_DUE = `WITH picked AS (
    SELECT id, lease_owner IS NULL AS fresh FROM deliveries
    WHERE webhook_id = $1 AND ${QUEUED} AND next_attempt_at <= $2
      AND (lease_owner IS NULL OR leased_until <= $2) AND ($6 = 'any' OR status = $6)
    ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
  UPDATE deliveries d SET lease_owner = $4, leased_until = $5
  FROM picked c
  WHERE d.id = c.id AND d.${QUEUED} AND d.next_attempt_at <= $2
    AND (d.lease_owner IS NULL OR d.leased_until <= $2)
  RETURNING d.id, d.status, d.series_attempts, d.event_id, d.event_type, c.fresh`;

/**
 * A subscription's leased rows counted under its row lock (so no claim adds to them meanwhile):
 * all of them, the live ones (by the database's `now`), and the first live one's end (null: none).
 */
async function countLeases(
  q: Query,
  webhookId: string,
  dbNow: number,
): Promise<{ leased: number; live: number; liveEnd: number | null }> {
  const [row] = await q<{ leased: number; live: number; live_end: string | number | null }>(
    `SELECT count(*)::int AS leased, (count(*) FILTER (WHERE leased_until > $2))::int AS live,
       min(leased_until) FILTER (WHERE leased_until > $2) AS live_end
     FROM deliveries WHERE webhook_id = $1 AND ${QUEUED} AND lease_owner IS NOT NULL`,
    [webhookId, dbNow],
  );
  return { leased: row?.leased ?? 0, live: row?.live ?? 0, liveEnd: numOrNull(row?.live_end ?? null) };
}

/**
 * The FIFO head (the oldest queued delivery, creation order, ties by event id), locked, and leased
 * when due ($4 now) and, for a retry, when $5 allows; its webhook's in_flight (+1 when it held no
 * lease), lease_check_at and hint set to the lease's end ($3), and its rate log to $6 (null: kept).
 * One row, the head's due time with the lease's columns (null when not leased); none when nothing
 * is queued.
 */
const FIFO_LEASE = `WITH head AS (
    SELECT id, next_attempt_at, status, lease_owner IS NULL AS fresh FROM deliveries
    WHERE webhook_id = $1 AND ${QUEUED} ORDER BY created_at, event_id LIMIT 1 FOR UPDATE),
  leased AS (
    UPDATE deliveries d SET lease_owner = $2, leased_until = $3 FROM head h
    WHERE d.id = h.id AND h.next_attempt_at <= $4 AND ($5::boolean OR h.status = 'pending')
    RETURNING d.id, d.status, d.series_attempts, d.event_id, d.event_type, h.fresh),
  bumped AS (
    UPDATE webhooks w SET in_flight = w.in_flight + (SELECT count(*) FROM leased WHERE fresh)::int,
      lease_check_at = $3, next_due_at = $3, rate_log = coalesce($6, w.rate_log)
    WHERE w.id = $1 AND EXISTS (SELECT 1 FROM leased) RETURNING 1)
  SELECT h.next_attempt_at AS head_at, l.id, l.status, l.series_attempts, l.event_id, l.event_type,
    e.payload, (SELECT count(*) FROM bumped)::int AS bumped
  FROM head h LEFT JOIN leased l ON true LEFT JOIN events e ON e.id = l.event_id`;

export interface ControlledClaim {
  dbNow: number;
  owner: string;
  leaseMs: number;
  leaseMarginMs: number;
  limit: number;
  retriesLeft: number;
}

/**
 * Claims what a FIFO or rate-limited subscription may start now, inside the caller's transaction.
 * Answers nothing when another claimer holds it, it is no longer due, or its rules allow nothing;
 * its hint is then left where its next claim can go (never later than that).
 */
export async function claimControlled(
  q: Query,
  time: DbTime,
  webhookId: string,
  claim: ControlledClaim,
): Promise<ClaimedDelivery[]> {
  const { dbNow } = claim;
  // The row lock, then (outside it, so a row passed over takes nothing) the due lock (deliveries.ts):
  // without the due lock, a hint may be lowered but not raised past a writer's.
  const [row] = await q<ControlledRow & { due_locked: boolean }>(
    `SELECT x.*, ${DUE_LOCK_TRY("x.id")} AS due_locked FROM (
       ${WEBHOOK_SELECT.replace("w.updated_at,", "w.updated_at, w.in_flight, w.lease_check_at, w.rate_log,")}
       WHERE w.id = $1 AND w.next_due_at <= $2 AND w.enabled FOR UPDATE OF w SKIP LOCKED) x`,
    [webhookId, dbNow],
  );
  if (!row) return [];
  const webhook = toWebhook(row);
  const dueLocked = row.due_locked === true;

  const log = parseRateLog(row.rate_log);
  let room = claim.limit;
  if (webhook.rateLimit !== null) {
    const allowance = rateAllowance(log, webhook.rateLimit, dbNow);
    // Nothing of it may start before freeAt, whoever writes meanwhile: the raise needs no due lock.
    if (allowance.freeAt !== null) {
      await raiseHint(q, webhookId, allowance.freeAt);
      return [];
    }
    room = Math.min(room, allowance.allowed);
  }
  const leaseUntil = dbNow + Math.max(claim.leaseMs, webhook.timeoutSeconds * 1000 + claim.leaseMarginMs);
  let inFlight = row.in_flight;
  let leaseCheckAt = num(row.lease_check_at);
  let rows: LeasedRow[];

  if (webhook.ordering === "fifo") {
    if (inFlight > 0 && leaseCheckAt > dbNow) {
      // A live lease: nothing else may go until it ends or is settled (which lowers the hint).
      await raiseHint(q, webhookId, leaseCheckAt);
      return [];
    }
    if (inFlight > 0) {
      // A lease may have ended (its process died): count them from the rows, under the row lock.
      const count = await countLeases(q, webhookId, dbNow);
      inFlight = count.leased;
      leaseCheckAt = count.liveEnd ?? Number(NO_LEASE);
      await q("UPDATE webhooks SET in_flight = $2, lease_check_at = $3 WHERE id = $1", [
        webhookId,
        inFlight,
        leaseCheckAt,
      ]);
      if (count.liveEnd !== null) {
        await raiseHint(q, webhookId, leaseCheckAt);
        return [];
      }
    }
    // The head, leased when it is due (and, for a retry, when the claim may take one), with
    // in_flight, the hint and the rate log written in the same statement. No lease is live now, so
    // this one ends first and nothing else of it may go before it ends or is settled (which lowers
    // the hint): the hint may be raised to its end without the due lock.
    const logged = webhook.rateLimit === null ? null : recordStarts(log, dbNow, 1);
    const found = await q<LeasedRow & { head_at: string | number; payload: string | null }>(FIFO_LEASE, [
      webhookId,
      claim.owner,
      leaseUntil,
      dbNow,
      claim.retriesLeft > 0,
      logged && JSON.stringify(logged),
    ]);
    const head = found[0];
    if (!head) {
      if (dueLocked) await setHint(q, webhookId, null);
      return [];
    }
    if (head.id === null) {
      const headAt = num(head.head_at);
      if (headAt > dbNow && dueLocked) await setHint(q, webhookId, headAt);
      return []; // not due yet, or a retry the claim has no share left for
    }
    return [
      {
        id: head.id,
        leaseOwner: claim.owner,
        eventId: head.event_id,
        eventType: head.event_type,
        payload: head.payload ?? "{}",
        status: head.status as DeliveryStatus,
        seriesAttempts: head.series_attempts,
        leaseUntil: time.fromDb(leaseUntil),
        webhook,
      },
    ];
  } else {
    // in_flight counts leased rows, ended leases included (dispatch.ts): its places are
    // max_in_flight less its live leases, counted from the rows under the row lock when one of its
    // leases may have ended. An ended lease taken over keeps its row leased (in_flight unchanged).
    let live = inFlight;
    let endedLeft = 0;
    let liveEnd: number | null = null;
    const mayEnd = inFlight > 0 && leaseCheckAt <= dbNow;
    if (mayEnd) {
      const count = await countLeases(q, webhookId, dbNow);
      live = count.live;
      endedLeft = count.leased - count.live;
      liveEnd = count.liveEnd;
    }
    const take = Math.min(room, Math.max(0, effectiveMaxInFlight(webhook) - live));
    const lease = (limit: number, mode: string) =>
      q<LeasedRow>(LEASE_DUE, [webhookId, dbNow, limit, claim.owner, leaseUntil, mode]);
    rows = [];
    if (take > 0) {
      // Retries only within what is left of their share; first attempts always.
      rows = claim.retriesLeft >= take ? await lease(take, "any") : await lease(take, "pending");
      if (claim.retriesLeft > 0 && claim.retriesLeft < take && rows.length < take) {
        rows = rows.concat(await lease(Math.min(claim.retriesLeft, take - rows.length), "retrying"));
      }
    }
    const fresh = rows.filter((r) => r.fresh).length;
    endedLeft -= rows.length - fresh;
    const logged =
      webhook.rateLimit === null || rows.length === 0 ? null : recordStarts(log, dbNow, rows.length);
    if (rows.length > 0 || mayEnd) {
      // After a recount, lease_check_at is exact: the first live lease's end, or now while an ended
      // lease is left (so the next claim counts again).
      let checkAt: number | null = null; // null: least(lease_check_at, this lease's end)
      if (mayEnd && endedLeft > 0) checkAt = dbNow;
      else if (mayEnd)
        checkAt = Math.min(liveEnd ?? Number(NO_LEASE), rows.length > 0 ? leaseUntil : Number(NO_LEASE));
      await q(
        `UPDATE webhooks SET in_flight = in_flight + $2,
           lease_check_at = coalesce($5, least(lease_check_at, $3)), rate_log = coalesce($4, rate_log)
         WHERE id = $1`,
        [webhookId, fresh, leaseUntil, logged && JSON.stringify(logged), checkAt],
      );
    }
    if (take <= 0) return [];
    // A short take drained what was due now: the hint is recomputed (under the due lock).
    if (rows.length < take && dueLocked) await recomputeDue(q, [webhookId], dbNow);
    if (logged !== null && webhook.rateLimit !== null) {
      const left = rateAllowance(logged, webhook.rateLimit, dbNow);
      if (left.freeAt !== null) await raiseHint(q, webhookId, left.freeAt);
    }
  }

  const payloads = new Map<string, string>();
  if (rows.length > 0) {
    const events = await q<{ id: string; payload: string }>(
      "SELECT id, payload FROM events WHERE id = ANY($1::text[])",
      [[...new Set(rows.map((r) => r.event_id))]],
    );
    for (const event of events) payloads.set(event.id, event.payload);
  }
  return rows.map((r) => ({
    id: r.id,
    leaseOwner: claim.owner,
    eventId: r.event_id,
    eventType: r.event_type,
    payload: payloads.get(r.event_id) ?? "{}",
    status: r.status as DeliveryStatus,
    seriesAttempts: r.series_attempts,
    leaseUntil: time.fromDb(leaseUntil),
    webhook,
  }));
}

/** Raises the hint to `at` while something is queued (never lowers it, never clears it). */
async function raiseHint(q: Query, webhookId: string, at: number): Promise<void> {
  await q(
    "UPDATE webhooks SET next_due_at = greatest(next_due_at, $2) WHERE id = $1 AND next_due_at IS NOT NULL",
    [webhookId, at],
  );
}

/** Sets the hint to the FIFO head's due time (null: nothing queued); the caller holds the due lock. */
async function setHint(q: Query, webhookId: string, at: number | null): Promise<void> {
  await q("UPDATE webhooks SET next_due_at = $2 WHERE id = $1", [webhookId, at]);
}
