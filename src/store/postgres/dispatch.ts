// SQL for the dispatcher on PostgreSQL, where any number of instances claim from one queue:
// - a claim locks the subscriptions it serves with FOR UPDATE SKIP LOCKED (instances spread over
//   different subscriptions instead of queueing behind each other), leases due deliveries with
//   FOR UPDATE SKIP LOCKED and re-checks the due condition on the locked rows;
// - each subscription's in_flight counts its leased deliveries for all instances together: claims
//   add the fresh leases they grant (a claim holds the row lock, so the count is exact), settles
//   and releases take theirs back, ended deliveries take theirs back, the reaper recounts;
// - leases and due times are in the database's time (time.ts).
import type { DeliveryStatus } from "../../domain/delivery.ts";
import { DEFAULT_MODE, type Mode } from "../../domain/mode.ts";
import { decideHealth, summarizeAttempts } from "../../domain/retry.ts";
import { buildPayload } from "../../domain/signer.ts";
import { LEASE_MARGIN_MS, type Webhook } from "../../domain/webhook.ts";
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
} from "../store.ts";
import { addFinal } from "../store.ts";
import { type PgClient, type Query, sqlState } from "./client.ts";
import {
  attemptColumns,
  endQueued,
  insertAttempts,
  insertDeliveries,
  lockDueShared,
  lowerDue,
  refreshDue,
} from "./deliveries.ts";
import { claimControlled } from "./delivery-controls.ts";
import { insertEvents } from "./events.ts";
import type { Fanout } from "./fanout.ts";
import { num, numOrNull } from "./keyset.ts";
import type { DbTime } from "./time.ts";
import { toWebhook, WEBHOOK_SELECT, type WebhookRow } from "./webhooks.ts";

/** The channel that says "work may be due", one per schema (a channel name is at most 63 bytes). */
const WORK_CHANNEL_SQL = "'hookd_' || md5(current_setting('search_path'))";
export const NOTIFY_WORK = `SELECT pg_notify(${WORK_CHANNEL_SQL}, '')`;
/** The same with a payload ($1): the sender's token and what its ingests queued for (index.ts). */
export const NOTIFY_WORK_PAYLOAD = `SELECT pg_notify(${WORK_CHANNEL_SQL}, $1)`;
export const WORK_CHANNEL_NAME = `SELECT ${WORK_CHANNEL_SQL} AS channel`;

/** lease_check_at when no lease is held: no lease can end before it. */
const NO_LEASE = "9007199254740991";

/** Subscriptions one round of a claim locks and looks at, at most. */
const ROUND_WEBHOOKS = 32;
const QUEUED = "status IN ('pending', 'retrying')";
const DUE = (d: string) =>
  `${d}.next_attempt_at <= $1 AND (${d}.lease_owner IS NULL OR ${d}.leased_until <= $1)`;

// Up to `limit` due deliveries of one subscription and one status that no lease holds, locked
// (skipping rows another claim holds), oldest first, as many as the subscription has places.
const FRESH = (status: string, limits: string) =>
  `SELECT r.id AS webhook_id, r.pos, c.id, c.next_attempt_at, true AS fresh, ${status === "retrying"} AS retry
    FROM room r CROSS JOIN LATERAL (
      SELECT d.id, d.next_attempt_at FROM deliveries d
      WHERE d.webhook_id = r.id AND d.status = '${status}' AND d.next_attempt_at <= $1 AND d.lease_owner IS NULL
      ORDER BY d.next_attempt_at, d.id LIMIT least(r.places, ${limits}) FOR UPDATE SKIP LOCKED) c
    WHERE r.reached AND r.places > 0`;

