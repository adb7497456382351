// The composition root: builds the store, the HTTP app and (later) the dispatcher from one config,
// and owns their start and stop order.

import type { LookupAddress } from "node:dns";
import type { Server } from "bun";
import { type Config, defaultPublicUrl } from "./config/schema.ts";
import { createDispatcher, type Dispatcher } from "./dispatcher/dispatcher.ts";
import { createHttpClient } from "./dispatcher/http-client.ts";
import { createMaintenance, type Maintenance } from "./dispatcher/maintenance.ts";
import { createEventCatalog } from "./domain/event-types.ts";
import { type Cidr, parseCidr } from "./domain/ip.ts";
import { compileSchema } from "./domain/json-schema.ts";
import { generateApiKey, sha256Hex } from "./domain/secrets.ts";
import { createApp } from "./http/app.ts";
import { createAuthenticator } from "./http/auth.ts";
import type { ReadinessCheck } from "./http/deps.ts";
import { createOAuthClients } from "./http/oauth-clients.ts";
import { createSessionTokens } from "./http/sessions.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { type Clock, systemClock } from "./runtime/clock.ts";
import { createIdGenerator } from "./runtime/ids.ts";
import type { Logger } from "./runtime/logger.ts";
import { cryptoRandom, type Random } from "./runtime/random.ts";
import { createPostgresStore } from "./store/postgres/index.ts";
import { createSqliteStore } from "./store/sqlite/index.ts";
import type { Store } from "./store/store.ts";
import { VERSION } from "./version.ts";

export interface DaemonOptions {
  config: Config;
  logger: Logger;
  clock?: Clock;
  random?: Random;
  /** Where the first-start admin key is shown (once). Defaults to stderr. */
  printNotice?: (text: string) => void;
  /** Name resolution for deliveries (tests point names at 127.0.0.1); the system resolver otherwise. */
  resolve?: (hostname: string) => Promise<LookupAddress[]>;
}

export interface Daemon {
  readonly config: Config;
  readonly store: Store;
  readonly app: ReturnType<typeof createApp>["app"];
  /** Every declared route (method, path, scope, rate class, schemas). */
  readonly routes: ReturnType<typeof createApp>["api"]["routes"];
  readonly dispatcher: Dispatcher;
  readonly maintenance: Maintenance;
  readonly metrics: Metrics;
  /** Starts listening; resolves with the bound address. */
  start(): Promise<{ host: string; port: number; url: string }>;
  /** Stops accepting requests, then closes the store. Safe to call twice. */
  stop(): Promise<void>;
}

/** The store the config names, as `serve` opens it (also `hookd console-link`, beside a daemon or not). */
export async function openStore(
  config: Config,
  deps: {
    ids: ReturnType<typeof createIdGenerator>;
    clock: Clock;
    logger: Logger;
    onFinal?: (status: "cancelled" | "failed", count: number) => void;
  },
): Promise<Store> {
  const { ids, clock, logger, onFinal } = deps;
  return config.storage.driver === "postgres"
    ? await createPostgresStore({
        url: config.storage.postgres.url as string,
        poolSize: config.storage.postgres.pool_size,
        statementTimeoutMs: config.storage.postgres.statement_timeout,
        ids,
        clock,
        logger: logger.child({ component: "postgres" }),
        ...(onFinal ? { onFinal } : {}),
        version: VERSION,
        // The real clock may be stepped; an injected one (tests) is followed as it is.
        timeBase: clock === systemClock ? "monotonic" : "clock",
      })
    : createSqliteStore({
        path: config.storage.sqlite.path,
        synchronous: config.storage.sqlite.synchronous,
        ids,
        ...(onFinal ? { onFinal } : {}),
      });
}

const BOOTSTRAP_KEY_SETTING = "bootstrap_admin_key_sha256";
const TOKEN_SIGNING_KEY_SETTING = "oauth_token_signing_key";

/** How often an instance says it is live, and how long that lasts (PostgreSQL: rate limit shares, metrics). */
const HEARTBEAT_MS = 5_000;
const HEARTBEAT_TTL_MS = 15_000;

