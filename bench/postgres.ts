// PostgreSQL for the bench: which server (HOOKD_BENCH_POSTGRES_URL, else HOOKD_TEST_POSTGRES_URL),
// whether it answers, a fresh database per scenario run (CREATE DATABASE, then DROP DATABASE …
// WITH (FORCE) in the scenario's finally), and the raw ceilings a PostgreSQL figure is explained by:
// single-row commits over hookd's pool size and 500-event batch inserts into hookd's own schema.
// Only 127.0.0.1 / localhost servers are used.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import { ROOT } from "./hookd.ts";
import { eventData } from "./load.ts";
import { sleep } from "./stats.ts";

export const POSTGRES_URL_SOURCE = process.env.HOOKD_BENCH_POSTGRES_URL
  ? "HOOKD_BENCH_POSTGRES_URL"
  : process.env.HOOKD_TEST_POSTGRES_URL
    ? "HOOKD_TEST_POSTGRES_URL"
    : null;
export const POSTGRES_URL =
  process.env.HOOKD_BENCH_POSTGRES_URL || process.env.HOOKD_TEST_POSTGRES_URL || null;

/** hookd's default storage.postgres.pool_size: the concurrency a single instance can use. */
export const HOOKD_POOL_SIZE = 10;

export function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]";
}

/** The server URL with `database` in place of the one it names. */
export function databaseUrl(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Whether a PostgreSQL answers at `url` within `timeoutMs` (one `SELECT 1`). */
export async function reachable(url: string, timeoutMs = 3000): Promise<{ ok: boolean; why?: string }> {
  if (!isLoopback(url)) return { ok: false, why: "the bench only talks to 127.0.0.1" };
  const sql = new SQL({ url, max: 1, connectionTimeout: Math.ceil(timeoutMs / 1000), idleTimeout: 1 });
  try {
    const ok = await Promise.race([
      sql.unsafe("SELECT 1").then(() => true),
      sleep(timeoutMs).then(() => false),
    ]);
    return ok ? { ok } : { ok, why: `no answer within ${timeoutMs} ms` };
  } catch (error) {
    return { ok: false, why: (error as Error).message };
  } finally {
    await sql.close({ timeout: 0 }).catch(() => {});
  }
}

let admin: SQL | null = null;
let serial = 0;

function adminClient(base: string): SQL {
  admin ??= new SQL({ url: base, max: 2, idleTimeout: 10, connectionTimeout: 5 });
  return admin;
}

export async function closeAdmin(): Promise<void> {
  const a = admin;
  admin = null;
  await a?.close({ timeout: 1 }).catch(() => {});
}

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database for one scenario run; `drop()` removes it (WITH (FORCE): sessions end). */
export async function createDatabase(base: string, runId: string, tag: string): Promise<BenchDatabase> {
  const name = `hookd_bench_${runId}_${tag.replace(/[^a-z0-9]/gi, "_").toLowerCase()}_${++serial}`;
  const sql = adminClient(base);
  await sql.unsafe(`CREATE DATABASE ${name}`);
  let dropped = false;
  return {
    name,
    url: databaseUrl(base, name),
    async drop() {
      if (dropped) return;
      dropped = true;
      await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    },
  };
}

/** PostgreSQL settings worth recording next to the figures. */
export async function serverInfo(url: string): Promise<Record<string, string>> {
  const sql = new SQL({ url, max: 1, idleTimeout: 1 });
  try {
    const rows = (await sql.unsafe(
      `SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'synchronous_commit', 'fsync',
         'shared_buffers', 'max_connections', 'wal_level', 'commit_delay', 'shared_preload_libraries',
         'max_wal_size', 'work_mem', 'wal_sync_method', 'full_page_writes')`,
    )) as { name: string; setting: string }[];
    return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
  } finally {
    await sql.close({ timeout: 0 }).catch(() => {});
  }
}

/** hookd's PostgreSQL schema, from the migration the binary embeds. */
export function hookdSchema(): string {
  return readFileSync(join(ROOT, "src", "store", "postgres", "migrations", "0001_init.sql"), "utf8");
}

/**
 * Single-row INSERT commits (synchronous_commit as the server has it) from `connections` workers,
 * each on its own connection, for `ms`: transactions per second. The ceiling a per-event ingest
 * transaction is compared with (hookd's pool is 10 connections). `hotRow`: each transaction also
 * updates one shared row, as every ingest to one subscription updates that subscription's row.
 */
export async function pgCommitRate(
  url: string,
  connections: number,
  ms: number,
  hotRow = false,
): Promise<number> {
  const sql = new SQL({ url, max: connections, idleTimeout: 5 });
  try {
    await sql.unsafe(
      "CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, at bigint NOT NULL, body text)",
    );
    await sql.unsafe(
      "CREATE TABLE IF NOT EXISTS bench_hot (id int PRIMARY KEY, at bigint); INSERT INTO bench_hot VALUES (1, 0) ON CONFLICT DO NOTHING",
    );
    const body = JSON.stringify(eventData(0));
    // Warm every connection.
    await Promise.all(Array.from({ length: connections }, () => sql.unsafe("SELECT 1")));
    let n = 0;
    const t0 = performance.now();
    const end = t0 + ms;
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < end && n < 10_000_000) {
          if (hotRow) {
            // The shape of an ingest on one subscription: the insert, then the subscription's row
            // locked and updated, held until the commit has been flushed.
            await sql.begin(async (tx) => {
              await tx.unsafe("INSERT INTO bench_commit (at, body) VALUES ($1, $2)", [Date.now(), body]);
              await tx.unsafe("UPDATE bench_hot SET at = least(at, $1) WHERE id = 1", [Date.now()]);
            });
          } else {
            await sql.unsafe("INSERT INTO bench_commit (at, body) VALUES ($1, $2)", [Date.now(), body]);
          }
          n++;
        }
      }),
    );
    return (n * 1000) / (performance.now() - t0);
  } finally {
    await sql.close({ timeout: 1 }).catch(() => {});
  }
}