/**
 * One round of a claim, one statement: up to ROUND_WEBHOOKS due subscriptions locked (FOR UPDATE SKIP LOCKED,
 * so instances spread over different ones), and for each, in order of due time, up to its free
 * places of due deliveries leased (locked with SKIP LOCKED, the due condition re-checked on the
 * locked row), its in_flight raised by the fresh leases in the same statement (the row lock makes
 * the count exact), and the payloads returned. Parameters: $1 database now, $2 subscriptions
 * already looked at, $3 deliveries still wanted, $4 retries still allowed, $5 the lease owner,
 * $6 the lease length asked for, $7 the margin over a subscription's timeout.
 *
 * Rules: in_flight counts a subscription's leased rows, ended leases included (they stay leased, so
 * that a late settlement from their owner still applies, as on SQLite). Its places are
 * max_in_flight less its live leases: in_flight less the ended leases, which are looked for (and
 * locked, SKIP LOCKED, so each is re-checked on its newest version) only once lease_check_at says
 * one may have ended. A place takes a fresh delivery (in_flight + 1) or an ended lease (taken over,
 * in_flight unchanged), oldest first; an ended lease not taken over still frees its place. Retries
 * at most $4 across the round (in subscription order, so the share left goes to first attempts);
 * $3 in all, the earlier subscriptions first. A retry skipped for the share can leave its
 * subscription a place short of what it could have taken this round; the next claim takes it.
 *
 * The statement is a transaction of its own (no BEGIN, no COMMIT round trips): its locks are held
 * until it ends. A subscription whose take came up short has drained what is due now: it is named
 * `short`, and its hint is raised afterwards (raiseDue). Output: one 'w' row per subscription
 * locked, one 'd' row per lease.
 */
const OPEN = `(w.in_flight < w.max_in_flight OR w.lease_check_at <= $1 OR NOT w.enabled
        OR w.ordering = 'fifo' OR w.rate_limit IS NOT NULL)`;
/** A subscription due ($1 database now) that this claim has not looked at yet ($2). */
const DUE_UNSEEN = "w.next_due_at <= $1 AND NOT (w.id = ANY($2::text[]))";
/** Whether such a subscription has a place to give (and `also` holds for it). */
const anyOpen = (also = "") => `EXISTS (SELECT 1 FROM webhooks w WHERE ${DUE_UNSEEN} AND ${OPEN}${also})`;
/** The due subscriptions at their caps, up to 65, as a JSON array. */
const AT_CAPS = `(SELECT coalesce(json_agg(f.id), '[]')::text FROM (
      SELECT w.id FROM webhooks w WHERE ${DUE_UNSEEN} AND NOT ${OPEN} LIMIT 65) f)`;
/** The first moment time alone can change that: a lease of theirs may end, another becomes due. */
const CHANGES_AT = `least(
      (SELECT min(w.lease_check_at) FROM webhooks w WHERE ${DUE_UNSEEN}),
      (SELECT min(w.next_due_at) FROM webhooks w WHERE w.next_due_at > $1))`;

