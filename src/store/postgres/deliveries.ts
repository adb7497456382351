// SQL for deliveries and their attempts on PostgreSQL. Every state change names the states it
// expects; settlements also name the lease owner. Due times and lease ends are in database time
// (time.ts); a delivery's nextAttemptAt reads as its lease end while leased, as on SQLite.
import type { Attempt, AttemptError, Delivery, DeliveryStatus } from "../../domain/delivery.ts";
import type { Mode } from "../../domain/mode.ts";
import type { DeliveryFilter, Page, PageQuery } from "../store.ts";
import type { Query } from "./client.ts";
import { keysetPage, num, numOrNull } from "./keyset.ts";
import type { DbTime } from "./time.ts";

interface DeliveryRow {
  id: string;
  tenant_id: string;
  mode: Mode;
  event_id: string;
  webhook_id: string;
  event_type: string;
  status: string;
  attempts: number;
  response_status_code: number | null;
  last_attempt_at: string | number | null;
  due: string | number | null;
  signature: string | null;
  created_at: string | number;
  payload: string;
}

const SELECT = `SELECT d.id, d.tenant_id, d.mode, d.event_id, d.webhook_id, d.event_type, d.status, d.attempts,
    d.response_status_code, d.last_attempt_at, d.signature, d.created_at, e.payload,
    CASE WHEN d.lease_owner IS NOT NULL THEN d.leased_until ELSE d.next_attempt_at END AS due
  FROM deliveries d JOIN events e ON e.id = d.event_id`;

const toDelivery =
  (time: DbTime) =>
  (row: DeliveryRow): Delivery => ({
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    eventId: row.event_id,
    webhookId: row.webhook_id,
    eventType: row.event_type,
    status: row.status as DeliveryStatus,
    attempts: row.attempts,
    responseStatusCode: row.response_status_code,
    lastAttemptAt: numOrNull(row.last_attempt_at),
    nextAttemptAt: time.fromDbOrNull(numOrNull(row.due)),
    createdAt: num(row.created_at),
    payload: row.payload,
    signature: row.signature,
  });

export interface NewDelivery {
  id: string;
  eventId: string;
  webhookId: string;
  eventType: string;
  /** Creation time (this process's clock); due at once. */
  now: number;
}

/**
 * Inserts deliveries, all due at once. The statement also takes the due locks of their
 * subscriptions, shared (see the due-time hint below): the caller lowers the hints by a later
 * statement of the same transaction (`lowerDue`).
 */
export async function insertDeliveries(
  q: Query,
  time: DbTime,
  tenantId: string,
  mode: Mode,
  deliveries: readonly NewDelivery[],
): Promise<void> {
  if (deliveries.length === 0) return;
  await q(
    `INSERT INTO deliveries (id, tenant_id, mode, event_id, webhook_id, event_type, status, next_attempt_at, created_at, updated_at)
     SELECT id, $1, $8, event_id, webhook_id, event_type, 'pending', due, created, created
     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
       AS u(id, event_id, webhook_id, event_type, due, created)
     WHERE (SELECT count(${DUE_LOCK_SHARED("l.id")}) FROM (SELECT DISTINCT unnest($4::text[]) AS id) l) >= 0`,
    [
      tenantId,
      deliveries.map((d) => d.id),
      deliveries.map((d) => d.eventId),
      deliveries.map((d) => d.webhookId),
      deliveries.map((d) => d.eventType),
      deliveries.map((d) => time.toDb(d.now)),
      deliveries.map((d) => d.now),
      mode,
    ],
  );
}

