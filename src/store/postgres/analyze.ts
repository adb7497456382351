// The planner's statistics of the hot tables, kept by hookd itself. The claim's plan depends on
// them: with a queue the statistics say is 3 rows, PostgreSQL reads every due delivery of the
// subscription and sorts them all for the 8 it takes (measured: 29 ms a claim at 41 k queued,
// against 0.6 ms once analyzed; a default webhook's drain fell to 2 deliveries a second). A
// database that grew from empty in seconds has no statistics yet: a new install's first burst, a
// `storage copy`, or a server where autovacuum is off or behind (its analyze comes a minute later
// at best, and this machine's CI server runs with it off).
//
// So the store counts the rows it writes to each table, and once they reach a tenth of what the
// table held at its last analyze (at least MIN_ROWS), it analyzes that table. The count is its
// own: the server's counters (pg_stat_user_tables) lag by a second or more, so a burst followed by
// quiet would never be seen. Several instances each count their share; the one that runs takes an
// advisory lock (tried, never waited for) and skips a table analyzed in the last FRESH_MS, by
// anyone. At start it looks at the server's counters instead (a copied or bulk-loaded database).
// Off the request path, one run at a time; a failure is only logged, the next writes try again.
import type { Logger } from "../../runtime/logger.ts";
import type { Query } from "./client.ts";

/** The tables whose statistics the claim, the settle and the lists depend on. */
export const ANALYZED_TABLES = ["deliveries", "events", "attempts"] as const;
export type AnalyzedTable = (typeof ANALYZED_TABLES)[number];
const MIN_ROWS = 1000;
const FRACTION = 0.1;
const FRESH_MS = 10_000;

export interface Analyzer {
  /** This instance wrote `rows` rows (inserted or updated) of `table`. */
  wrote(table: AnalyzedTable, rows: number): void;
  /** The check at start; answers the tables analyzed. */
  start(): Promise<AnalyzedTable[]>;
  /** Resolves once no run is going on (before the connections close). */
  idle(): Promise<void>;
}

interface TableStats {
  relname: AnalyzedTable;
  /** The planner's row count (pg_class.reltuples): -1 before any analyze or vacuum. */
  planned: string | number;
  live: string | number;
  changed: string | number;
  /** Analyzed within FRESH_MS, by anyone. */
  fresh: boolean;
}

export function createAnalyzer(options: {
  tx<T>(fn: (q: Query) => Promise<T>): Promise<T>;
  logger?: Logger;
}): Analyzer {
  const written = new Map<AnalyzedTable, number>(ANALYZED_TABLES.map((t) => [t, 0]));
  const planned = new Map<AnalyzedTable, number>(ANALYZED_TABLES.map((t) => [t, 0]));
  let running: Promise<AnalyzedTable[]> | null = null;

  const due = (table: AnalyzedTable) =>
    (written.get(table) ?? 0) >= Math.max(MIN_ROWS, FRACTION * (planned.get(table) ?? 0));

  /** Analyzes what `pick` chooses from the tables' statistics, under the lock. */
  const run = (pick: (row: TableStats) => boolean): Promise<AnalyzedTable[]> => {
    running ??= options
      .tx(async (q) => {
        const [lock] = await q<{ taken: boolean }>(
          "SELECT pg_try_advisory_xact_lock(hashtext('hookd.analyze'), hashtext(current_setting('search_path'))) AS taken",
        );
        if (!lock?.taken) return []; // another instance is analyzing
        const read = () =>
          q<TableStats>(
            `SELECT s.relname, c.reltuples AS planned, s.n_live_tup AS live, s.n_mod_since_analyze AS changed,
               coalesce(greatest(s.last_analyze, s.last_autoanalyze) > now() - $2 * interval '1 millisecond', false) AS fresh
             FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
             WHERE s.schemaname = current_schema() AND s.relname = ANY($1::text[])`,
            [ANALYZED_TABLES, FRESH_MS],
          );
        const chosen = (await read()).filter(pick).map((row) => row.relname);
        for (const table of chosen) await q(`ANALYZE ${table}`);
        for (const row of await read()) planned.set(row.relname, Math.max(0, Number(row.planned)));
        return chosen;
      })
      .then(
        (analyzed) => {
          if (analyzed.length > 0)
            options.logger?.debug({ tables: analyzed }, "planner statistics refreshed");
          return analyzed;
        },
        (error) => {
          options.logger?.warn({ err: (error as Error).message }, "cannot refresh planner statistics");
          return [];
        },
      )
      .finally(() => {
        running = null;
      });
    return running;
  };

  return {
    wrote(table, rows) {
      written.set(table, (written.get(table) ?? 0) + rows);
      if (running !== null || !due(table)) return;
      const tables = ANALYZED_TABLES.filter(due);
      for (const t of tables) written.set(t, 0);
      void run((row) => tables.includes(row.relname) && !row.fresh);
    },
    start: () => {
      void options
        .tx((q) => q<{ on: string }>("SELECT current_setting('autovacuum') AS on"))
        .then(([row]) => {
          if (row?.on === "off")
            options.logger?.warn(
              "autovacuum is off on this PostgreSQL server: hookd keeps its tables' planner statistics, but only VACUUM removes the row versions settled deliveries leave behind; turn autovacuum on or run VACUUM regularly",
            );
        })
        .catch(() => {});
      return run((row) => {
        const live = Number(row.live);
        if (row.fresh || live === 0) return false;
        return Number(row.planned) < 0 || Number(row.changed) >= Math.max(MIN_ROWS, FRACTION * live);
      });
    },
    async idle() {
      await running;
    },
  };
}