const claimRound = (lock: string) => `WITH locked AS MATERIALIZED (
    SELECT w.id, w.enabled, w.max_in_flight, w.in_flight, w.lease_check_at, w.timeout_seconds, w.next_due_at,
      w.ordering = 'fifo' OR w.rate_limit IS NOT NULL AS controlled
    FROM webhooks w
    WHERE ${DUE_UNSEEN}
      -- Every place held and no lease that may have ended: nothing to give, so not locked (a row
      -- lock takes a transaction id, whose commit waits for a WAL flush). Re-checked on the locked
      -- row, as every condition here is.
      AND ${OPEN}
    ORDER BY w.next_due_at ${lock}),
  caps AS (
    SELECT l.id, l.enabled, l.next_due_at, l.max_in_flight, l.in_flight, l.controlled,
      CASE WHEN l.enabled AND NOT l.controlled THEN greatest(0, l.max_in_flight - l.in_flight) ELSE 0 END AS spare,
      l.enabled AND NOT l.controlled AND l.in_flight > 0 AND l.lease_check_at <= $1 AS may_end,
      CASE WHEN NOT l.enabled OR l.controlled THEN 0
           ELSE greatest(0, l.max_in_flight - l.in_flight)
             + CASE WHEN l.in_flight > 0 AND l.lease_check_at <= $1 THEN l.in_flight ELSE 0 END
      END AS cap,
      $1::bigint + greatest($6::bigint, l.timeout_seconds * 1000 + $7::bigint) AS lease_until,
      row_number() OVER (ORDER BY l.next_due_at, l.id) AS pos
    FROM locked l),
  -- Subscriptions past the first ones whose places add up to what is wanted are left to the next
  -- round (which takes them only if those came up short).
  plan AS MATERIALIZED (
    SELECT c.*, coalesce(sum(c.cap) OVER (ORDER BY c.pos ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
      < $3::int AS reached
    FROM caps c),
  -- The ended leases of the subscriptions where one may have ended, locked.
  ended AS MATERIALIZED (
    SELECT p.id AS webhook_id, p.pos, e.id, e.next_attempt_at, false AS fresh, e.status = 'retrying' AS retry
    FROM plan p CROSS JOIN LATERAL (
      SELECT d.id, d.next_attempt_at, d.status FROM deliveries d
      WHERE d.webhook_id = p.id AND d.${QUEUED} AND d.next_attempt_at <= $1
        AND d.lease_owner IS NOT NULL AND d.leased_until <= $1
      ORDER BY d.next_attempt_at, d.id LIMIT p.in_flight FOR UPDATE SKIP LOCKED) e
    WHERE p.reached AND p.may_end),
  -- A subscription's places (never more than its cap: the ended leases are at most in_flight).
  room AS MATERIALIZED (
    SELECT p.*, CASE WHEN p.cap = 0 THEN 0
      ELSE greatest(0, p.max_in_flight - p.in_flight + coalesce(e.n, 0)) END AS places
    FROM plan p LEFT JOIN (SELECT webhook_id, count(*)::int AS n FROM ended GROUP BY webhook_id) e
      ON e.webhook_id = p.id),
  cand AS (
    ${FRESH("pending", "$3::int")}
    UNION ALL
    ${FRESH("retrying", "$3::int, $4::int")}
    UNION ALL
    SELECT * FROM ended),
  kept AS (
    SELECT c.* FROM (
      SELECT c.*, row_number() OVER (PARTITION BY c.retry ORDER BY c.pos, c.next_attempt_at, c.id) AS rrank
      FROM cand c) c
    WHERE NOT c.retry OR c.rrank <= $4::int),
  within AS (
    SELECT k.* FROM (
      SELECT k.*, row_number() OVER w AS wrank
      FROM kept k WINDOW w AS (PARTITION BY k.webhook_id ORDER BY k.next_attempt_at, k.id)) k
    JOIN room r ON r.id = k.webhook_id
    WHERE k.wrank <= r.places),
  chosen AS (
    SELECT w.* FROM (
      SELECT w.*, row_number() OVER (ORDER BY w.pos, w.next_attempt_at, w.id) AS grank FROM within w) w
    WHERE w.grank <= $3::int),
  leased AS (
    UPDATE deliveries d SET lease_owner = $5, leased_until = p.lease_until
    FROM chosen c JOIN plan p ON p.id = c.webhook_id
    WHERE d.id = c.id AND d.${QUEUED} AND ${DUE("d")}
    RETURNING d.id, d.webhook_id, d.status, d.series_attempts, d.event_id, d.event_type, c.fresh, p.lease_until, c.grank),
  took AS (
    SELECT webhook_id, count(*)::int AS n, (count(*) FILTER (WHERE fresh))::int AS nfresh, array_agg(id) AS ids
    FROM leased GROUP BY webhook_id),
  bumped AS (
    -- With every place held, the earliest lease end from the rows themselves (a scan of this
    -- subscription's queued rows, at most once per lease length while it stays saturated); the
    -- rows leased by this statement count with their new end, and ended leases not taken over
    -- with theirs (so the next claim looks for them again).
    UPDATE webhooks w SET in_flight = w.in_flight + coalesce(t.nfresh, 0),
      lease_check_at = CASE WHEN p.spare = 0 THEN least(
          coalesce((SELECT min(d.leased_until) FROM deliveries d WHERE d.webhook_id = p.id AND d.${QUEUED}
            AND d.lease_owner IS NOT NULL AND NOT (d.id = ANY(coalesce(t.ids, '{}'::text[])))), ${NO_LEASE}),
          CASE WHEN t.n > 0 THEN p.lease_until END)
        ELSE least(w.lease_check_at, p.lease_until) END
    FROM plan p LEFT JOIN took t ON t.webhook_id = p.id
    WHERE w.id = p.id AND p.cap > 0 AND (p.spare = 0 OR t.n > 0)
    RETURNING w.id),
  avail AS (
    SELECT r.id, r.pos, r.places AS cap, coalesce(a.n, 0) AS n FROM room r
    LEFT JOIN (SELECT webhook_id, count(*)::int AS n FROM within GROUP BY webhook_id) a ON a.webhook_id = r.id),
  progress AS (
    SELECT a.*, $3::int - coalesce(sum(a.n) OVER (ORDER BY a.pos ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
      AS wanted FROM avail a)
  SELECT 'w' AS kind, g.id AS webhook_id, p.enabled, p.reached, p.controlled,
    p.reached AND g.cap > 0 AND g.wanted > 0 AND g.n < least(g.cap, g.wanted) AS short,
    CASE WHEN g.n > 0 THEN (SELECT row_to_json(x)::text FROM (${WEBHOOK_SELECT} WHERE w.id = g.id) x) END AS webhook,
    NULL::text AS id, NULL::text AS status, NULL::int AS series_attempts, NULL::text AS event_id,
    NULL::text AS event_type, NULL::bigint AS lease_until, NULL::text AS payload, NULL::bigint AS grank,
    (SELECT count(*) FROM bumped)::int AS bumped
  FROM progress g JOIN plan p ON p.id = g.id
  UNION ALL
  SELECT 'd', l.webhook_id, NULL, NULL, NULL, NULL, NULL, l.id, l.status, l.series_attempts, l.event_id, l.event_type,
    l.lease_until, e.payload, l.grank, NULL
  FROM leased l JOIN events e ON e.id = l.event_id
  UNION ALL
  -- With nothing locked and no due subscription that could have been (others would hold them):
  -- the due subscriptions at their caps (up to 65, as a JSON array in the webhook column) and, in
  -- the lease_until column, the first moment this can change by time alone: one of their leases may
  -- end, or another subscription becomes due.
  SELECT 'n', NULL, NULL, NULL, NULL, NULL, ${AT_CAPS}, NULL, NULL, NULL, NULL, NULL, ${CHANGES_AT}, NULL, NULL, NULL
  WHERE NOT EXISTS (SELECT 1 FROM locked) AND NOT ${anyOpen()}
  UNION ALL
  -- A due subscription with a place that this round did not lock (past its limit, or locked by
  -- another transaction): only then is another round worth its statement.
  SELECT 'm', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  WHERE ${anyOpen(" AND NOT EXISTS (SELECT 1 FROM locked l WHERE l.id = w.id)")}`;