// The due-time hint: webhooks.next_due_at is never later than the earliest due time (or, for a
// leased delivery, lease end) of the subscription's queued deliveries; it may be earlier (a claim
// then finds less than it hoped, and recomputes it). Claims look only at subscriptions whose hint
// has come, so a hint later than a queued delivery would strand it. Writers that make a delivery
// due (ingest, a retry or release settled, a requeue) lower the hint; only a claim that drained
// what was due (and a disable) raises it, by recomputing it from the deliveries.
//
// Lowering takes no row lock when the hint is already low enough — the usual case: an ingest into a
// busy subscription writes nothing to its row, so ingests to one subscription do not queue behind
// each other's commits. What keeps a raise from hiding a delivery committed meanwhile is the
// subscription's due lock, an advisory lock per subscription and schema:
// - a writer takes it shared (never waiting for another writer) in a statement before the one that
//   lowers the hint, and holds it until it commits;
// - a raise first tries to take it exclusively, without waiting; when any writer holds it, the hint
//   is left low (a later claim raises it). When it is taken, the recomputation runs in a later
//   statement of the same transaction, and the lock is held until that transaction commits.
// Take a writer W and a raise R. If W took its shared lock before R tried, R's try succeeded only
// because W had already ended: W's deliveries are committed before R's recomputation starts, so it
// sees them (READ COMMITTED: each statement sees what committed before it began). If W asked for
// it after R took it, W waited until R committed, so W's lowering statement, which starts later,
// sees R's raised hint and lowers it where W's deliveries need. Either way the hint ends no later
// than W's deliveries. A crash anywhere rolls back a raise with its transaction, and a writer's
// lowering commits with its deliveries or not at all.

/** The subscription's due lock (advisory, per schema), as SQL over an expression giving its id. */
export const DUE_LOCK_KEY = (id: string) =>
  `hashtext('hookd.due.' || ${id}), hashtext(current_setting('search_path'))`;
export const DUE_LOCK_SHARED = (id: string) => `pg_advisory_xact_lock_shared(${DUE_LOCK_KEY(id)})`;
export const DUE_LOCK_TRY = (id: string) => `pg_try_advisory_xact_lock(${DUE_LOCK_KEY(id)})`;

/** Takes the due locks of these subscriptions, shared, until the transaction ends. */
export async function lockDueShared(q: Query, webhookIds: Iterable<string>): Promise<void> {
  const ids = [...new Set(webhookIds)];
  if (ids.length === 0) return;
  await q(`SELECT count(${DUE_LOCK_SHARED("u.id")}) FROM unnest($1::text[]) AS u(id)`, [ids]);
}

/**
 * Lowers subscriptions' hints to the given database times where they are later (it never raises
 * one), and with `notify` sends the work notification (at commit) in the same statement. The
 * caller's transaction took the due locks shared in an earlier statement (insertDeliveries,
 * lockDueShared). A hint already low enough is not written, so no row lock is taken for it.
 */
export async function lowerDue(
  q: Query,
  due: ReadonlyMap<string, number>,
  notify: string | null,
): Promise<void> {
  if (due.size === 0) {
    if (notify) await q(notify);
    return;
  }
  const ids = [...due.keys()].sort();
  const lower = `UPDATE webhooks w SET next_due_at = u.at
     FROM unnest($1::text[], $2::bigint[]) AS u(id, at)
     WHERE w.id = u.id AND (w.next_due_at IS NULL OR w.next_due_at > u.at)`;
  await q(notify ? `WITH lowered AS (${lower} RETURNING 1) ${notify}` : lower, [
    ids,
    ids.map((id) => due.get(id)),
  ]);
}

/**
 * Recomputes subscriptions' hints from their queued deliveries: the earliest unleased due time,
 * or the earliest lease end (leased rows were due when leased, so they sit in the due range). The
 * caller took their due locks exclusively in an earlier statement (DUE_LOCK_TRY answered true); see
 * the hint above. A subscription whose row another transaction holds is skipped, its hint left as
 * low as it is (safe): a raise never waits for a row lock, so it cannot close a deadlock with a
 * settlement that holds one subscription's row and waits for another's (their orders differ).
 * A claim's raise runs the same statement inside the server, in hookd_raise_due() (migration 9).
 */
export async function recomputeDue(q: Query, webhookIds: readonly string[], dbNow: number): Promise<void> {
  if (webhookIds.length === 0) return;
  await q(
    `WITH held AS (SELECT id FROM webhooks WHERE id = ANY($1::text[]) FOR UPDATE SKIP LOCKED)
     UPDATE webhooks w SET next_due_at = least(
       (SELECT min(d.next_attempt_at) FROM deliveries d
         WHERE d.webhook_id = w.id AND d.status IN ('pending', 'retrying') AND d.lease_owner IS NULL),
       (SELECT min(d.leased_until) FROM deliveries d
         WHERE d.webhook_id = w.id AND d.status IN ('pending', 'retrying') AND d.lease_owner IS NOT NULL
           AND d.next_attempt_at <= $2))
     FROM held WHERE w.id = held.id`,
    [webhookIds, dbNow],
  );
}

