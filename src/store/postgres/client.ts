// The connection to PostgreSQL, through Bun's built-in SQL client (it compiles into the executable):
// a pool with server-side timeouts, a deadline on every store call, and translation of "the
// database cannot answer now" into StorageUnavailableError (503).
//
// Bun's client has no per-query timeout, and a half-open connection (a dead network, a failed-over
// server) leaves a query pending forever. So every call races a deadline of statement_timeout; when
// it passes, the whole pool is torn down and replaced (a half-open connection is seldom alone), and
// the call fails as unavailable. The server enforces the same statement_timeout on each statement,
// and ends sessions idle inside a transaction, so locks held by a vanished client are let go.
// Transactions use the client's own API (BEGIN on a pooled handle is refused), never nest, and
// never stay open across an HTTP attempt: every store call is one short transaction at most.
import { SQL } from "bun";
import { StorageUnavailableError } from "../../domain/errors.ts";
import type { Logger } from "../../runtime/logger.ts";

export type Params = readonly unknown[];

/** Runs one statement; rows come back as plain objects. */
export type Query = <T = Record<string, unknown>>(text: string, params?: Params) => Promise<T[]>;

export interface PgClient {
  query: Query;
  /** Runs `fn` in one transaction, tried again on a deadlock or serialization failure. */
  tx<T>(fn: (q: Query) => Promise<T>): Promise<T>;
  /**
   * Listens on a channel: `onMessage` gets each notification's payload, and no payload when the
   * listening connection was replaced (notifications sent meanwhile are lost).
   */
  listen(channel: string, onMessage: (payload?: string) => void): Promise<() => void>;
  /** Calls `fn` whenever the pool was replaced (work may have been missed meanwhile). */
  onReset(fn: () => void): void;
  close(): Promise<void>;
}

export interface PgClientOptions {
  url: string;
  poolSize: number;
  statementTimeoutMs: number;
  logger?: Logger;
  applicationName?: string;
}

/** SQLSTATEs and client codes that mean "the database cannot answer now", not "this request is wrong". */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[1-4]|57014|55P03|58|25006|40001|40P01)/;
const RETRYABLE_SQLSTATE = /^(40001|40P01)$/;
const TX_ATTEMPTS = 3;

export function sqlState(error: unknown): string | null {
  const errno = (error as { errno?: unknown } | null)?.errno;
  return typeof errno === "string" ? errno : null;
}

export function isUnavailable(error: unknown): boolean {
  if (error instanceof StorageUnavailableError) return true;
  const state = sqlState(error);
  if (state) return UNAVAILABLE_SQLSTATE.test(state);
  const code = (error as { code?: unknown } | null)?.code;
  // Client-side failures: refused, closed, timed out, TLS, authentication in progress...
  return typeof code === "string" && code.startsWith("ERR_POSTGRES_") && code !== "ERR_POSTGRES_SERVER_ERROR";
}

function translate(error: unknown): unknown {
  if (error instanceof StorageUnavailableError || !isUnavailable(error)) return error;
  const state = sqlState(error);
  const what = state ? `SQLSTATE ${state}` : String((error as { code?: string }).code);
  return new StorageUnavailableError(`database unavailable: ${what}: ${(error as Error).message}`, {
    cause: error,
  });
}

class DeadlineExceeded extends Error {}

/**
 * PostgreSQL text cannot hold U+0000. The API refuses it in the fields it stores as text; what else
 * reaches a query with one (an id in a path, a cursor, a filter) can match nothing stored, so it is
 * sent as U+FFFD: a lookup then finds nothing (404), as on SQLite, instead of failing (500).
 */
function storable(value: unknown): unknown {
  if (typeof value === "string")
    return value.includes("\u0000") ? value.replaceAll("\u0000", "\ufffd") : value;
  if (Array.isArray(value)) return value.map(storable);
  return value;
}

