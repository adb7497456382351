// SQL for events and idempotency keys on PostgreSQL. Idempotency is insert-or-return in one
// statement: two instances given the same key at once create one event, and the second request
// waits for the first one's commit and answers with its events (or a conflict for another body).
import { type DeliveryStatus, eventStatus } from "../../domain/delivery.ts";
import type { Mode } from "../../domain/mode.ts";
import type { EventFilter, EventRecord, EventWithStatus, NewEvent, Page, PageQuery } from "../store.ts";
import type { Query } from "./client.ts";
import type { NewDelivery } from "./deliveries.ts";
import { FANOUT_VERSION } from "./fanout.ts";
import { keysetPage, num } from "./keyset.ts";
import type { DbTime } from "./time.ts";

interface EventRow {
  id: string;
  tenant_id: string;
  mode: Mode;
  type: string;
  account_id: string | null;
  payload: string;
  deliveries_count: number;
  created_at: string | number;
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
  createdAt: num(row.created_at),
});

const toEventWithStatus = (row: EventRow): EventWithStatus => {
  const counts = JSON.parse(row.counts ?? "{}") as Partial<Record<DeliveryStatus, number>>;
  return { ...toEvent(row), deliveryCounts: counts, status: eventStatus(counts) };
};

const COUNTS = `(SELECT json_object_agg(s.status, s.n)::text FROM
  (SELECT d.status, count(*) AS n FROM deliveries d WHERE d.event_id = e.id GROUP BY d.status) s) AS counts`;
const SELECT_WITH_STATUS = `SELECT e.*, ${COUNTS} FROM events e`;

/** Inserts events (all of one tenant and mode) in one statement. */
export async function insertEvents(
  q: Query,
  tenantId: string,
  mode: Mode,
  events: readonly { event: NewEvent; deliveriesCount: number }[],
): Promise<EventRecord[]> {
  if (events.length === 0) return [];
  await q(
    `INSERT INTO events (id, tenant_id, mode, type, account_id, payload, deliveries_count, created_at)
     SELECT id, $1, $8, type, account_id, payload, deliveries_count, created_at
     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[])
       AS u(id, type, account_id, payload, deliveries_count, created_at)`,
    [
      tenantId,
      events.map((e) => e.event.id),
      events.map((e) => e.event.type),
      events.map((e) => e.event.accountId),
      events.map((e) => e.event.payload),
      events.map((e) => e.deliveriesCount),
      events.map((e) => e.event.createdAt),
      mode,
    ],
  );
  return events.map(({ event, deliveriesCount }) => ({ ...event, tenantId, mode, deliveriesCount }));
}

/**
 * Ingests' writes in one statement: their events, their deliveries, and the hints lowered where
 * they are later than the new deliveries (without a row lock where they are not). The caller took
 * the targets' due locks shared in an earlier statement (deliveries.ts). Answers the fan-out
 * version this statement saw, and whether it wrote.
 */
export async function insertIngested(
  q: Query,
  time: DbTime,
  events: readonly IngestedEvent[],
  deliveries: readonly IngestedDelivery[],
  due: ReadonlyMap<string, number>,
  /**
   * Write only if this request holds its idempotency key (the key's row names these events): the
   * statement may be sent before the answer of the one that took the key (pipelined).
   */
  guard?: { tenantId: string; mode: Mode; key: string; eventIds: readonly string[] },
): Promise<{ version: string; written: boolean }> {
  const dueIds = [...due.keys()].sort();
  const ok = guard
    ? "EXISTS (SELECT 1 FROM idempotency_keys WHERE tenant_id = $19 AND mode = $20 AND key = $21 AND event_ids = $22)"
    : "true";
  const [row] = await q<{ version: string | number; written: boolean }>(
    `WITH ok AS (SELECT ${ok} AS yes),
     ev AS (
       INSERT INTO events (id, tenant_id, type, account_id, payload, deliveries_count, created_at, mode)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[], $17::text[])
       WHERE (SELECT yes FROM ok)
       RETURNING 1),
     dl AS (
       INSERT INTO deliveries (id, tenant_id, mode, event_id, webhook_id, event_type, status, next_attempt_at, created_at, updated_at)
       SELECT id, tenant_id, mode, event_id, webhook_id, event_type, 'pending', due, created, created
       FROM unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::bigint[], $18::text[])
         AS u(id, tenant_id, event_id, webhook_id, event_type, due, created, mode)
       WHERE (SELECT yes FROM ok)
       RETURNING 1),
     lowered AS (
       UPDATE webhooks w SET next_due_at = u.at
       FROM unnest($15::text[], $16::bigint[]) AS u(id, at)
       WHERE w.id = u.id AND (w.next_due_at IS NULL OR w.next_due_at > u.at) AND (SELECT yes FROM ok)
       RETURNING 1)
     SELECT ${FANOUT_VERSION} AS version, (SELECT yes FROM ok) AS written`,
    [
      ...ingestedColumns(time, events, deliveries).flat(),
      dueIds,
      dueIds.map((id) => due.get(id)),
      events.map((e) => e.mode),
      deliveries.map((d) => d.mode),
      ...(guard ? [guard.tenantId, guard.mode, guard.key, JSON.stringify(guard.eventIds)] : []),
    ],
  );
  return { version: String(row?.version), written: row?.written === true };
}