/**
 * Raises a subscription's hint to what its queued deliveries need, unless a writer holds its due
 * lock now (then the hint stays low, which is safe). The caller holds the subscription's row lock.
 */
export async function refreshDue(q: Query, webhookId: string, dbNow: number): Promise<void> {
  const [row] = await q<{ locked: boolean }>(`SELECT ${DUE_LOCK_TRY("$1::text")} AS locked`, [webhookId]);
  if (row?.locked) await recomputeDue(q, [webhookId], dbNow);
}

export async function selectDelivery(
  q: Query,
  time: DbTime,
  id: string,
  tenantId?: string,
): Promise<Delivery | null> {
  const rows =
    tenantId === undefined
      ? await q<DeliveryRow>(`${SELECT} WHERE d.id = $1`, [id])
      : await q<DeliveryRow>(`${SELECT} WHERE d.id = $1 AND d.tenant_id = $2`, [id, tenantId]);
  return rows[0] ? toDelivery(time)(rows[0]) : null;
}

export function selectDeliveryPage(
  q: Query,
  time: DbTime,
  filter: DeliveryFilter,
  page: PageQuery<"-created_at">,
): Promise<Page<Delivery>> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    where.push(clause);
    params.push(value);
  };
  if (filter.tenantId !== undefined) add("d.tenant_id = ?", filter.tenantId);
  if (filter.mode !== undefined) add("d.mode = ?", filter.mode);
  if (filter.webhookId !== undefined) add("d.webhook_id = ?", filter.webhookId);
  if (filter.eventId !== undefined) add("d.event_id = ?", filter.eventId);
  if (filter.status !== undefined) add("d.status = ?", filter.status);
  return keysetPage(
    q,
    {
      select: SELECT,
      where,
      params,
      column: "d.created_at",
      idColumn: "d.id",
      descending: true,
      map: toDelivery(time),
    },
    page,
  );
}

/**
 * Ends a subscription's queued deliveries: `cancelled` when it is deleted, `failed` when disabled;
 * the leases among them no longer count against its cap. The caller holds the subscription's row
 * lock (when it still exists). Answers how many.
 */
export async function endQueued(
  q: Query,
  webhookId: string,
  status: "cancelled" | "failed",
  now: number,
): Promise<number> {
  const [row] = await q<{ n: number; leased: number }>(
    `WITH target AS (
       SELECT id, lease_owner IS NOT NULL AS leased FROM deliveries
       WHERE webhook_id = $1 AND status IN ('pending', 'retrying') FOR UPDATE),
     ended AS (
       UPDATE deliveries d SET status = $2, next_attempt_at = NULL, lease_owner = NULL, leased_until = NULL, updated_at = $3
       FROM target t WHERE d.id = t.id RETURNING t.leased)
     SELECT count(*)::int AS n, (count(*) FILTER (WHERE leased))::int AS leased FROM ended`,
    [webhookId, status, now],
  );
  if (row && row.leased > 0) {
    await q("UPDATE webhooks SET in_flight = greatest(0, in_flight - $1) WHERE id = $2", [
      row.leased,
      webhookId,
    ]);
  }
  return row?.n ?? 0;
}

/** Queues a final delivery again, due now, as a new attempt series. */
export async function requeue(
  q: Query,
  time: DbTime,
  id: string,
  now: number,
  fromStatuses: readonly DeliveryStatus[],
): Promise<boolean> {
  const rows = await q(
    `UPDATE deliveries SET status = 'pending', series_attempts = 0, next_attempt_at = $1, lease_owner = NULL,
       leased_until = NULL, updated_at = $2
     WHERE id = $3 AND status = ANY($4::text[]) RETURNING 1`,
    [time.toDb(now), now, id, fromStatuses],
  );
  return rows.length > 0;
}