export function createPgClient(options: PgClientOptions): PgClient {
  const timeoutMs = options.statementTimeoutMs;
  const open = () =>
    new SQL({
      url: options.url,
      max: options.poolSize,
      connectionTimeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
      idleTimeout: 60,
      connection: {
        statement_timeout: timeoutMs,
        idle_in_transaction_session_timeout: Math.max(timeoutMs * 2, 1000),
        lock_timeout: timeoutMs,
        application_name: options.applicationName ?? "hookd",
        // hookd's statements are short index lookups; JIT compiling a claim costs more than it runs.
        jit: "off",
        // Planned once per connection, not at every execution: PostgreSQL kept custom plans for the
        // claim (0.78 ms of planning a call, at its Bind, against 0.87 ms of execution) and the
        // hint's recomputation (0.56 ms), whose generic plans it estimated dearer.
        plan_cache_mode: "force_generic_plan",
      },
    });
  let sql = open();
  let closed = false;
  const resetListeners: (() => void)[] = [];
  const channels = new Map<string, Set<(payload?: string) => void>>();
  const unlisten = new Map<string, () => Promise<void>>();

  const subscribe = async (pool: SQL, channel: string) => {
    const notify = (payload?: string) => {
      for (const fn of channels.get(channel) ?? []) fn(payload);
    };
    // The client reconnects a dropped listening connection by itself and says so through the
    // second callback: notifications sent meanwhile are lost, so that is a wake-up too.
    const subscription = await pool.listen(channel, notify, () => notify());
    unlisten.set(channel, () => subscription.unlisten());
  };

  // Replaces the pool once per broken one, however many calls saw it break.
  const reset = (broken: SQL) => {
    if (closed || broken !== sql) return;
    sql = open();
    options.logger?.warn("database connection replaced after a call outlived statement_timeout");
    broken.close({ timeout: 0 }).catch(() => {});
    const pool = sql;
    for (const channel of channels.keys()) {
      subscribe(pool, channel).catch(() => {
        // Listening waits for the next reset; the dispatcher polls meanwhile.
      });
    }
    for (const fn of resetListeners) fn();
  };

  async function withDeadline<T>(run: (pool: SQL) => Promise<T>): Promise<T> {
    if (closed) throw new StorageUnavailableError("the database connection is closed");
    const pool = sql;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const work = run(pool);
    work.catch(() => {}); // a call that lost the race still settles; nobody waits for it
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineExceeded()), timeoutMs);
    });
    try {
      return await Promise.race([work, deadline]);
    } catch (error) {
      if (error instanceof DeadlineExceeded) {
        reset(pool);
        throw new StorageUnavailableError(`the database did not answer within ${timeoutMs} ms`);
      }
      throw translate(error);
    } finally {
      clearTimeout(timer);
    }
  }

  const queryOn =
    (handle: SQL | { unsafe: SQL["unsafe"] }): Query =>
    async <T>(text: string, params: Params = []) =>
      // Without parameters, the simple protocol: a migration may hold several statements.
      (await (params.length === 0 ? handle.unsafe(text) : handle.unsafe(text, params.map(storable)))) as T[];

  return {
    query: (text, params) => withDeadline((pool) => queryOn(pool)(text, params)),

    async tx(fn) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await withDeadline((pool) => pool.begin((tx) => fn(queryOn(tx))));
        } catch (error) {
          const state = sqlState((error as { cause?: unknown }).cause ?? error);
          if (attempt >= TX_ATTEMPTS || !state || !RETRYABLE_SQLSTATE.test(state)) throw error;
        }
      }
    },

    async listen(channel, onMessage) {
      let set = channels.get(channel);
      if (!set) {
        set = new Set();
        channels.set(channel, set);
        await withDeadline((pool) => subscribe(pool, channel));
      }
      set.add(onMessage);
      return () => {
        set.delete(onMessage);
      };
    },

    onReset(fn) {
      resetListeners.push(fn);
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const stop of unlisten.values()) await stop().catch(() => {});
      await sql.close({ timeout: 1 }).catch(() => {});
    },
  };
}
