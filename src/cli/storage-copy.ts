// `hookd storage copy --from <sqlite file> --to <postgres url>` (SPEC §6): a single-node hookd's whole
// state into an empty PostgreSQL database, through the Store contract's row export and import
// (TABLES order, parents first; at most 500 rows per importRows call), with progress on stderr.
//
// Why a rerun always works: the copy is many transactions (one per batch), so a failure can leave
// part of it behind. Before the first row, the copy checks that every table it writes is empty, and
// stores a marker setting (COPY_MARKER); the marker goes only after the last batch. So whatever a
// marked target holds was written by a copy, and emptying those tables is safe:
// - on a failure (or Ctrl-C) the copy empties them at once, leaving the database as it found it;
// - when it cannot (the database went away, the process was killed), the next run finds the marker,
//   empties them first and starts over.
// Starting over is simpler than resuming, and as correct: the source is a stopped hookd and does
// not change between runs. A target that holds data without the marker is refused untouched. An
// advisory lock (postgres-target.ts) keeps two copies from emptying each other's work.
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { redactUrl } from "../daemon.ts";
import { DatabaseTooNewError } from "../domain/errors.ts";
import { type Clock, systemClock } from "../runtime/clock.ts";
import { createIdGenerator } from "../runtime/ids.ts";
import { cryptoRandom } from "../runtime/random.ts";
import { createPostgresStore } from "../store/postgres/index.ts";
import { createSqliteStore } from "../store/sqlite/index.ts";
import { type Store, type StoredRow, TABLES, type TableName } from "../store/store.ts";
import { type CopyTarget, openCopyTarget } from "./postgres-target.ts";

/** The setting that marks a target as holding an unfinished copy. */
export const COPY_MARKER = "storage_copy_incomplete";
/** Settings that are not state: the readiness probe's write, and the marker. */
const SKIPPED_SETTINGS = new Set(["heartbeat", COPY_MARKER]);
const BATCH_ROWS = 500;
/** A batch is also cut at this much text, so 500 large payloads do not make one huge statement. */
const BATCH_BYTES = 16 * 1024 * 1024;
const TIMEOUT_MS = 60_000;
const PROGRESS_INTERVAL_MS = 1000;
const SQLITE_HEADER = "SQLite format 3\u0000";

export interface StorageCopyOptions {
  from: string;
  to: string;
  /** Where progress and errors go (stderr). */
  write?: (text: string) => void;
  clock?: Clock;
}

/** Thrown between batches after SIGINT/SIGTERM. */
class CopyInterrupted extends Error {}

