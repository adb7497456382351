// What `hookd storage copy` asks of its PostgreSQL target beyond the Store contract: whether the
// database holds tables that are not hookd's (checked before the store migrates it), whether a
// hookd instance runs on it, a lock so two copies cannot interleave, and emptying what a failed copy
// wrote. The Store has no call for these (they exist only for a one-off offline copy), so this is
// the one SQL outside src/store; if the contract grows `clearImported()` and friends, it moves there.
// One reserved connection for all of it: the advisory lock belongs to that session and ends with it
// (also when the process dies), so a crashed copy never leaves the target locked.
import { type ReservedSQL, SQL } from "bun";
import { TABLES } from "../store/store.ts";

/** Tables only the PostgreSQL driver has: with `schema_migrations`, the mark of a hookd database. */
const HOOKD_MARKERS = ["schema_migrations", "fanout_version"];

export interface CopyTarget {
  /** Tables of the current schema that are not hookd's (none when the schema is hookd's or empty). */
  foreignTables(): Promise<string[]>;
  /** Takes the copy lock for as long as this connection lives; false when another copy holds it. */
  lock(): Promise<boolean>;
  /** hookd instances whose heartbeat has not expired (0 before the first migration). */
  liveInstances(): Promise<number>;
  /** Empties every table a copy writes, in one statement (so all or nothing). */
  clear(): Promise<void>;
  /** Removes one setting (the copy's in-progress marker once the copy is complete). */
  deleteSetting(key: string): Promise<void>;
  close(): Promise<void>;
}

export async function openCopyTarget(url: string, options: { timeoutMs: number }): Promise<CopyTarget> {
  const sql = new SQL({
    url,
    max: 1,
    connectionTimeout: Math.max(1, Math.ceil(options.timeoutMs / 1000)),
    connection: {
      statement_timeout: options.timeoutMs,
      // TRUNCATE waits for every other session's locks on the tables: give up rather than hang.
      lock_timeout: options.timeoutMs,
      application_name: "hookd storage copy",
    },
  });
  let conn: ReservedSQL;
  try {
    conn = await sql.reserve();
  } catch (error) {
    await sql.close({ timeout: 1 });
    throw error;
  }
  const query = async <T>(text: string, params: unknown[] = []) =>
    (await (params.length === 0 ? conn.unsafe(text) : conn.unsafe(text, params))) as T[];

  return {
    async foreignTables() {
      const rows = await query<{ name: string }>(
        `SELECT table_name AS name FROM information_schema.tables
          WHERE table_schema = current_schema() ORDER BY table_name`,
      );
      const names = rows.map((r) => r.name);
      if (HOOKD_MARKERS.every((marker) => names.includes(marker))) return [];
      return names;
    },

    async lock() {
      const [row] = await query<{ locked: boolean }>(
        "SELECT pg_try_advisory_lock(hashtext('hookd.storage-copy'), hashtext(current_schema())) AS locked",
      );
      return row?.locked === true;
    },

    async liveInstances() {
      const [exists] = await query<{ found: boolean }>(
        "SELECT to_regclass('instances') IS NOT NULL AS found",
      );
      if (!exists?.found) return 0;
      const [row] = await query<{ n: number }>(
        "SELECT count(*)::int AS n FROM instances WHERE expires_at > now()",
      );
      return row?.n ?? 0;
    },

    async clear() {
      // The target was checked empty before the copy wrote anything, so everything in these tables
      // is the copy's own. The marker goes with settings.
      await query(`TRUNCATE ${TABLES.join(", ")}`);
    },

    async deleteSetting(key) {
      await query("DELETE FROM settings WHERE key = $1", [key]);
    },

    async close() {
      try {
        conn.release();
      } finally {
        await sql.close({ timeout: 1 });
      }
    },
  };
}