type IngestedEvent = { tenantId: string; mode: Mode; event: NewEvent; deliveriesCount: number };
type IngestedDelivery = NewDelivery & { tenantId: string; mode: Mode };

/**
 * The events' and the deliveries' columns of an ingest's writes, as arrays (insertIngested,
 * callIngest); each side without its mode, which the two statements place differently.
 */
function ingestedColumns(
  time: DbTime,
  events: readonly IngestedEvent[],
  deliveries: readonly IngestedDelivery[],
): [unknown[][], unknown[][]] {
  const eventColumns = [
    events.map((e) => e.event.id),
    events.map((e) => e.tenantId),
    events.map((e) => e.event.type),
    events.map((e) => e.event.accountId),
    events.map((e) => e.event.payload),
    events.map((e) => e.deliveriesCount),
    events.map((e) => e.event.createdAt),
  ];
  const deliveryColumns = [
    deliveries.map((d) => d.id),
    deliveries.map((d) => d.tenantId),
    deliveries.map((d) => d.eventId),
    deliveries.map((d) => d.webhookId),
    deliveries.map((d) => d.eventType),
    deliveries.map((d) => time.toDb(d.now)),
    deliveries.map((d) => d.now),
  ];
  return [eventColumns, deliveryColumns];
}

/**
 * A group of ingests in one call of hookd_ingest() (migration 0007): the locks, the fan-out
 * version check and every write in one statement that commits alone, one round trip. Written only
 * when the database's fan-out version is `expected` (the copy the targets came from); answers the
 * version it saw. `targets` are the subscriptions whose due locks it takes, shared, sorted.
 */
export async function callIngest(
  q: Query,
  time: DbTime,
  expected: string,
  targets: readonly string[],
  events: readonly IngestedEvent[],
  deliveries: readonly IngestedDelivery[],
  due: ReadonlyMap<string, number>,
  stats: readonly unknown[][],
  shard: number,
): Promise<{ version: string; written: boolean }> {
  const [eventColumns, deliveryColumns] = ingestedColumns(time, events, deliveries);
  const dueIds = [...due.keys()].sort();
  const params = [
    expected,
    targets,
    ...eventColumns,
    events.map((e) => e.mode),
    ...deliveryColumns,
    deliveries.map((d) => d.mode),
    dueIds,
    dueIds.map((id) => due.get(id)),
    ...stats,
    shard,
  ];
  const placeholders = params.map((_, i) => `$${i + 1}`).join(", ");
  const [row] = await q<{ version: string | number }>(
    `SELECT hookd_ingest(${placeholders}) AS version`,
    params,
  );
  const version = String(row?.version);
  return { version, written: version === expected };
}

export async function selectEvents(q: Query, ids: readonly string[]): Promise<EventRecord[]> {
  if (ids.length === 0) return [];
  const rows = await q<EventRow>("SELECT * FROM events WHERE id = ANY($1::text[])", [ids]);
  const byId = new Map(rows.map((row) => [row.id, toEvent(row)]));
  return ids.map((id) => byId.get(id)).filter((e): e is EventRecord => e !== undefined);
}