const CLAIM_ROUND = claimRound(`LIMIT least(${ROUND_WEBHOOKS}, $3::int) FOR UPDATE SKIP LOCKED`);
// When every due subscription is locked by another transaction — an ingest lowering its hint, a
// settle giving places back, another claim: each a short transaction — the claim waits for the
// first of them instead of coming back empty (one subscription's claims and settles would otherwise
// keep missing each other).
const CLAIM_ROUND_WAITING = claimRound("LIMIT 1 FOR UPDATE");

interface ClaimRoundRow {
  /**
   * A subscription looked at, a lease, "nothing due has a place" (with no subscription locked), or
   * "more due with a place than this round locked".
   */
  kind: "w" | "d" | "n" | "m";
  webhook_id: string;
  enabled: boolean | null;
  reached: boolean | null;
  /** FIFO or rate-limited: left alone by the statement, claimed by claimControlled. */
  controlled: boolean | null;
  short: boolean | null;
  webhook: string | null;
  id: string | null;
  status: string | null;
  series_attempts: number | null;
  event_id: string | null;
  event_type: string | null;
  lease_until: string | number | null;
  payload: string | null;
  grank: string | number | null;
}

/**
 * What a claim that took nothing tells of what it saw: `full`, the due subscriptions at their caps
 * (when nothing else was due), and `until`, when time alone may change that (a lease of theirs may
 * end, another becomes due).
 */
export interface ClaimSeen {
  full?: string[];
  until?: number | null;
}

/** What a claim runs on: statements that commit alone, and transactions. */
export interface ClaimClient {
  query: Query;
  tx<T>(fn: (q: Query) => Promise<T>): Promise<T>;
}

/**
 * Raises drained subscriptions' hints: each one's due lock tried (exclusively, never waiting), then
 * the hints of those taken recomputed, in one autocommit call of hookd_raise_due() (migration 9;
 * deliveries.ts says why the two are separate statements). A subscription a writer holds now keeps
 * its low hint.
 */
const raiseDue = (q: Query, webhookIds: readonly string[], dbNow: number) =>
  q("SELECT hookd_raise_due($1::text[], $2::bigint)", [webhookIds, dbNow]);

/**
 * Whether a claim now would find nothing: no due subscription has a place, as the claim's own
 * 'n' row would say, in a statement a fraction of the claim's cost (the claim's plan has dozens of
 * nodes to start and end even when it locks nothing). For a claim after one that found every due
 * subscription at its caps, with nothing changed here since (index.ts): at a slow endpoint, every
 * instance asks again every QUIET_MS. Fills `seen` as claimDue does.
 */