export async function createDaemon(options: DaemonOptions): Promise<Daemon> {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? cryptoRandom;
  const printNotice = options.printNotice ?? ((text: string) => process.stderr.write(`${text}\n`));

  const ids = createIdGenerator(clock, random);
  const metrics = createMetrics();
  const onFinal = (status: "cancelled" | "failed", count: number) => {
    if (count > 0) metrics.deliveries.inc({ status }, count);
  };
  const store = await openStore(config, { ids, clock, logger, onFinal });
  const instanceId = Buffer.from(random.bytes(6)).toString("hex");
  const allowedCidrs = config.delivery.allowed_cidrs.map((text) => parseCidr(text) as Cidr);
  const client = createHttpClient({
    policy: { allowPrivateNetworks: config.delivery.allow_private_networks, allowedCidrs },
    userAgent: `hookd/${VERSION}`,
    ...(options.resolve ? { resolve: options.resolve } : {}),
  });
  const dispatcher = createDispatcher({
    store,
    client,
    clock,
    random,
    ids,
    logger: logger.child({ component: "dispatcher" }),
    metrics,
    maxInFlight: config.delivery.max_in_flight,
    retrySchedule: config.delivery.retry_schedule,
    leaseMs: config.delivery.lease,
    health: {
      disableAfterFailures: config.delivery.disable_after_failures,
      disableAfterMs: config.delivery.disable_after,
    },
    userAgent: `hookd/${VERSION}`,
    instanceId,
  });
  const maintenance = createMaintenance({ store, clock, logger, retentionMs: config.retention });
  // Instances live in the database: each enforces its share of a key's rate limit (SPEC §6).
  let liveInstances = 1;
  const beat = async () => {
    try {
      liveInstances = await store.heartbeat(instanceId, HEARTBEAT_TTL_MS);
      metrics.instances.set(liveInstances);
    } catch (error) {
      logger.warn({ err: (error as Error).message }, "cannot record this instance's heartbeat");
    }
  };
  await beat();
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let stopListening: (() => void) | undefined;

  const adminHashes: string[] = [];
  if (config.auth.keys.length === 0) adminHashes.push(await bootstrapAdminKey(store, random, printNotice));
  const oauthClients =
    config.auth.oauth_clients.length > 0
      ? createOAuthClients({
          clients: config.auth.oauth_clients,
          signingKey: await tokenSigningKey(store, random),
          ttlMs: config.auth.token_ttl,
          clock,
        })
      : undefined;

  const readiness: ReadinessCheck[] = [
    { name: "database", check: () => store.checkWritable(clock.now()) },
    {
      name: "dispatcher",
      check: async () => {
        if (!dispatcher.isRunning()) throw new Error("not running");
      },
    },
  ];
  const dataValidators = new Map(
    config.event_types
      .filter((t) => t.schema)
      .map((t) => [t.name, compileSchema(t.schema as Record<string, unknown>)]),
  );
  const { app, api } = createApp({
    config,
    store,
    clock,
    random,
    ids,
    logger,
    catalog: createEventCatalog(config.event_types),
    authenticator: createAuthenticator(
      config.auth.keys,
      adminHashes,
      oauthClients,
      createSessionTokens(store, clock),
    ),
    ...(oauthClients ? { oauthClients } : {}),
    allowedCidrs,
    version: VERSION,
    readiness,
    metrics,
    dataValidators,
    wakeDispatcher: () => dispatcher.wake(),
    instances: () => liveInstances,
    // Without server.public_url: from the address bound (port 0 becomes the port chosen).
    publicUrl: () =>
      config.server.public_url ?? defaultPublicUrl(config.server.host, boundPort ?? config.server.port),
  });

  let server: Server<undefined> | undefined;
  let boundPort: number | undefined;
  let stopping: Promise<void> | undefined;

  return {
    config,
    store,
    app,
    routes: api.routes,
    dispatcher,
    maintenance,
    metrics,
    async start() {
      server = Bun.serve({
        hostname: config.server.host,
        port: config.server.port,
        fetch: app.fetch,
        // Our own limit answers first, with the API's error shape; this is the backstop.
        // Far above the limit, so that hookd's own 413 (with the error shape, decided on the
        // declared length or while streaming) answers first in every ordinary case.
        maxRequestBodySize: Math.max(config.limits.max_payload_bytes * 16, 64 * 1024 * 1024),
        error: (error) => {
          logger.error({ err: error }, "unhandled server error");
          return new Response(JSON.stringify({ error: { code: "internal", message: "internal error" } }), {
            status: 500,
            headers: { "content-type": "application/json" },
          });
        },
      });
      const host = server.hostname ?? config.server.host;
      const port = server.port ?? config.server.port;
      boundPort = port;
      const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
      dispatcher.start();
      maintenance.start();
      // Work committed by other instances wakes this dispatcher at once; polling is the fallback.
      stopListening = await store
        .onWork(() => dispatcher.wake())
        .catch((error) => {
          logger.warn(
            { err: (error as Error).message },
            "cannot listen for work from other instances; polling",
          );
          return undefined;
        });
      heartbeat = setInterval(beat, HEARTBEAT_MS);
      heartbeat.unref?.();
      const database =
        store.driver === "sqlite" ? config.storage.sqlite.path : redactUrl(config.storage.postgres.url);
      logger.info(
        { url, version: VERSION, driver: store.driver, database, instance: instanceId },
        "hookd listening",
      );
      return { host, port, url };
    },
    stop() {
      // Stop taking requests, stop claiming, drain within the grace period, release the rest,
      // then checkpoint and close the database.
      stopping ??= (async () => {
        const closing = server?.stop(false);
        maintenance.stop();
        clearInterval(heartbeat);
        stopListening?.();
        await dispatcher.stop(config.shutdown_grace);
        await closing;
        client.close();
        await store.removeInstance(instanceId).catch(() => {});
        await store.close();
        logger.info("hookd stopped");
      })();
      return stopping;
    },
  };
}

