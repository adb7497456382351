// SQL for deliveries and their attempts. Every state change names the states it expects in its
// WHERE clause; settlements also name the lease owner.
import type { Database, SQLQueryBindings } from "bun:sqlite";
import type { Attempt, AttemptError, Delivery, DeliveryStatus } from "../../domain/delivery.ts";
import type { Mode } from "../../domain/mode.ts";
import type { DeliveryFilter, Page, PageQuery } from "../store.ts";
import { keysetPage } from "./keyset.ts";
import { perRows, ROWS_PER_INSERT, runInChunks, valuesList } from "./statements.ts";

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
  last_attempt_at: number | null;
  next_attempt_at: number | null;
  signature: string | null;
  created_at: number;
  payload: string;
}

const SELECT = "SELECT d.*, e.payload FROM deliveries d JOIN events e ON e.id = d.event_id";

const toDelivery = (row: DeliveryRow): Delivery => ({
  id: row.id,
  tenantId: row.tenant_id,
  mode: row.mode,
  eventId: row.event_id,
  webhookId: row.webhook_id,
  eventType: row.event_type,
  status: row.status as DeliveryStatus,
  attempts: row.attempts,
  responseStatusCode: row.response_status_code,
  lastAttemptAt: row.last_attempt_at,
  nextAttemptAt: row.next_attempt_at,
  createdAt: row.created_at,
  payload: row.payload,
  signature: row.signature,
});

export type NewDelivery = Pick<
  Delivery,
  "id" | "tenantId" | "mode" | "eventId" | "webhookId" | "eventType"
> & {
  now: number;
  /** Already leased (an ingest's hand-off): to `owner` until `until`. */
  lease?: { owner: string; until: number } | null;
};

const INSERT_DELIVERIES = perRows(
  (rows) =>
    `INSERT INTO deliveries (id, tenant_id, mode, event_id, webhook_id, event_type, status, next_attempt_at, lease_owner, created_at, updated_at)
     VALUES ${valuesList(rows, "(?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)")}`,
);

/** New pending deliveries, due now or already leased, ROWS_PER_INSERT to a statement. */
export function insertDeliveries(db: Database, rows: readonly NewDelivery[]): void {
  runInChunks(db, rows, ROWS_PER_INSERT, INSERT_DELIVERIES, (d) => [
    d.id,
    d.tenantId,
    d.mode,
    d.eventId,
    d.webhookId,
    d.eventType,
    d.lease?.until ?? d.now,
    d.lease?.owner ?? null,
    d.now,
    d.now,
  ]);
}

export function insertDelivery(db: Database, d: NewDelivery): void {
  insertDeliveries(db, [d]);
}

/** Lowers a subscription's next_due_at to `at` (never raises it). */
export function markDueBy(db: Database, webhookId: string, at: number): void {
  db.query("UPDATE webhooks SET next_due_at = min(coalesce(next_due_at, ?1), ?1) WHERE id = ?2").run(
    at,
    webhookId,
  );
}

/** Recomputes a subscription's next_due_at from its queued deliveries. */
export function refreshDue(db: Database, webhookId: string): void {
  db.query(
    `UPDATE webhooks SET next_due_at = (SELECT min(next_attempt_at) FROM deliveries
       WHERE webhook_id = ?1 AND next_attempt_at IS NOT NULL) WHERE id = ?1`,
  ).run(webhookId);
}

export function selectDelivery(db: Database, id: string, tenantId?: string): Delivery | null {
  const row =
    tenantId === undefined
      ? db.query<DeliveryRow, [string]>(`${SELECT} WHERE d.id = ?`).get(id)
      : db
          .query<DeliveryRow, [string, string]>(`${SELECT} WHERE d.id = ? AND d.tenant_id = ?`)
          .get(id, tenantId);
  return row ? toDelivery(row) : null;
}

