// SQL for events and idempotency keys.
import type { Database, SQLQueryBindings } from "bun:sqlite";
import { type DeliveryStatus, eventStatus } from "../../domain/delivery.ts";
import type { Mode } from "../../domain/mode.ts";
import type { EventFilter, EventRecord, EventWithStatus, NewEvent, Page, PageQuery } from "../store.ts";
import { keysetPage } from "./keyset.ts";
import { perRows, ROWS_PER_INSERT, runInChunks, valuesList } from "./statements.ts";

interface EventRow {
  id: string;
  tenant_id: string;
  mode: Mode;
  type: string;
  account_id: string | null;
  payload: string;
  deliveries_count: number;
  created_at: number;
  counts?: string | null;
}

const toEvent = (row: EventRow): EventRecord => ({
  id: row.id,
  tenantId: row.tenant_id,
  mode: row.mode,
  type: row.type,
  accountId: row.account_id,
  payload: row.payload,
  deliveriesCount: row.deliveries_count,
  createdAt: row.created_at,
});

const toEventWithStatus = (row: EventRow): EventWithStatus => {
  const counts = JSON.parse(row.counts ?? "{}") as Partial<Record<DeliveryStatus, number>>;
  return { ...toEvent(row), deliveryCounts: counts, status: eventStatus(counts) };
};

// Per-status counts of the event's deliveries, as a JSON object.
const COUNTS = `(SELECT json_group_object(status, n) FROM
  (SELECT d.status, count(*) AS n FROM deliveries d WHERE d.event_id = e.id GROUP BY d.status)) AS counts`;
const SELECT_WITH_STATUS = `SELECT e.*, ${COUNTS} FROM events e`;

const INSERT_EVENTS = perRows(
  (rows) =>
    `INSERT INTO events (id, tenant_id, mode, type, account_id, payload, deliveries_count, created_at)
     VALUES ${valuesList(rows, "(?, ?, ?, ?, ?, ?, ?, ?)")}`,
);

/** Events of one tenant and mode, ROWS_PER_INSERT to a statement. */
export function insertEvents(
  db: Database,
  tenantId: string,
  mode: Mode,
  rows: readonly { event: NewEvent; deliveriesCount: number }[],
): EventRecord[] {
  runInChunks(db, rows, ROWS_PER_INSERT, INSERT_EVENTS, ({ event, deliveriesCount }) => [
    event.id,
    tenantId,
    mode,
    event.type,
    event.accountId,
    event.payload,
    deliveriesCount,
    event.createdAt,
  ]);
  return rows.map(({ event, deliveriesCount }) => ({ ...event, tenantId, mode, deliveriesCount }));
}

export function insertEvent(
  db: Database,
  tenantId: string,
  mode: Mode,
  event: NewEvent,
  deliveriesCount: number,
): EventRecord {
  return insertEvents(db, tenantId, mode, [{ event, deliveriesCount }])[0] as EventRecord;
}

export function selectEvents(db: Database, ids: readonly string[]): EventRecord[] {
  const query = db.query<EventRow, [string]>("SELECT * FROM events WHERE id = ?");
  return ids
    .map((id) => query.get(id))
    .filter((row): row is EventRow => row !== null)
    .map(toEvent);
}

export function selectEventWithStatus(db: Database, id: string, tenantId?: string): EventWithStatus | null {
  const row =
    tenantId === undefined
      ? db.query<EventRow, [string]>(`${SELECT_WITH_STATUS} WHERE e.id = ?`).get(id)
      : db
          .query<EventRow, [string, string]>(`${SELECT_WITH_STATUS} WHERE e.id = ? AND e.tenant_id = ?`)
          .get(id, tenantId);
  return row ? toEventWithStatus(row) : null;
}

// The aggregate status as SQL, for the `status` filter; mirrors eventStatus().
const QUEUED =
  "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status IN ('pending', 'retrying'))";
const FAILED =
  "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status IN ('failed', 'exhausted'))";
const SUCCEEDED = "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = 'success')";
const STATUS_SQL: Record<string, string> = {
  no_subscribers: "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)",
  pending: QUEUED,
  failed: `EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) AND NOT ${QUEUED} AND (${FAILED} OR NOT ${SUCCEEDED})`,
  delivered: `${SUCCEEDED} AND NOT ${QUEUED} AND NOT ${FAILED}`,
};

export function selectEventPage(
  db: Database,
  filter: EventFilter,
  page: PageQuery<"-created_at">,
): Page<EventWithStatus> {
  const where: string[] = [];
  const params: SQLQueryBindings[] = [];
  const add = (clause: string, value: SQLQueryBindings) => {
    where.push(clause);
    params.push(value);
  };
  if (filter.tenantId !== undefined) add("e.tenant_id = ?", filter.tenantId);
  if (filter.mode !== undefined) add("e.mode = ?", filter.mode);
  if (filter.type !== undefined) add("e.type = ?", filter.type);
  if (filter.accountId !== undefined) add("e.account_id = ?", filter.accountId);
  if (filter.from !== undefined) add("e.created_at >= ?", filter.from);
  if (filter.to !== undefined) add("e.created_at < ?", filter.to);
  if (filter.status !== undefined) where.push(STATUS_SQL[filter.status] as string);
  return keysetPage(
    db,
    {
      select: SELECT_WITH_STATUS,
      where,
      params,
      column: "e.created_at",
      idColumn: "e.id",
      descending: true,
      map: toEventWithStatus,
    },
    page,
  );
}

interface IdempotencyRow {
  request_hash: string;
  event_ids: string;
  expires_at: number;
}

/**
 * A live key, unless retention already removed the events it answers with (retention shorter than
 * the idempotency window): then the first response cannot be replayed, and the key counts as free.
 */
export function selectIdempotencyKey(
  db: Database,
  tenantId: string,
  mode: Mode,
  key: string,
  now: number,
): IdempotencyRow | null {
  return db
    .query<IdempotencyRow, [string, Mode, string, number]>(
      `SELECT request_hash, event_ids, expires_at FROM idempotency_keys k
       WHERE tenant_id = ? AND mode = ? AND key = ? AND expires_at > ?
         AND NOT EXISTS (SELECT 1 FROM json_each(k.event_ids) j WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = j.value))`,
    )
    .get(tenantId, mode, key, now);
}

export function upsertIdempotencyKey(
  db: Database,
  tenantId: string,
  mode: Mode,
  key: { key: string; requestHash: string; expiresAt: number },
  eventIds: readonly string[],
): void {
  db.query(
    `INSERT INTO idempotency_keys (tenant_id, mode, key, request_hash, event_ids, expires_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (tenant_id, mode, key) DO UPDATE SET request_hash = excluded.request_hash,
       event_ids = excluded.event_ids, expires_at = excluded.expires_at`,
  ).run(tenantId, mode, key.key, key.requestHash, JSON.stringify(eventIds), key.expiresAt);
}

export function deleteExpiredIdempotencyKeys(db: Database, now: number, limit: number): number {
  return db
    .query(
      `DELETE FROM idempotency_keys WHERE (tenant_id, mode, key) IN
        (SELECT tenant_id, mode, key FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)`,
    )
    .run(now, limit).changes;
}
