// A daemon for tests: a temp SQLite file (or, in the PostgreSQL pass, a fresh PostgreSQL database:
// driver.ts), the real Hono app, captured log lines, and a request helper that goes through
// app.request() (or a real listener when started).
import type { LookupAddress } from "node:dns";
import { Writable } from "node:stream";
import { parse, stringify } from "yaml";
import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { createDaemon, type Daemon } from "../../src/daemon.ts";
import { type Clock, createManualClock, type ManualClock } from "../../src/runtime/clock.ts";
import { createLogger, type LogLevel } from "../../src/runtime/logger.ts";
import { chooseStorage, storageYaml, type TestDriver } from "./driver.ts";
import { tempDir } from "./temp.ts";

export const ADMIN_KEY = "test-admin-key-0123456789";
export const READER_KEY = "test-reader-key-0123456789";
export const ACME_KEY = "test-acme-key-0123456789";
export const GLOBEX_KEY = "test-globex-key-0123456789";
export const NOSCOPE_KEY = "test-noscope-key-0123456789";
/** Test-mode keys (SPEC §2 Live and test mode): acme's, and an admin's. */
export const ACME_TEST_KEY = "test-acme-testmode-key-0123456789";
export const ADMIN_TEST_KEY = "test-admin-testmode-key-0123456789";

/**
 * Keys used by most tests: an admin, a read-only admin, two tenants, a key with one unrelated scope,
 * and test-mode keys for acme and an admin.
 */
export const TEST_KEYS_YAML = `
auth:
  keys:
    - { name: admin, key: ${ADMIN_KEY}, scopes: ["*"] }
    - { name: reader, key: ${READER_KEY}, scopes: [webhooks:read, events:read, deliveries:read] }
    - { name: acme, key: ${ACME_KEY}, scopes: ["*"], tenant: acme }
    - { name: globex, key: ${GLOBEX_KEY}, scopes: ["*"], tenant: globex }
    - { name: noscope, key: ${NOSCOPE_KEY}, scopes: [deliveries:read] }
    - { name: acme-test, key: ${ACME_TEST_KEY}, scopes: ["*"], tenant: acme, mode: test }
    - { name: admin-test, key: ${ADMIN_TEST_KEY}, scopes: ["*"], mode: test }
`;

/**
 * Tests never ask a real DNS server: `localhost`, `*.localhost` and `*.test` are 127.0.0.1, any
 * other name does not exist. (Subscriptions to example.com in API tests can then never send a
 * packet off this machine once a test starts the dispatcher.)
 */
export async function resolveLoopbackOnly(hostname: string): Promise<LookupAddress[]> {
  const name = hostname.toLowerCase().replace(/\.$/, "");
  if (name === "localhost" || name.endsWith(".localhost") || name.endsWith(".test")) {
    return [{ address: "127.0.0.1", family: 4 }];
  }
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (tests resolve no public names)`), {
    code: "ENOTFOUND",
  });
}

export interface TestDaemon {
  daemon: Daemon;
  config: Config;
  clock: Clock;
  dir: string;
  /** The storage driver this daemon runs on. */
  driver: TestDriver;
  /** Its PostgreSQL database (to start another instance over it), or null on SQLite. */
  databaseUrl: string | null;
  logs: string[];
  /** A request through the real app; `key` is sent as a Bearer token. */
  request(method: string, path: string, options?: RequestOptions): Promise<TestResponse>;
  close(): Promise<void>;
}

export interface RequestOptions {
  key?: string | null;
  body?: unknown;
  rawBody?: string | Uint8Array;
  headers?: Record<string, string>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test responses are inspected freely
  body: any;
  text: string;
}

export interface TestDaemonOptions {
  /** YAML appended to the defaults (which allow http and private targets, and set test keys). */
  yaml?: string;
  /** Replace the default keys block (for tests of the first-start key). */
  keysYaml?: string;
  clock?: Clock | ManualClock;
  logLevel?: LogLevel;
  notices?: string[];
  dir?: string;
  /** Name resolution for deliveries (createDaemon's `resolve`): point names at addresses without DNS. */
  resolve?: (hostname: string) => Promise<LookupAddress[]>;
  /** The storage driver; by default the pass's (HOOKD_TEST_DRIVER), or postgres when `databaseUrl` is given. */
  driver?: TestDriver;
  /** A PostgreSQL database to use instead of a fresh one (several daemons over one database). */
  databaseUrl?: string;
}

export async function createTestDaemon(options: TestDaemonOptions = {}): Promise<TestDaemon> {
  const dir = options.dir ?? tempDir();
  const storage = await chooseStorage({
    sqlitePath: `${dir}/hookd.db`,
    driver: options.driver,
    databaseUrl: options.databaseUrl,
  });
  const yaml = [
    storageYaml(storage, { synchronous: "normal" }).join("\n"),
    "server:\n  port: 0",
    options.keysYaml ?? TEST_KEYS_YAML,
    options.yaml ?? "",
  ].join("\n");
  const config = parseConfig(mergeYaml(yaml), "test", process.env);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  const logger = createLogger(options.logLevel ?? "info", sink);
  const clock = options.clock ?? createManualClock(Date.now());
  const daemon = await createDaemon({
    config,
    logger,
    clock,
    printNotice: (text) => options.notices?.push(text),
    resolve: options.resolve ?? resolveLoopbackOnly,
  });

  return {
    daemon,
    config,
    clock,
    dir,
    driver: storage.driver,
    databaseUrl: storage.databaseUrl,
    logs,
    async request(method, path, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      const key = opts.key === undefined ? ADMIN_KEY : opts.key;
      if (key !== null) headers.authorization = `Bearer ${key}`;
      let body: string | Uint8Array | undefined;
      if (opts.rawBody !== undefined) body = opts.rawBody;
      else if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers["content-type"] ??= "application/json";
      }
      const response = await daemon.app.request(path, { method, headers, body });
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: response.status, headers: response.headers, body: parsed, text };
    },
    close: () => daemon.stop(),
  };
}

/**
 * Test configs are written as YAML fragments; top-level sections given twice are merged here so a
 * test can add `delivery:` keys without restating the defaults.
 */
function mergeYaml(text: string): string {
  const merged: Record<string, unknown> = {};
  for (const part of text.split(/\n(?=\S)/)) {
    const parsed = parse(part) as Record<string, unknown> | null;
    if (!parsed) continue;
    for (const [key, value] of Object.entries(parsed)) {
      const existing = merged[key];
      merged[key] =
        existing &&
        typeof existing === "object" &&
        !Array.isArray(existing) &&
        value &&
        typeof value === "object"
          ? { ...(existing as object), ...(value as object) }
          : value;
    }
  }
  const base = {
    delivery: { allow_http: true, allow_private_networks: true },
  };
  for (const [key, value] of Object.entries(base)) {
    merged[key] = { ...value, ...((merged[key] as object) ?? {}) };
  }
  return stringify(merged);
}
