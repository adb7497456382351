// Support for test/cli/storage-copy.test.ts: running `dist/hookd storage copy`, a child hookd's
// config and API (with the admin key it created on first start), and the rows of both databases:
// through the stores' exportRows (compared across drivers) and raw (to show that nothing changed).
import { expect } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import { systemClock } from "../../src/runtime/clock.ts";
import { createIdGenerator } from "../../src/runtime/ids.ts";
import { cryptoRandom } from "../../src/runtime/random.ts";
import { createSqliteStore } from "../../src/store/sqlite/index.ts";
import { type Store, type StoredRow, TABLES, type TableName } from "../../src/store/store.ts";
import { storageYaml } from "../support/driver.ts";
import { BINARY } from "../support/hookd-process.ts";
import { createTestDatabase } from "../support/postgres.ts";
import { allRows } from "../support/stores.ts";
import { tempDir } from "../support/temp.ts";

const COPY_TIMEOUT_MS = 60_000;

// biome-ignore lint/suspicious/noExplicitAny: API answers are inspected freely
export type Json = any;

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `dir/hookd.yaml`: port 0, no API key (the first start creates one and stores its hash in the
 * settings, which the copy carries), plain http to 127.0.0.1 allowed, the given retry schedule.
 */
export function writeConfig(
  dir: string,
  storage: { sqlitePath: string } | { databaseUrl: string },
  retrySchedule: string[],
): string {
  const path = join(dir, "hookd.yaml");
  const lines =
    "databaseUrl" in storage
      ? storageYaml({
          driver: "postgres",
          sqlitePath: join(dir, "unused.db"),
          databaseUrl: storage.databaseUrl,
        })
      : storageYaml({ driver: "sqlite", sqlitePath: storage.sqlitePath, databaseUrl: null });
  writeFileSync(
    path,
    [
      "server:",
      "  host: 127.0.0.1",
      "  port: 0",
      ...lines,
      "rate_limits:",
      "  ingest: 100000",
      "  write: 100000",
      "  read: 100000",
      "delivery:",
      "  timeout: 2s",
      `  retry_schedule: [${retrySchedule.join(", ")}]`,
      "  lease: 2s",
      "  allow_http: true",
      "  allow_private_networks: true",
      "shutdown_grace: 1s",
      "log:",
      "  level: info",
      "",
    ].join("\n"),
  );
  return path;
}

/** `dist/hookd storage copy --from … --to …`, bounded in time, with only PATH and HOME. */
export function copy(from: string, to: string): Promise<Run> {
  return copyArgs(["storage", "copy", "--from", from, "--to", to]);
}