export async function requeueRange(
  q: Query,
  time: DbTime,
  webhookId: string,
  since: number,
  until: number,
  now: number,
  fromStatuses: readonly DeliveryStatus[],
): Promise<number> {
  const rows = await q(
    `UPDATE deliveries SET status = 'pending', series_attempts = 0, next_attempt_at = $1, lease_owner = NULL,
       leased_until = NULL, updated_at = $2
     WHERE webhook_id = $3 AND created_at >= $4 AND created_at < $5 AND status = ANY($6::text[]) RETURNING 1`,
    [time.toDb(now), now, webhookId, since, until, fromStatuses],
  );
  return rows.length;
}

interface AttemptRow {
  id: string;
  delivery_id: string;
  started_at: string | number;
  duration_ms: number;
  response_status_code: number | null;
  response_headers: string | null;
  response_body: string | null;
  error: string | null;
}

const toAttempt = (row: AttemptRow): Attempt => ({
  id: row.id,
  deliveryId: row.delivery_id,
  startedAt: num(row.started_at),
  durationMs: row.duration_ms,
  responseStatusCode: row.response_status_code,
  responseHeaders: row.response_headers === null ? null : JSON.parse(row.response_headers),
  responseBody: row.response_body,
  error: row.error as AttemptError | null,
});

/**
 * Records attempts; answers the ids that were new. An attempt already there was recorded by a
 * settle whose COMMIT went through while its answer was lost (a reset connection): the settle is
 * being tried again, and that attempt must not be counted twice. An id that names another
 * delivery's attempt is an error (as on SQLite).
 */
export async function insertAttempts(
  q: Query,
  attempts: readonly Attempt[],
  /** Subscriptions whose due locks the statement also takes, shared (a settle about to lower their hints). */
  lockDue: readonly string[] = [],
): Promise<Set<string>> {
  if (attempts.length === 0) return new Set();
  const rows = await q<{ id: string }>(
    `INSERT INTO attempts (id, delivery_id, started_at, duration_ms, response_status_code, response_headers, response_body, error)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::int[], $6::text[], $7::text[], $8::text[])
     WHERE (SELECT count(${DUE_LOCK_SHARED("l.id")}) FROM unnest($9::text[]) AS l(id)) >= 0
     ON CONFLICT (id) DO NOTHING RETURNING id`,
    [...attemptColumns(attempts), [...new Set(lockDue)].sort()],
  );
  const inserted = new Set(rows.map((row) => row.id));
  if (inserted.size < attempts.length) {
    // Recorded already: the same settlement again, unless the id names another delivery's attempt.
    const others = attempts.filter((a) => !inserted.has(a.id));
    const [clash] = await q<{ id: string }>(
      `SELECT a.id FROM attempts a JOIN unnest($1::text[], $2::text[]) AS u(id, delivery_id) ON a.id = u.id
       WHERE a.delivery_id <> u.delivery_id LIMIT 1`,
      [others.map((a) => a.id), others.map((a) => a.deliveryId)],
    );
    if (clash) throw new Error(`attempt ${clash.id} is recorded for another delivery`);
  }
  return inserted;
}

/** The attempts table's columns of these attempts, as arrays in its column order. */
export function attemptColumns(attempts: readonly Attempt[]): unknown[][] {
  return [
    attempts.map((a) => a.id),
    attempts.map((a) => a.deliveryId),
    attempts.map((a) => a.startedAt),
    attempts.map((a) => Math.round(a.durationMs)),
    attempts.map((a) => a.responseStatusCode),
    attempts.map((a) => (a.responseHeaders === null ? null : JSON.stringify(a.responseHeaders))),
    attempts.map((a) => (a.responseBody === null ? null : stripNul(a.responseBody))),
    attempts.map((a) => a.error),
  ];
}

/** A receiver's body may hold NUL characters, which a PostgreSQL text column cannot: shown as U+FFFD. */
const stripNul = (text: string) => (text.includes("\u0000") ? text.replaceAll("\u0000", "\ufffd") : text);

export function selectAttemptPage(
  q: Query,
  deliveryId: string,
  page: PageQuery<"started_at">,
): Promise<Page<Attempt>> {
  return keysetPage(
    q,
    {
      select: "SELECT a.* FROM attempts a",
      where: ["a.delivery_id = ?"],
      params: [deliveryId],
      column: "a.started_at",
      idColumn: "a.id",
      descending: false,
      map: toAttempt,
    },
    page,
  );
}