/** Runs the copy and answers the exit code: 0 copied, 1 refused or failed, 2 bad arguments. */
export async function storageCopy(options: StorageCopyOptions): Promise<number> {
  const write = options.write ?? ((text: string) => process.stderr.write(text));
  const clock = options.clock ?? systemClock;
  const shown = redactUrl(options.to);
  const secrets = passwordOf(options.to);
  /** Text with the URL, and its password in any spelling, redacted (a very short one only as `:pw@`). */
  const scrub = (text: string) => {
    let out = text.split(options.to).join(shown);
    for (const secret of secrets) {
      out = secret.length >= 4 ? out.split(secret).join("***") : out.split(`:${secret}@`).join(":***@");
    }
    return out;
  };
  const say = (line: string) => write(`${scrub(line)}\n`);
  const fail = (line: string, code = 1) => {
    say(`hookd storage copy: ${line}`);
    return code;
  };
  const reason = (error: unknown) => (error instanceof Error ? error.message : String(error));

  if (!isPostgresUrl(options.to)) return fail(`--to must be a postgres:// URL, not '${shown}'`, 2);
  const from = resolve(options.from);
  const problem = checkSqliteFile(from);
  if (problem) return fail(`--from ${from}: ${problem}; nothing was copied`);

  say(`hookd storage copy: ${from} -> ${shown}`);
  let target: CopyTarget;
  try {
    target = await openCopyTarget(options.to, { timeoutMs: TIMEOUT_MS });
  } catch (error) {
    return fail(`cannot connect to ${shown}: ${reason(error)}`);
  }
  let source: Store | null = null;
  let dest: Store | null = null;
  try {
    if (!(await target.lock())) return fail("another hookd storage copy is writing into the target");
    const foreign = await target.foreignTables();
    if (foreign.length > 0) {
      return fail(
        `the target holds tables that are not hookd's (${list(foreign)}); copy into an empty database. Nothing was changed`,
      );
    }
    const live = await target.liveInstances();
    if (live > 0) {
      return fail(
        `${live} hookd instance(s) are running on the target; stop them first. Nothing was changed`,
      );
    }

    const ids = createIdGenerator(clock, cryptoRandom);
    try {
      source = createSqliteStore({ path: from, synchronous: "normal", ids });
    } catch (error) {
      return fail(`cannot open ${from}: ${reason(error)}`);
    }
    try {
      dest = await createPostgresStore({
        url: options.to,
        poolSize: 2,
        statementTimeoutMs: TIMEOUT_MS,
        ids,
        clock,
      });
    } catch (error) {
      if (error instanceof DatabaseTooNewError) return fail(`${shown}: ${error.message}`);
      return fail(`cannot open ${shown}: ${reason(error)}`);
    }

    const unfinished = await dest.getSetting(COPY_MARKER);
    if (unfinished !== null) {
      say(`the target holds an unfinished copy (${unfinished}); emptying it first`);
      await target.clear();
    } else {
      const found = await describeData(dest);
      if (found.length > 0) {
        return fail(
          `the target already holds data (${found.join(", ")}); copy into an empty database. Nothing was changed`,
        );
      }
    }
    return await copyAll(source, dest, target, { from, clock, say, reason });
  } catch (error) {
    return fail(reason(error));
  } finally {
    await source?.close().catch(() => {}); // the copy's outcome is already decided and printed
    await dest?.close().catch(() => {});
    await target.close().catch(() => {});
  }
}

interface CopyContext {
  from: string;
  clock: Clock;
  say: (line: string) => void;
  reason: (error: unknown) => string;
}

async function copyAll(source: Store, dest: Store, target: CopyTarget, ctx: CopyContext): Promise<number> {
  const { clock, say } = ctx;
  const started = clock.now();
  const totals = new Map<TableName, number>();
  for (const table of TABLES) {
    let n = 0;
    for await (const page of pages(source, table)) n += page.length;
    totals.set(table, n);
  }

  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) process.exit(130); // a second signal: the marker stays, and a rerun clears it
    interrupted = true;
    say(`${signal}: stopping after this batch`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  let table: TableName = TABLES[0];
  let copied = 0;
  let all = 0;
  let leased = 0;
  try {
    const marked = await dest.insertSettingIfAbsent(
      COPY_MARKER,
      `from ${ctx.from}, started ${new Date(started).toISOString()}`,
    );
    if (!marked) throw new Error("another copy marked the target at the same moment");
    for (table of TABLES) {
      const total = totals.get(table) ?? 0;
      copied = 0;
      let shownAt = clock.now();
      for await (const page of pages(source, table)) {
        for (const batch of batches(page)) {
          if (interrupted) throw new CopyInterrupted("interrupted");
          await dest.importRows(table, batch);
          copied += batch.length;
          all += batch.length;
          if (table === "deliveries") leased += batch.filter((row) => row.lease_owner !== null).length;
          if (clock.now() - shownAt >= PROGRESS_INTERVAL_MS && copied < total) {
            say(`  ${table}: ${copied}/${total}`);
            shownAt = clock.now();
          }
        }
      }
      say(`  ${table}: ${copied}/${total}`);
    }
    await target.deleteSetting(COPY_MARKER);
  } catch (error) {
    const what = error instanceof CopyInterrupted ? "interrupted" : `failed: ${ctx.reason(error)}`;
    say(`hookd storage copy: ${what} (at ${table}, after ${copied} of its rows)`);
    try {
      await target.clear();
      say("the target was emptied again; run the same command to copy again");
    } catch (clearError) {
      say(
        `the target could not be emptied (${ctx.reason(clearError)}); it is marked as an unfinished copy, and running the same command again empties it first`,
      );
    }
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }

  if (leased > 0) {
    say(
      `note: ${leased} deliveries were leased in ${ctx.from} (hookd did not stop cleanly); they are retried once their leases end`,
    );
  }
  say(
    `copied ${all} rows in ${((clock.now() - started) / 1000).toFixed(1)}s; start hookd with storage.driver: postgres and this database`,
  );
  return 0;
}

