// PostgreSQL for tests: HOOKD_TEST_POSTGRES_URL names a server (CI always gives one); each test gets
// a schema of its own in that database (`?search_path=` in its URL, as an operator may give one),
// created empty and dropped when the test file finishes (preload.ts). Schemas, not databases: a
// CREATE DATABASE copies a template and a DROP DATABASE waits for a checkpoint, seconds under load.
// Without the variable, PostgreSQL tests are skipped with one printed line.
import { SQL } from "bun";

export const POSTGRES_URL = process.env.HOOKD_TEST_POSTGRES_URL || null;

const printed = new Set<string>();
/** Prints, once per file, that its PostgreSQL tests are skipped. Answers whether to skip. */
export function skipWithoutPostgres(what: string): boolean {
  if (POSTGRES_URL) return false;
  if (!printed.has(what)) {
    printed.add(what);
    console.log(`${what}: PostgreSQL tests skipped (set HOOKD_TEST_POSTGRES_URL to run them)`);
  }
  return true;
}

const made: string[] = [];
/** Schemas dropped per statement (each holds a lock per table until it commits). */
const DROP_CHUNK = 10;
let admin: SQL | null = null;
let seq = 0;

function adminClient(): SQL {
  if (!POSTGRES_URL) throw new Error("HOOKD_TEST_POSTGRES_URL is not set");
  admin ??= new SQL({ url: POSTGRES_URL, max: 2, idleTimeout: 5 });
  return admin;
}

/** A URL of the test server with `database` in place of the one it names. */
export function databaseUrl(database: string): string {
  const url = new URL(POSTGRES_URL as string);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Creates an empty schema for one test and answers a URL that uses it; dropped when the file ends. */
export async function createTestDatabase(): Promise<string> {
  const name = `hookd_t_${process.pid}_${Date.now().toString(36)}_${++seq}`;
  await adminClient().unsafe(`CREATE SCHEMA ${name}`);
  made.push(name);
  const url = new URL(POSTGRES_URL as string);
  url.searchParams.set("search_path", name);
  return url.toString();
}

/** Drops the schemas this process made (preload.ts, after each file). */
export async function cleanupTestDatabases(): Promise<void> {
  if (!admin) return;
  const names = made.splice(0);
  // A few schemas per statement: one statement for all of them saves round trips, but it takes a
  // lock per table of every schema, and a run's hundreds of schemas exhaust the server's lock table
  // (max_locks_per_transaction: "out of shared memory"), which left every one of them behind.
  for (let i = 0; i < names.length; i += DROP_CHUNK) {
    try {
      await admin.unsafe(`DROP SCHEMA IF EXISTS ${names.slice(i, i + DROP_CHUNK).join(", ")} CASCADE`);
    } catch (error) {
      // Best effort: a leftover test schema is harmless, and the next run names its own.
      console.warn(`test schemas left behind: ${(error as Error).message}`);
    }
  }
  await admin.close({ timeout: 1 });
  admin = null;
}
