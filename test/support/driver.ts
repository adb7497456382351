// Which storage driver the daemon-level tests run on: SQLite unless HOOKD_TEST_DRIVER=postgres (the
// second pass of scripts/test.ts, with HOOKD_TEST_POSTGRES_URL naming the server). Test daemons and
// child processes take their database from here, so one suite covers both drivers.
import { createTestDatabase } from "./postgres.ts";

export type TestDriver = "sqlite" | "postgres";

export const TEST_DRIVER: TestDriver = process.env.HOOKD_TEST_DRIVER === "postgres" ? "postgres" : "sqlite";

/**
 * True in the PostgreSQL pass, for tests that only make sense on SQLite (they open the SQLite file
 * or fault its filesystem): `test.skipIf(onSqliteOnly)(...)`.
 */
export const onSqliteOnly = TEST_DRIVER === "postgres";

/** Where a hookd keeps its state: the SQLite file, or (driver postgres) the database at `url`. */
export interface TestStorage {
  driver: TestDriver;
  sqlitePath: string;
  databaseUrl: string | null;
}

/**
 * Storage for a new test hookd: `sqlitePath` for SQLite; for PostgreSQL `databaseUrl` when given
 * (several instances over one database), else a fresh empty database.
 */
export async function chooseStorage(options: {
  driver?: TestDriver;
  databaseUrl?: string;
  sqlitePath: string;
}): Promise<TestStorage> {
  const driver = options.driver ?? (options.databaseUrl ? "postgres" : TEST_DRIVER);
  if (driver === "sqlite") return { driver, sqlitePath: options.sqlitePath, databaseUrl: null };
  return {
    driver,
    sqlitePath: options.sqlitePath,
    databaseUrl: options.databaseUrl ?? (await createTestDatabase()),
  };
}

/** The `storage:` section for `storage`, as YAML lines (the SQLite path stays in it, unused on PostgreSQL). */
export function storageYaml(
  storage: TestStorage,
  options: { synchronous?: "full" | "normal" } = {},
): string[] {
  return [
    "storage:",
    `  driver: ${storage.driver}`,
    "  sqlite:",
    `    path: ${storage.sqlitePath}`,
    ...(options.synchronous ? [`    synchronous: ${options.synchronous}`] : []),
    ...(storage.databaseUrl ? ["  postgres:", `    url: ${JSON.stringify(storage.databaseUrl)}`] : []),
  ];
}
