// `hookd console-link [--config FILE] [--tenant T] [--ttl 1h]` (SPEC §5): mints a session in the
// database the config names and prints the URL that signs its opener in. Without --tenant: the
// operator console (every scope, no tenant); with it: that tenant's portal (every capability).
// It writes the session straight into the store, so it works beside a running daemon or without one.

import pino from "pino";
import { parseDuration } from "../config/duration.ts";
import { ConfigError, loadConfig } from "../config/load.ts";
import { defaultPublicUrl } from "../config/schema.ts";
import { openStore } from "../daemon.ts";
import { CAPABILITIES, SESSION_TTL } from "../domain/portal.ts";
import { systemClock } from "../runtime/clock.ts";
import { createIdGenerator } from "../runtime/ids.ts";
import { createLogger } from "../runtime/logger.ts";
import { cryptoRandom } from "../runtime/random.ts";
import { mintSession, sessionUrl } from "../sessions.ts";

const TENANT = /^[A-Za-z0-9_-]{1,64}$/;

export async function consoleLink(options: {
  configPath?: string;
  tenant?: string;
  ttl?: string;
  out?: (text: string) => void;
  err?: (text: string) => void;
}): Promise<number> {
  const out = options.out ?? ((text: string) => process.stdout.write(text));
  const err = options.err ?? ((text: string) => process.stderr.write(text));
  const ttlMs = parseDuration(options.ttl ?? "1h");
  if (ttlMs === null || ttlMs < SESSION_TTL.min * 1000 || ttlMs > SESSION_TTL.max * 1000) {
    err(`hookd console-link: --ttl must be a duration from 60s to 24h, such as 30m or 1h\n`);
    return 2;
  }
  if (options.tenant !== undefined && !TENANT.test(options.tenant)) {
    err(`hookd console-link: --tenant must be 1-64 letters, digits, '_' or '-'\n`);
    return 2;
  }
  let config: ReturnType<typeof loadConfig>["config"];
  try {
    config = loadConfig({ path: options.configPath, env: process.env }).config;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    err(`${error.describe()}\n`);
    return 1;
  }
  const clock = systemClock;
  // Warnings go to stderr: stdout carries the link alone (scripts capture it).
  const logger = createLogger("warn", pino.destination({ fd: 2, sync: true }));
  let store: Awaited<ReturnType<typeof openStore>>;
  try {
    store = await openStore(config, { ids: createIdGenerator(clock, cryptoRandom), clock, logger });
  } catch (error) {
    err(`hookd console-link: cannot open the database: ${(error as Error).message}\n`);
    return 1;
  }
  try {
    const kind = options.tenant === undefined ? "console" : "portal";
    const { session, token } = await mintSession(
      { store, clock, random: cryptoRandom, ids: createIdGenerator(clock, cryptoRandom) },
      {
        kind,
        tenantId: options.tenant ?? null,
        mode: "live",
        capabilities: [...CAPABILITIES],
        ttlMs,
      },
    );
    const base = config.server.public_url ?? defaultPublicUrl(config.server.host, config.server.port);
    out(`${sessionUrl(base, kind, token)}\n`);
    err(
      `${kind === "console" ? "console" : `portal (tenant ${options.tenant})`} session ${session.id}, ` +
        `valid until ${new Date(session.expiresAt).toISOString()}; revoke with DELETE /v1/portal-sessions/${session.id}\n`,
    );
    if (config.server.public_url === undefined && config.server.port === 0)
      err("hookd console-link: server.port is 0, so the link cannot name the port: set server.public_url\n");
    return 0;
  } catch (error) {
    err(`hookd console-link: cannot store the session: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}
