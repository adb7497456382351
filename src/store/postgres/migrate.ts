// Migrations under a database lock: instances that start together migrate once, the others wait
// for the lock and then find nothing to do. Each start refuses a database newer than itself; an
// instance already running keeps serving while a newer one migrates (within a minor version,
// migrations only add). The version row is written first, in the same transaction as the DDL.
import { DatabaseTooNewError } from "../../domain/errors.ts";
import type { PgClient } from "./client.ts";
import type { Migration } from "./migrations/index.ts";

export async function migrate(client: PgClient, migrations: readonly Migration[]): Promise<number> {
  const known = migrations.reduce((max, m) => Math.max(max, m.version), 0);
  return client.tx(async (q) => {
    // One lock per schema: instances of one hookd wait for each other, other schemas do not.
    await q(
      "SELECT pg_advisory_xact_lock(hashtext('hookd.migrate'), hashtext(current_setting('search_path')))",
    );
    // A schema named in the URL (`?search_path=`) that does not exist yet is made.
    const [schema] = await q<{ current: string | null; first: string }>(
      "SELECT current_schema() AS current, trim(both '\" ' from split_part(current_setting('search_path'), ',', 1)) AS first",
    );
    if (schema && schema.current === null && schema.first) {
      await q(`CREATE SCHEMA IF NOT EXISTS "${schema.first.replaceAll('"', '""')}"`);
    }
    await q(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const [row] = await q<{ version: number | null }>(
      "SELECT max(version) AS version FROM schema_migrations",
    );
    const current = row?.version ?? 0;
    if (current > known) throw new DatabaseTooNewError(current, known);
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      await q("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        migration.version,
        migration.name,
      ]);
      await q(migration.sql);
    }
    return Math.max(current, known);
  });
}