export async function copyArgs(args: string[]): Promise<Run> {
  const proc = Bun.spawn([BINARY, ...args], {
    cwd: tempDir("hookd-copy-cwd-"),
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: COPY_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (proc.signalCode) throw new Error(`storage copy was killed (${proc.signalCode}): ${stderr}`);
  return { code, stdout, stderr };
}

/** What the API shows of everything: webhooks, events, deliveries and each delivery's attempts. */
export interface Snapshot {
  webhooks: Json[];
  events: Json[];
  deliveries: Json[];
  attempts: Record<string, Json[]>;
}

/** Calls to a child hookd's API at `url` with `key`, each bounded in time. */
export function childApi(url: string, key: string) {
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body: (text ? JSON.parse(text) : undefined) as Json,
    };
  };
  /** Every item of a list (one page of at most 100: the tests' lists are shorter). */
  const list = async (path: string): Promise<Json[]> => {
    const answer = await call("GET", `${path}${path.includes("?") ? "&" : "?"}limit=100`);
    if (answer.status !== 200)
      throw new Error(`GET ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
    expect(answer.body.has_next_page).toBe(false);
    return answer.body.data;
  };
  return {
    call,
    list,
    publish: (body: unknown, headers: Record<string, string> = {}) =>
      call("POST", "/v1/events", body, headers),
    async createWebhook(body: Record<string, unknown>): Promise<Json> {
      const created = await call("POST", "/v1/webhooks", body);
      if (created.status !== 201) throw new Error(`cannot create a webhook: ${JSON.stringify(created.body)}`);
      return created.body;
    },
    async snapshot(): Promise<Snapshot> {
      const webhooks = await list("/v1/webhooks");
      const events: Json[] = [];
      for (const event of await list("/v1/events"))
        events.push((await call("GET", `/v1/events/${event.id}`)).body);
      const deliveries = await list("/v1/deliveries");
      const attempts: Record<string, Json[]> = {};
      for (const delivery of deliveries)
        attempts[delivery.id] = await list(`/v1/deliveries/${delivery.id}/attempts`);
      return { webhooks, events, deliveries, attempts };
    },
  };
}

export type Dump = Record<TableName, StoredRow[]>;

const JSON_COLUMNS: Partial<Record<TableName, string[]>> = {
  webhooks: ["events", "account_ids", "headers", "metadata"],
  attempts: ["response_headers"],
  idempotency_keys: ["event_ids"],
};
/** Due times pass through the PostgreSQL store's clock offset, measured anew at each open. */
const DUE_COLUMNS = ["next_attempt_at", "next_due_at"];

/** Every row a store holds through exportRows (the write probe left out), comparable across drivers. */
async function dumpStore(store: Store): Promise<Dump> {
  const out = {} as Dump;
  for (const table of TABLES) {
    const rows = (await allRows(store, table)).filter(
      (row) => !(table === "settings" && row.key === "heartbeat"),
    );
    out[table] = rows
      .map((row) => {
        const copy: StoredRow = { ...row };
        for (const column of JSON_COLUMNS[table] ?? [])
          if (typeof copy[column] === "string") copy[column] = JSON.stringify(JSON.parse(copy[column]));
        return copy;
      })
      .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  }
  return out;
}

export async function dumpSqlite(path: string): Promise<Dump> {
  const store = createSqliteStore({
    path,
    synchronous: "normal",
    ids: createIdGenerator(systemClock, cryptoRandom),
  });
  try {
    return await dumpStore(store);
  } finally {
    await store.close();
  }
}

export async function openPostgres(url: string): Promise<Store> {
  const { createPostgresStore } = await import("../../src/store/postgres/index.ts");
  return createPostgresStore({
    url,
    poolSize: 2,
    statementTimeoutMs: 5000,
    ids: createIdGenerator(systemClock, cryptoRandom),
    clock: systemClock,
  });
}

export async function dumpPostgres(url: string): Promise<Dump> {
  const store = await openPostgres(url);
  try {
    return await dumpStore(store);
  } finally {
    await store.close();
  }
}

/** The target holds the source's rows: equal, due times within the clock offsets' error. */
export function expectSameRows(target: Dump, source: Dump): void {
  const strip = (dump: Dump) =>
    Object.fromEntries(
      TABLES.map((table) => [
        table,
        dump[table].map((row) =>
          Object.fromEntries(Object.entries(row).filter(([c]) => !DUE_COLUMNS.includes(c))),
        ),
      ]),
    );
  expect(strip(target)).toEqual(strip(source));
  for (const table of ["webhooks", "deliveries"] as const) {
    source[table].forEach((row, i) => {
      for (const column of DUE_COLUMNS) {
        const want = row[column];
        const got = target[table][i]?.[column];
        if (want === undefined) continue;
        if (want === null) expect(got).toBeNull();
        else expect(Math.abs(Number(got) - Number(want))).toBeLessThan(1000);
      }
    });
  }
  expect(TABLES.every((table) => source[table].length > 0)).toBe(true);
}

/** Raw rows of every table in the database (hookd's and any other), as JSON text: "nothing changed". */
export async function rawDatabase(url: string): Promise<Record<string, string[]>> {
  const sql = new SQL({ url, max: 1, idleTimeout: 1 });
  try {
    const tables = (await sql.unsafe(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1",
    )) as { name: string }[];
    const out: Record<string, string[]> = {};
    for (const { name } of tables) {
      const rows = (await sql.unsafe(`SELECT row_to_json(t)::text AS j FROM "${name}" t`)) as { j: string }[];
      out[name] = rows.map((r) => r.j).sort();
    }
    return out;
  } finally {
    await sql.close({ timeout: 1 });
  }
}

/** The tables a copy writes, without the readiness probe's heartbeat setting. */
export function hookdRows(raw: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(
    TABLES.map((table) => [table, (raw[table] ?? []).filter((row) => !row.startsWith('{"key":"heartbeat"'))]),
  );
}

export async function execute(url: string, statements: string[]): Promise<void> {
  const sql = new SQL({ url, max: 1, idleTimeout: 1 });
  try {
    for (const statement of statements) await sql.unsafe(statement);
  } finally {
    await sql.close({ timeout: 1 });
  }
}

/** The hookd schema on a fresh database, as a first copy would leave it before writing a row. */
export async function migratedDatabase(): Promise<string> {
  const url = await createTestDatabase();
  await (await openPostgres(url)).close();
  return url;
}

export const REFUSE_FUNCTION = `CREATE FUNCTION hookd_test_refuse() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`;
