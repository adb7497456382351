// Raw bun:sqlite figures with no daemon in the way: the commit rate of single-row transactions, the
// rate of batch inserts into hookd's own schema, and the schema itself (from the migration files, the
// same SQL the binary embeds) for databases the bench writes directly.
import { Database } from "bun:sqlite";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./hookd.ts";
import { deliveryLike } from "./load.ts";

const MIGRATIONS_DIR = join(ROOT, "src", "store", "sqlite", "migrations");

export function migrationSql(): string[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((name) => name.endsWith(".sql"))
    .sort()
    .map((name) => readFileSync(join(MIGRATIONS_DIR, name), "utf8"));
}

/** Opens a database with hookd's pragmas (WAL, the given synchronous). */
export function openLikeHookd(path: string, synchronous: "full" | "normal" | "off"): Database {
  const db = new Database(path, { create: true, strict: true });
  db.run("PRAGMA busy_timeout = 5000");
  db.run("PRAGMA journal_mode = WAL");
  db.run(`PRAGMA synchronous = ${synchronous.toUpperCase()}`);
  db.run("PRAGMA temp_store = MEMORY");
  return db;
}

/** Single-row INSERT transactions, back to back: commits per second. */
export function commitRate(path: string, synchronous: "full" | "normal", durationMs: number): number {
  const db = openLikeHookd(path, synchronous);
  try {
    db.run("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)");
    const insert = db.query("INSERT INTO t (payload) VALUES (?)");
    const { body } = deliveryLike(0, "commit");
    let n = 0;
    const started = performance.now();
    const end = started + durationMs;
    while (performance.now() < end && n < 5_000_000) {
      db.run("BEGIN IMMEDIATE");
      insert.run(body);
      db.run("COMMIT");
      n++;
    }
    return (n * 1000) / (performance.now() - started);
  } finally {
    db.close();
  }
}

/**
 * Batch ingest with no HTTP: `batch` events and one delivery each per transaction, into hookd's
 * schema with its indexes, the rows shaped like hookd's. Events per second.
 */
export function batchInsertRate(
  path: string,
  synchronous: "full" | "normal",
  durationMs: number,
  batch = 500,
): number {
  const db = openLikeHookd(path, synchronous);
  try {
    for (const sql of migrationSql()) db.run(sql);
    const insertEvent = db.query(
      "INSERT INTO events (id, tenant_id, type, account_id, payload, deliveries_count, created_at) VALUES (?, 'default', 'bench.event', NULL, ?, 1, ?)",
    );
    const insertDelivery = db.query(
      `INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, event_type, status, next_attempt_at, created_at, updated_at)
       VALUES (?, 'default', ?, 'wh_floor', 'bench.event', 'pending', ?, ?, ?)`,
    );
    // One body for every row: this measures storage, not JSON encoding.
    const { body } = deliveryLike(0, "floor");
    let n = 0;
    const started = performance.now();
    const end = started + durationMs;
    while (performance.now() < end && n < 10_000_000) {
      const now = Date.now();
      db.transaction(() => {
        for (let i = 0; i < batch; i++, n++) {
          const id = `01FLOOR${String(n).padStart(19, "0")}`;
          insertEvent.run(`evt_${id}`, body, now);
          insertDelivery.run(`dlv_${id}`, `evt_${id}`, now, now, now);
        }
      }).immediate();
    }
    return (n * 1000) / (performance.now() - started);
  } finally {
    db.close();
  }
}
