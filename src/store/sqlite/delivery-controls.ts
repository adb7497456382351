// SQL for the claim's delivery controls (SPEC §3 "Order", "Rate limit"): a FIFO subscription's
// head and its due-time hint, and a rate-limited subscription's claim log. SQLite has one writer,
// so the claim's transaction serialises every claimer of a subscription.
import type { Database } from "bun:sqlite";
import { parseRateLog, type RateLog } from "../../domain/delivery-rate.ts";

export interface LeasedRow {
  id: string;
  status: string;
  series_attempts: number;
  event_id: string;
  event_type: string;
}

interface FifoState {
  /** The oldest queued delivery (creation order, ties by event id); null when none is queued. */
  head: { rowid: number; at: number; status: string } | null;
  /** The latest end of a live lease on any of its deliveries (a re-queued older one may sit before it). */
  leasedUntil: number | null;
}

function readFifoState(db: Database, webhookId: string, now: number): FifoState {
  const head = db
    .query<{ rowid: number; at: number; status: string }, [string]>(
      `SELECT rowid, next_attempt_at AS at, status FROM deliveries INDEXED BY deliveries_fifo
       WHERE webhook_id = ? AND next_attempt_at IS NOT NULL ORDER BY created_at, event_id LIMIT 1`,
    )
    .get(webhookId);
  if (!head) return { head: null, leasedUntil: null };
  // Future due times under FIFO are the head's retry and live leases alone: a short range.
  const leased = db
    .query<{ until: number | null }, [string, number]>(
      `SELECT max(next_attempt_at) AS until FROM deliveries
       WHERE webhook_id = ? AND next_attempt_at > ? AND lease_owner IS NOT NULL`,
    )
    .get(webhookId, now);
  return { head, leasedUntil: leased?.until ?? null };
}

/** When the head may next be claimed: its due time, or later while another attempt is in flight. */
const fifoDueAt = (state: FifoState): number | null =>
  state.head === null ? null : Math.max(state.head.at, state.leasedUntil ?? state.head.at);

function setDue(db: Database, webhookId: string, at: number | null): void {
  db.query("UPDATE webhooks SET next_due_at = ? WHERE id = ?").run(at, webhookId);
}

/** Sets a FIFO subscription's next_due_at to its head's due time (not the minimum over its queue). */
export function refreshFifoDue(db: Database, webhookId: string, now: number): void {
  setDue(db, webhookId, fifoDueAt(readFifoState(db, webhookId, now)));
}

/** refreshFifoDue() for each of these subscriptions that is FIFO; the others are left as they are. */
export function refreshFifoDueOf(db: Database, webhookIds: Iterable<string>, now: number): void {
  const ordering = db.query<{ ordering: string }, [string]>("SELECT ordering FROM webhooks WHERE id = ?");
  for (const webhookId of webhookIds) {
    if (ordering.get(webhookId)?.ordering === "fifo") refreshFifoDue(db, webhookId, now);
  }
}

/**
 * Leases a FIFO subscription's head when it is due, no other of its attempts is in flight, and (for
 * a retry) the claim may still take retries. Leaves next_due_at at the head's due time either way.
 */
export function leaseFifoHead(
  db: Database,
  webhookId: string,
  now: number,
  lease: { until: number; owner: string },
  retriesAllowed: boolean,
): LeasedRow[] {
  const state = readFifoState(db, webhookId, now);
  const { head } = state;
  if (head === null || head.at > now || state.leasedUntil !== null) {
    setDue(db, webhookId, fifoDueAt(state));
    return [];
  }
  if (head.status === "retrying" && !retriesAllowed) return [];
  const rows = db
    .query<LeasedRow, [number, string, number]>(
      `UPDATE deliveries SET next_attempt_at = ?, lease_owner = ? WHERE rowid = ?
       RETURNING id, status, series_attempts, event_id, event_type`,
    )
    .all(lease.until, lease.owner, head.rowid);
  // Nothing else of it may go until this attempt ends; its settlement lowers the hint again.
  setDue(db, webhookId, lease.until);
  return rows;
}

export function readRateLog(db: Database, webhookId: string): RateLog {
  const row = db
    .query<{ rate_log: string | null }, [string]>("SELECT rate_log FROM webhooks WHERE id = ?")
    .get(webhookId);
  return parseRateLog(row?.rate_log ?? null);
}

export function writeRateLog(db: Database, webhookId: string, log: RateLog): void {
  db.query("UPDATE webhooks SET rate_log = ? WHERE id = ?").run(JSON.stringify(log), webhookId);
}

/** Raises a subscription's next_due_at to `at` while it has something queued (never lowers it). */
export function raiseDue(db: Database, webhookId: string, at: number): void {
  db.query(
    "UPDATE webhooks SET next_due_at = max(next_due_at, ?1) WHERE id = ?2 AND next_due_at IS NOT NULL",
  ).run(at, webhookId);
}