export async function nothingOpen(q: Query, time: DbTime, now: number, seen: ClaimSeen): Promise<boolean> {
  const [row] = await q<{ open: boolean; full: string; until: string | number | null }>(
    `SELECT ${anyOpen()} AS open, ${AT_CAPS} AS full, ${CHANGES_AT} AS until`,
    [time.toDb(now), []],
  );
  if (!row || row.open) return false;
  seen.full = JSON.parse(row.full) as string[];
  seen.until = row.until === null ? null : time.fromDb(num(row.until));
  return true;
}

export async function claimDue(
  client: ClaimClient,
  time: DbTime,
  request: ClaimRequest,
  seen?: ClaimSeen,
  /**
   * Given this, a claim that leased something answers before its housekeeping (the hints of
   * drained subscriptions raised, disabled ones' queues ended) and hands that work over instead:
   * the leased deliveries go out a transaction sooner. The caller orders it before its next claim.
   */
  defer?: (housekeeping: Promise<void>) => void,
): Promise<ClaimedDelivery[]> {
  const { now, owner } = request;
  const dbNow = time.toDb(now);
  const skip: string[] = [];
  const claimed: ClaimedDelivery[] = [];
  let remaining = request.limit;
  let retriesLeft = request.retryLimit;
  const short: string[] = [];
  const disabled: string[] = [];
  const controlled: string[] = [];
  for (let round = 0; remaining > 0; round++) {
    let rows: ClaimRoundRow[];
    try {
      const waiting = round === 1 && skip.length === 0;
      rows = await client.query<ClaimRoundRow>(waiting ? CLAIM_ROUND_WAITING : CLAIM_ROUND, [
        dbNow,
        skip,
        remaining,
        Math.max(0, retriesLeft),
        owner,
        request.leaseMs,
        LEASE_MARGIN_MS,
      ]);
    } catch (error) {
      // The leases of earlier rounds are committed: hand them over rather than leave them to end.
      if (round === 0) throw error;
      break;
    }
    const webhooks = new Map<string, Webhook>();
    let looked = 0;
    let unreached = 0;
    const leases: ClaimRoundRow[] = [];
    let none = false;
    let more = false;
    for (const row of rows) {
      if (row.kind === "m") {
        more = true;
        continue;
      }
      if (row.kind === "n") {
        none = true;
        if (round === 0 && seen) {
          seen.full = JSON.parse(row.webhook ?? "[]") as string[];
          seen.until = row.lease_until === null ? null : time.fromDb(num(row.lease_until));
        }
        continue;
      }
      if (row.kind === "d") {
        leases.push(row);
        continue;
      }
      looked++;
      if (!row.reached) {
        unreached++;
        continue;
      }
      skip.push(row.webhook_id);
      if (row.enabled === false) disabled.push(row.webhook_id);
      else if (row.controlled) controlled.push(row.webhook_id);
      else if (row.short) short.push(row.webhook_id);
      if (row.webhook) webhooks.set(row.webhook_id, toWebhook(JSON.parse(row.webhook) as WebhookRow));
    }
    if (looked === 0) {
      // Every due subscription with a place is locked by another transaction: the next round
      // waits for the first of them. With none (all at their caps, or nothing due), the claim ends.
      if (round === 0 && !none) continue;
      break;
    }
    leases.sort((a, b) => num(a.grank!) - num(b.grank!));
    for (const r of leases) {
      if (r.status === "retrying") retriesLeft--;
      claimed.push({
        id: r.id!,
        leaseOwner: owner,
        eventId: r.event_id!,
        eventType: r.event_type!,
        payload: r.payload ?? "{}",
        status: r.status as DeliveryStatus,
        seriesAttempts: r.series_attempts!,
        leaseUntil: time.fromDb(num(r.lease_until!)),
        webhook: webhooks.get(r.webhook_id)!,
      });
    }
    // Another round while this one left subscriptions unreached, or others due with a place were
    // not locked by it (past its limit, or held by another transaction). Every round adds at least
    // its first subscription to `skip`, so this ends.
    remaining -= leases.length;
    if (unreached === 0 && !more) break;
  }
  // FIFO and rate-limited subscriptions the rounds passed over, each in a transaction of its own
  // under its row lock (delivery-controls.ts), with what is left of the claim.
  for (const webhookId of controlled) {
    if (remaining <= 0) break;
    let taken: ClaimedDelivery[];
    try {
      taken = await client.tx((q) =>
        claimControlled(q, time, webhookId, {
          dbNow,
          owner,
          leaseMs: request.leaseMs,
          leaseMarginMs: LEASE_MARGIN_MS,
          limit: remaining,
          retriesLeft,
        }),
      );
    } catch (error) {
      if (claimed.length === 0) throw error;
      break;
    }
    for (const d of taken) if (d.status === "retrying") retriesLeft--;
    remaining -= taken.length;
    claimed.push(...taken);
  }
  // Housekeeping after the leases, which are committed already: a failure here loses nothing (a
  // hint left low is safe, a disabled subscription is seen again by the next claim).
  const housekeeping = async () => {
    if (short.length > 0) await raiseDue(client.query, short, dbNow);
    for (const webhookId of disabled) {
      await client.tx(async (q) => {
        const [row] = await q<{ enabled: boolean }>("SELECT enabled FROM webhooks WHERE id = $1 FOR UPDATE", [
          webhookId,
        ]);
        if (!row || row.enabled) return;
        await endQueued(q, webhookId, "failed", now);
        await refreshDue(q, webhookId, dbNow);
      });
    }
  };
  if (short.length === 0 && disabled.length === 0) return claimed;
  if (defer && claimed.length > 0) {
    defer(housekeeping().catch(() => {}));
    return claimed;
  }
  try {
    await housekeeping();
  } catch (error) {
    if (claimed.length === 0) throw error;
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

/** hookd_settle() found an attempt of the batch recorded already (migration 7). */
const SETTLED_BEFORE = "HK001";

/**
 * The usual settlement batch in one call of hookd_settle() (migration 7), committed alone: one in
 * which every subscription's last attempt succeeded, so that none can be disabled by it (decideHealth
 * keeps a subscription whose failures were reset) and it needs no fan-out lock. Answers null for
 * any other batch, or when an attempt of it is recorded already (an earlier try committed and its
 * answer was lost); settleAttempts then settles it in a transaction that knows what to do with those.
 */
export async function settleInOneCall(
  q: Query,
  time: DbTime,
  results: readonly AttemptResult[],
  now: number,
  stats: string,
  shard: number,
): Promise<{ applied: boolean[]; finals: FinalCount[] } | null> {
  const bySubscription = attemptsBySubscription(results);
  const summaries = bySubscription.map(([, outcomes]) => summarizeAttempts(outcomes));
  if (summaries.some((s) => s.failuresAfter > 0)) return null;
  let rows: { hookd_settle: string }[];
  try {
    rows = await q<{ hookd_settle: string }>(
      `SELECT hookd_settle(${Array.from({ length: 20 }, (_, i) => `$${i + 1}`).join(", ")})`,
      [
        now,
        time.toDb(now),
        [...new Set(results.filter((r) => r.settlement.action === "retry").map((r) => r.webhookId))].sort(),
        ...attemptColumns(results.map((r) => ({ ...r.attempt, deliveryId: r.deliveryId }))),
        results.map((r) => r.leaseOwner),
        results.map((r) => SETTLE_STATUS[r.settlement.action]),
        results.map((r) => (r.settlement.action === "retry" ? time.toDb(r.settlement.at) : null)),
        results.map((r) => r.signature),
        bySubscription.map(([id]) => id),
        summaries.map((s) => s.resetAt),
        summaries.map((s) => s.failuresAfter),
        stats,
        shard,
      ],
    );
  } catch (error) {
    if (sqlState(error) === SETTLED_BEFORE) return null;
    throw error;
  }
  const appliedIds = new Set(rows.map((row) => row.hookd_settle));
  const finals: FinalCount[] = [];
  for (const r of results) {
    const final = FINAL_OF[r.settlement.action];
    if (appliedIds.has(r.deliveryId) && final) addFinal(finals, final, r.mode ?? DEFAULT_MODE);
  }
  return { applied: results.map((r) => appliedIds.has(r.deliveryId)), finals };
}

/** Records the attempts and applies the settlements (by their lease owners) in one transaction. */
export async function settleAttempts(
  q: Query,
  time: DbTime,
  results: readonly AttemptResult[],
  now: number,
  health: HealthPolicy,
): Promise<{
  applied: boolean[];
  finals: FinalCount[];
  disable: { webhookId: string; reason: "failing" | "gone" }[];
  /** The results whose attempts this call recorded (a repeated one counts nowhere again). */
  recorded: AttemptResult[];
}> {
  // Three statements for the batch: the attempts (taking the due locks of subscriptions that get a
  // retry, shared: their hints are lowered by the third statement, deliveries.ts), the deliveries,
  // then every subscription's counters and hint at once.
  const recorded = await insertAttempts(
    q,
    results.map((r) => ({ ...r.attempt, deliveryId: r.deliveryId })),
    results.filter((r) => r.settlement.action === "retry").map((r) => r.webhookId),
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
  const finals: FinalCount[] = [];
  for (const r of fresh) {
    const final = FINAL_OF[r.settlement.action];
    if (appliedIds.has(r.deliveryId) && final) addFinal(finals, final, r.mode ?? DEFAULT_MODE);
  }
  const freed = new Map<string, number>();
  const due = new Map<string, number>();
  const ended = new Set<string>();
  for (const row of updated) {
    freed.set(row.webhook_id, (freed.get(row.webhook_id) ?? 0) + 1);
    const at = numOrNull(row.retry_at);
    if (at !== null) due.set(row.webhook_id, Math.min(due.get(row.webhook_id) ?? at, at));
    else ended.add(row.webhook_id);
  }

  // Health follows every attempt, applied or not (it reflects the endpoint), counted relatively so
  // settlers on other instances never lose a count; then the domain rule decides.
  const bySubscription = attemptsBySubscription(fresh);
  const summaries = bySubscription.map(([, outcomes]) => summarizeAttempts(outcomes));
  const ids = bySubscription.map(([id]) => id);
  const rows =
    ids.length === 0
      ? []
      : await q<{
          id: string;
          consecutive_failures: number;
          health_since: string | number;
          enabled: boolean;
        }>(
          `UPDATE webhooks w SET in_flight = greatest(0, w.in_flight - u.freed),
             consecutive_failures = CASE WHEN u.reset_at IS NULL THEN w.consecutive_failures + u.failures
               ELSE u.failures END,
             health_since = coalesce(u.reset_at, w.health_since),
             next_due_at = CASE WHEN u.due IS NOT NULL AND (w.next_due_at IS NULL OR w.next_due_at > u.due)
                 THEN u.due
               -- A FIFO head ended: the next one may go now (its hint was the lease's end).
               WHEN u.ended AND w.ordering = 'fifo' AND (w.next_due_at IS NULL OR w.next_due_at > $6)
                 THEN $6
               ELSE w.next_due_at END
           FROM unnest($1::text[], $2::int[], $3::bigint[], $4::int[], $5::bigint[], $7::boolean[])
             AS u(id, freed, reset_at, failures, due, ended)
           WHERE w.id = u.id RETURNING w.id, w.consecutive_failures, w.health_since, w.enabled`,
          [
            ids,
            ids.map((id) => freed.get(id) ?? 0),
            summaries.map((s) => s.resetAt),
            summaries.map((s) => s.failuresAfter),
            ids.map((id) => due.get(id) ?? null),
            time.toDb(now),
            ids.map((id) => ended.has(id)),
          ],
        );
  const byId = new Map(rows.map((row) => [row.id, row]));
  const disable: { webhookId: string; reason: "failing" | "gone" }[] = [];
  for (const [i, webhookId] of ids.entries()) {
    const row = byId.get(webhookId);
    const summary = summaries[i];
    if (!row || !summary) continue;
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
  return { applied, finals, disable, recorded: fresh };
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
): Promise<{ disabled: DisabledWebhook; mode: Mode; failedDeliveries: number } | null> {
  const [row] = await q<{ tenant_id: string; mode: Mode; url: string }>(
    `UPDATE webhooks SET enabled = false, disabled_reason = $1, updated_at = $2 WHERE id = $3 AND enabled
     RETURNING tenant_id, mode, url`,
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
    mode: row.mode,
    accountId: null,
    dataJson: JSON.stringify(data),
  });
  const event = await publishInternal(
    q,
    time,
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

async function publishInternal(
  q: Query,
  time: DbTime,
  tenantId: string,
  mode: Mode,
  event: { id: string; type: string; payload: string; now: number },
  deps: { ids: IdGenerator; fanout: Fanout },
): Promise<EventRecord> {
  // The fan-out lock is already held exclusively here; the cache is refreshed against the version.
  await deps.fanout.begin(q);
  const targets = await deps.fanout.match(q, tenantId, mode, { ...event, accountId: null });
  const [record] = await insertEvents(q, tenantId, mode, [
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
    mode,
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