/**
 * 500 events and their deliveries per transaction into hookd's schema (the statements hookd's
 * store uses: unnest arrays), `concurrency` transactions at once, for `ms`: events per second.
 */
export async function pgBatchInsertRate(url: string, concurrency: number, ms: number): Promise<number> {
  const sql = new SQL({ url, max: concurrency, idleTimeout: 5 });
  const batch = 500;
  try {
    await sql.unsafe(hookdSchema());
    let n = 0;
    let seq = 0;
    const t0 = performance.now();
    const end = t0 + ms;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end && n < 50_000_000) {
          const from = seq;
          seq += batch;
          const ids = Array.from({ length: batch }, (_, i) => `evt_${String(from + i).padStart(26, "0")}`);
          const now = Date.now();
          const payloads = ids.map(
            (id, i) =>
              `{"id":"${id}","type":"bench.event","timestamp":"${new Date(now).toISOString()}","data":${JSON.stringify(eventData(from + i))}}`,
          );
          await sql.begin(async (tx) => {
            await tx.unsafe(
              `INSERT INTO events (id, tenant_id, type, account_id, payload, deliveries_count, created_at)
               SELECT id, 'default', 'bench.event', NULL, payload, 1, $3
               FROM unnest($1::text[], $2::text[]) AS u(id, payload)`,
              [ids, payloads, now],
            );
            await tx.unsafe(
              `INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, event_type, status, next_attempt_at, created_at, updated_at)
               SELECT 'dlv_' || substr(id, 5), 'default', id, 'whk_bench', 'bench.event', 'pending', $2, $2, $2
               FROM unnest($1::text[]) AS u(id)`,
              [ids, now],
            );
          });
          n += batch;
        }
      }),
    );
    return (n * 1000) / (performance.now() - t0);
  } finally {
    await sql.close({ timeout: 1 }).catch(() => {});
  }
}
