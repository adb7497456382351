// Writing a large backlog straight into a database hookd created: N events, one pending delivery
// each, spread round-robin over the subscriptions already in it, every one due now; then each
// subscription's next_due_at set to its earliest due time (the claim walks subscriptions by it).
// Secondary indexes are dropped for the bulk insert and rebuilt from their own SQL afterwards.
// The statistics aggregates are written with hookd's own statement (src/store/sqlite/stats.ts): the
// backlog's events, and a day of attempts before it (7 a minute per subscription), so GET /v1/stats
// reads what a busy day leaves behind.
import type { Database } from "bun:sqlite";
import { createStatDeltas } from "../src/domain/stats.ts";
import { addStats } from "../src/store/sqlite/stats.ts";
import { eventData } from "./load.ts";
import { openLikeHookd } from "./sqlite-floor.ts";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A ULID-shaped body (10 time characters, 16 more from `counter`), like hookd's ids. */
export function ulidLike(ms: number, counter: number): string {
  let time = "";
  let rest = ms;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[rest % 32] + time;
    rest = Math.floor(rest / 32);
  }
  let tail = "";
  let c = counter;
  for (let i = 0; i < 16; i++) {
    tail = ALPHABET[c % 32] + tail;
    c = Math.floor(c / 32);
  }
  return time + tail;
}

export interface BacklogWrite {
  webhooks: number;
  seconds: number;
  /** Mean bytes of the event payload (the body every delivery POSTs). */
  payloadBytes: number;
}

export function writeBacklog(path: string, count: number, deadline: number): BacklogWrite {
  const started = performance.now();
  const db = openLikeHookd(path, "off");
  try {
    db.run("PRAGMA cache_size = -262144");
    const webhooks = db
      .query<{ id: string; tenant_id: string }, []>("SELECT id, tenant_id FROM webhooks ORDER BY id")
      .all();
    if (webhooks.length === 0) throw new Error("the database has no subscriptions");
    const indexes = dropIndexes(db, ["events", "deliveries"]);
    const insertEvent = db.query(
      "INSERT INTO events (id, tenant_id, type, account_id, payload, deliveries_count, created_at) VALUES (?, ?, 'bench.event', NULL, ?, 1, ?)",
    );
    const insertDelivery = db.query(
      `INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, event_type, status, next_attempt_at, created_at, updated_at)
       VALUES (?, ?, ?, ?, 'bench.event', 'pending', ?, ?, ?)`,
    );
    const base = Date.now() - count; // one event per millisecond, all due by now
    let payloadBytes = 0;
    const chunk = 50_000;
    for (let from = 0; from < count; from += chunk) {
      if (performance.now() > deadline) throw new Error(`time cap reached after writing ${from} rows`);
      db.transaction(() => {
        for (let i = from; i < Math.min(count, from + chunk); i++) {
          const at = base + i;
          const body = ulidLike(at, i);
          const eventId = `evt_${body}`;
          const webhook = webhooks[i % webhooks.length] as { id: string; tenant_id: string };
          const data = eventData(i);
          const payload = `{"id":"${eventId}","type":"bench.event","timestamp":"${new Date(at).toISOString()}","data":${JSON.stringify(data)}}`;
          payloadBytes += payload.length;
          insertEvent.run(eventId, webhook.tenant_id, payload, at);
          insertDelivery.run(`dlv_${body}`, webhook.tenant_id, eventId, webhook.id, at, at, at);
        }
      })();
    }
    for (const sql of indexes) db.run(sql);
    writeAggregates(db, webhooks, base, count);
    db.run(
      `UPDATE webhooks SET next_due_at = (SELECT min(next_attempt_at) FROM deliveries d
         WHERE d.webhook_id = webhooks.id AND d.next_attempt_at IS NOT NULL)`,
    );
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    return {
      webhooks: webhooks.length,
      seconds: (performance.now() - started) / 1000,
      payloadBytes: payloadBytes / count,
    };
  } finally {
    db.close();
  }
}

/** The aggregates of the backlog's events and of a day of attempts before it, by hookd's own upsert. */
function writeAggregates(
  db: Database,
  webhooks: readonly { id: string; tenant_id: string }[],
  base: number,
  count: number,
): void {
  const MINUTE = 60_000;
  const events = createStatDeltas();
  for (let i = 0; i < count; i++) {
    const webhook = webhooks[i % webhooks.length] as { id: string; tenant_id: string };
    events.event("", webhook.tenant_id, base + i);
    events.event(webhook.id, webhook.tenant_id, base + i);
  }
  db.transaction(() => addStats(db, events.list()))();
  const dayBefore = base - 86_400_000;
  for (let hour = 0; hour < 24; hour++) {
    const attempts = createStatDeltas();
    for (let minute = 0; minute < 60; minute++) {
      const at = dayBefore + (hour * 60 + minute) * MINUTE;
      for (const webhook of webhooks) {
        for (let k = 0; k < 7; k++)
          attempts.attempt(webhook.id, webhook.tenant_id, at + k, k !== 6, 15 + k * 4);
      }
    }
    db.transaction(() => addStats(db, attempts.list()))();
  }
}

/** Drops the secondary indexes of `tables`; returns the SQL that recreates them. */
function dropIndexes(db: Database, tables: string[]): string[] {
  const rows = db
    .query<{ name: string; sql: string }, []>(
      `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
       AND tbl_name IN (${tables.map((t) => `'${t}'`).join(", ")})`,
    )
    .all();
  for (const { name } of rows) db.run(`DROP INDEX "${name}"`);
  return rows.map((r) => r.sql);
}