export async function selectEventWithStatus(
  q: Query,
  id: string,
  tenantId?: string,
): Promise<EventWithStatus | null> {
  const rows =
    tenantId === undefined
      ? await q<EventRow>(`${SELECT_WITH_STATUS} WHERE e.id = $1`, [id])
      : await q<EventRow>(`${SELECT_WITH_STATUS} WHERE e.id = $1 AND e.tenant_id = $2`, [id, tenantId]);
  return rows[0] ? toEventWithStatus(rows[0]) : null;
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
  q: Query,
  filter: EventFilter,
  page: PageQuery<"-created_at">,
): Promise<Page<EventWithStatus>> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: unknown) => {
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
    q,
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

export interface IdempotencyKey {
  key: string;
  requestHash: string;
  expiresAt: number;
}

/**
 * Takes the key for this request unless a live one holds it. When another transaction holds the
 * key, this waits for it to end. Answers null when taken, else the first request's hash and events.
 * A key past its window is taken over by the upsert itself; one whose events retention removed (its
 * first response cannot be replayed) is taken over by a second statement, which sees the events
 * as committed after the wait (the upsert's own snapshot predates it, and would see a concurrent
 * first request's events as missing).
 */
export async function claimIdempotencyKey(
  q: Query,
  tenantId: string,
  mode: Mode,
  key: IdempotencyKey,
  eventIds: readonly string[],
  now: number,
): Promise<{ requestHash: string; eventIds: string[] } | null> {
  const taken = await q(
    `${IDEMPOTENCY_UPSERT(1)} RETURNING 1`,
    idempotencyParams(tenantId, mode, key, eventIds, now),
  );
  if (taken.length > 0) return null;
  return idempotencyHeld(q, tenantId, mode, key, eventIds);
}

/** The upsert that takes a key unless a live one holds it, its parameters from $`from` (seven). */
export const IDEMPOTENCY_UPSERT = (from: number) => {
  const $ = (i: number) => `$${from + i}`;
  return `INSERT INTO idempotency_keys AS k (tenant_id, key, request_hash, event_ids, expires_at, mode)
     VALUES (${$(0)}, ${$(1)}, ${$(2)}, ${$(3)}, ${$(4)}, ${$(6)})
     ON CONFLICT (tenant_id, mode, key) DO UPDATE SET request_hash = excluded.request_hash,
       event_ids = excluded.event_ids, expires_at = excluded.expires_at
     WHERE k.expires_at <= ${$(5)}`;
};

export const idempotencyParams = (
  tenantId: string,
  mode: Mode,
  key: IdempotencyKey,
  eventIds: readonly string[],
  now: number,
): unknown[] => [tenantId, key.key, key.requestHash, JSON.stringify(eventIds), key.expiresAt, now, mode];

/**
 * After IDEMPOTENCY_UPSERT did not take the key: the first request's hash and events, or null
 * when the key is taken over after all (its events are gone).
 */
export async function idempotencyHeld(
  q: Query,
  tenantId: string,
  mode: Mode,
  key: IdempotencyKey,
  eventIds: readonly string[],
): Promise<{ requestHash: string; eventIds: string[] } | null> {
  const params = [tenantId, key.key, key.requestHash, JSON.stringify(eventIds), key.expiresAt, mode];
  // The upsert left the row locked: this transaction decides what happens to it.
  const [first] = await q<{ request_hash: string; event_ids: string; missing: boolean }>(
    `SELECT request_hash, event_ids, EXISTS (SELECT 1 FROM json_array_elements_text(k.event_ids::json) j(id)
       WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = j.id)) AS missing
     FROM idempotency_keys k WHERE tenant_id = $1 AND mode = $3 AND key = $2`,
    [tenantId, key.key, mode],
  );
  if (!first) return null;
  if (first.missing) {
    await q(
      "UPDATE idempotency_keys SET request_hash = $3, event_ids = $4, expires_at = $5 WHERE tenant_id = $1 AND mode = $6 AND key = $2",
      params,
    );
    return null;
  }
  return { requestHash: first.request_hash, eventIds: JSON.parse(first.event_ids) };
}

export async function setIdempotencyEvents(
  q: Query,
  tenantId: string,
  mode: Mode,
  key: string,
  eventIds: readonly string[],
) {
  await q("UPDATE idempotency_keys SET event_ids = $1 WHERE tenant_id = $2 AND mode = $4 AND key = $3", [
    JSON.stringify(eventIds),
    tenantId,
    key,
    mode,
  ]);
}

export async function deleteExpiredIdempotencyKeys(q: Query, now: number, limit: number): Promise<number> {
  const rows = await q(
    `DELETE FROM idempotency_keys WHERE (tenant_id, mode, key) IN
       (SELECT tenant_id, mode, key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2) RETURNING 1`,
    [now, limit],
  );
  return rows.length;
}