/** The source's rows of one table, a page at a time, without the settings that are not state. */
async function* pages(store: Store, table: TableName): AsyncGenerator<StoredRow[]> {
  let after: string | null = null;
  for (;;) {
    const page: { rows: StoredRow[]; last: string | null } = await store.exportRows(table, after, BATCH_ROWS);
    // "Up to" a page: only an empty page (or no key to go on from) says there is nothing more.
    if (page.rows.length === 0) return;
    yield table === "settings"
      ? page.rows.filter((row) => !SKIPPED_SETTINGS.has(String(row.key)))
      : page.rows;
    if (page.last === null) return;
    after = page.last;
  }
}

/** Splits a page into importRows calls of at most BATCH_ROWS rows and about BATCH_BYTES of text. */
function* batches(rows: StoredRow[]): Generator<StoredRow[]> {
  let batch: StoredRow[] = [];
  let bytes = 0;
  for (const row of rows) {
    const size = Object.values(row).reduce<number>((n, v) => n + (typeof v === "string" ? v.length : 8), 0);
    if (batch.length > 0 && (batch.length >= BATCH_ROWS || bytes + size > BATCH_BYTES)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(row);
    bytes += size;
  }
  if (batch.length > 0) yield batch;
}

/** What a target holds, table by table ("webhooks", "settings: admin_key_hash"); empty when nothing. */
async function describeData(store: Store): Promise<string[]> {
  const found: string[] = [];
  for (const table of TABLES) {
    const { rows } = await store.exportRows(table, null, table === "settings" ? 20 : 1);
    if (table === "settings") {
      const keys = rows.map((row) => String(row.key)).filter((key) => !SKIPPED_SETTINGS.has(key));
      if (keys.length > 0) found.push(`settings: ${list(keys)}`);
    } else if (rows.length > 0) found.push(table);
  }
  return found;
}

function checkSqliteFile(path: string): string | null {
  // Checked before opening: SQLite would create a missing or empty file and migrate it.
  if (!existsSync(path)) return "no such file";
  if (!statSync(path).isFile()) return "not a file";
  const header = Buffer.alloc(SQLITE_HEADER.length);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    return `cannot be read (${(error as Error).message})`;
  }
  try {
    const n = readSync(fd, header, 0, header.length, 0);
    if (n < header.length || header.toString("latin1") !== SQLITE_HEADER) return "not a SQLite database";
  } finally {
    closeSync(fd);
  }
  return null;
}

function isPostgresUrl(url: string): boolean {
  try {
    return ["postgres:", "postgresql:"].includes(new URL(url).protocol);
  } catch {
    return false;
  }
}

/** The URL's password as written and decoded, longest first (never printed). */
function passwordOf(url: string): string[] {
  try {
    const raw = new URL(url).password;
    if (!raw) return [];
    return [...new Set([raw, decodeURIComponent(raw)])].sort((a, b) => b.length - a.length);
  } catch {
    return [];
  }
}

const list = (names: string[]) =>
  names.length > 5 ? `${names.slice(0, 5).join(", ")}, …` : names.join(", ");