export function selectDeliveryPage(
  db: Database,
  filter: DeliveryFilter,
  page: PageQuery<"-created_at">,
): Page<Delivery> {
  const where: string[] = [];
  const params: SQLQueryBindings[] = [];
  const add = (clause: string, value: SQLQueryBindings) => {
    where.push(clause);
    params.push(value);
  };
  if (filter.tenantId !== undefined) add("d.tenant_id = ?", filter.tenantId);
  if (filter.mode !== undefined) add("d.mode = ?", filter.mode);
  if (filter.webhookId !== undefined) add("d.webhook_id = ?", filter.webhookId);
  if (filter.eventId !== undefined) add("d.event_id = ?", filter.eventId);
  if (filter.status !== undefined) add("d.status = ?", filter.status);
  return keysetPage(
    db,
    {
      select: SELECT,
      where,
      params,
      column: "d.created_at",
      idColumn: "d.id",
      descending: true,
      map: toDelivery,
    },
    page,
  );
}

/**
 * Ends a subscription's queued deliveries: `cancelled` when it is deleted, `failed` when disabled.
 * Answers how many.
 */
function endQueued(db: Database, webhookId: string, status: "cancelled" | "failed", now: number): number {
  return db
    .query(
      `UPDATE deliveries SET status = ?, next_attempt_at = NULL, lease_owner = NULL, updated_at = ?
       WHERE webhook_id = ? AND status IN ('pending', 'retrying')`,
    )
    .run(status, now, webhookId).changes;
}

export const cancelQueued = (db: Database, webhookId: string, now: number) =>
  endQueued(db, webhookId, "cancelled", now);
export const failQueued = (db: Database, webhookId: string, now: number) =>
  endQueued(db, webhookId, "failed", now);

/** Queues a final delivery again, now, as a new attempt series. */
export function requeue(
  db: Database,
  id: string,
  now: number,
  fromStatuses: readonly DeliveryStatus[],
): boolean {
  const placeholders = fromStatuses.map(() => "?").join(", ");
  return (
    db
      .query(
        `UPDATE deliveries SET status = 'pending', series_attempts = 0, next_attempt_at = ?, lease_owner = NULL, updated_at = ?
         WHERE id = ? AND status IN (${placeholders})`,
      )
      .run(now, now, id, ...fromStatuses).changes > 0
  );
}

export function requeueRange(
  db: Database,
  webhookId: string,
  since: number,
  until: number,
  now: number,
  fromStatuses: readonly DeliveryStatus[],
): number {
  const placeholders = fromStatuses.map(() => "?").join(", ");
  return db
    .query(
      `UPDATE deliveries SET status = 'pending', series_attempts = 0, next_attempt_at = ?, lease_owner = NULL, updated_at = ?
       WHERE webhook_id = ? AND created_at >= ? AND created_at < ? AND status IN (${placeholders})`,
    )
    .run(now, now, webhookId, since, until, ...fromStatuses).changes;
}

interface AttemptRow {
  id: string;
  delivery_id: string;
  started_at: number;
  duration_ms: number;
  response_status_code: number | null;
  response_headers: string | null;
  response_body: string | null;
  error: string | null;
}

const toAttempt = (row: AttemptRow): Attempt => ({
  id: row.id,
  deliveryId: row.delivery_id,
  startedAt: row.started_at,
  durationMs: row.duration_ms,
  responseStatusCode: row.response_status_code,
  responseHeaders: row.response_headers === null ? null : JSON.parse(row.response_headers),
  responseBody: row.response_body,
  error: row.error as AttemptError | null,
});

/**
 * Records an attempt; false when it is recorded already (the same settlement again). An id that
 * names another delivery's attempt is an error, as any other failed insert.
 */
export function insertAttempt(db: Database, a: Attempt): boolean {
  const inserted = db
    .query(
      `INSERT INTO attempts (id, delivery_id, started_at, duration_ms, response_status_code, response_headers, response_body, error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    )
    .run(
      a.id,
      a.deliveryId,
      a.startedAt,
      a.durationMs,
      a.responseStatusCode,
      a.responseHeaders === null ? null : JSON.stringify(a.responseHeaders),
      a.responseBody,
      a.error,
    ).changes;
  if (inserted > 0) return true;
  const held = db
    .query<{ delivery_id: string }, [string]>("SELECT delivery_id FROM attempts WHERE id = ?")
    .get(a.id);
  if (held?.delivery_id !== a.deliveryId) throw new Error(`attempt ${a.id} is recorded for another delivery`);
  return false;
}

export function selectAttemptPage(
  db: Database,
  deliveryId: string,
  page: PageQuery<"started_at">,
): Page<Attempt> {
  return keysetPage(
    db,
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