/** A database URL for logs: never its password. */
export function redactUrl(url: string | undefined): string {
  if (!url) return "";
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparsable URL)";
  }
}

/** With no key configured: the first start creates an admin key, stores its hash and shows it once. */
async function bootstrapAdminKey(
  store: Store,
  random: Random,
  printNotice: (text: string) => void,
): Promise<string> {
  const existing = await store.getSetting(BOOTSTRAP_KEY_SETTING);
  if (existing) {
    printNotice(
      "hookd: no API key in the config; using the admin key created on first start (only its hash is stored).",
    );
    return existing;
  }
  const key = generateApiKey(random);
  const hash = sha256Hex(key);
  if (!(await store.insertSettingIfAbsent(BOOTSTRAP_KEY_SETTING, hash))) {
    return (await store.getSetting(BOOTSTRAP_KEY_SETTING)) as string;
  }
  printNotice(
    [
      "hookd: no API key is configured, so an admin key was created. It is shown only this once:",
      "",
      `    ${key}`,
      "",
      "Keep it safe: only its hash is stored. To manage keys yourself, list them under auth.keys in the config.",
    ].join("\n"),
  );
  return hash;
}

/**
 * The key that signs OAuth2 access tokens: 32 random bytes made by the first instance that needs it
 * and read from the settings by every other, so a token minted by one is honoured by all.
 */
async function tokenSigningKey(store: Store, random: Random): Promise<Uint8Array> {
  const existing = await store.getSetting(TOKEN_SIGNING_KEY_SETTING);
  if (existing) return signingKeyOf(existing);
  const fresh = Buffer.from(random.bytes(32)).toString("base64url");
  if (await store.insertSettingIfAbsent(TOKEN_SIGNING_KEY_SETTING, fresh)) return signingKeyOf(fresh);
  return signingKeyOf((await store.getSetting(TOKEN_SIGNING_KEY_SETTING)) as string);
}

function signingKeyOf(stored: string): Uint8Array {
  const key = new Uint8Array(Buffer.from(stored, "base64url"));
  if (key.length !== 32) throw new Error(`the setting ${TOKEN_SIGNING_KEY_SETTING} is not 32 bytes`);
  return key;
}
