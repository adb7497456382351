// Fan-out matching on PostgreSQL: the enabled subscriptions of each tenant (with their filters
// compiled once, SPEC §2 `filter`; matched by mode too), cached per instance and
// good only while the database's fan-out version is the one they were loaded at. Every change to a
// subscription (on any instance) takes the fan-out lock exclusively and bumps the version in its
// transaction; ingest takes the lock shared, and a later statement of it (its snapshot starts once
// the lock is held) reads the version: an ingest that matched against an older copy is rolled back
// and runs again (index.ts). So an event accepted after a change committed anywhere is fanned out
// against that change, and an ingest running while a subscription is deleted finishes before the
// delete cancels its queued deliveries. (The version is never read by the statement that waits for
// the lock: its snapshot was taken before the wait, older than the change it waited for.)
import type { FanoutEvent } from "../../domain/filter.ts";
import type { Mode } from "../../domain/mode.ts";
import {
  matchSubscriptions,
  SUBSCRIPTION_COLUMNS,
  type Subscription,
  type SubscriptionRow,
  toSubscription,
} from "../subscription-match.ts";
import type { Query } from "./client.ts";

/** The fan-out's advisory lock, one per schema (several hookd databases may share a server). */
export const FANOUT_LOCK = "hashtext('hookd.fanout'), hashtext(current_setting('search_path'))";

export interface Fanout {
  /**
   * With the fan-out lock already held (exclusively, by a change in this transaction): reads the
   * version, so that `match` reloads what is older.
   */
  begin(q: Query): Promise<void>;
  /** Subscriptions of `tenantId` in `mode` that receive `event` (loaded if need be). */
  match(q: Query, tenantId: string, mode: Mode, event: FanoutEvent): Promise<string[]>;
  /**
   * Loads the copy of `tenantId` unless a current one is held; concurrent calls for one tenant share
   * one read. (Outside any transaction: whoever uses the copy checks its version under the lock.)
   */
  load(q: Query, tenantId: string): Promise<void>;
  /** The same from the cache alone, with the version it was loaded at; null when it holds no copy. */
  cached(tenantId: string): { version: string; match(mode: Mode, event: FanoutEvent): string[] } | null;
  /** After a statement showed the database's version is `version`: drops every copy older. */
  saw(version: string): void;
}

/** Inside a transaction that changes subscriptions, before it changes any. */
export async function lockFanoutForChange(q: Query): Promise<void> {
  await q(`SELECT pg_advisory_xact_lock(${FANOUT_LOCK})`);
  await q("UPDATE fanout_version SET version = version + 1 WHERE id = 1");
}

/** SQL taking the fan-out lock shared (ingest: before it fans out). */
export const FANOUT_LOCK_SHARED = `pg_advisory_xact_lock_shared(${FANOUT_LOCK})`;
/** SQL giving the fan-out version (in a statement that starts after the lock was taken). */
export const FANOUT_VERSION = "(SELECT version FROM fanout_version WHERE id = 1)";

export function createFanout(): Fanout {
  // Each tenant's enabled subscriptions, with the version they were read at (in one statement, so
  // the two agree). A copy is good while the database's version is still that one.
  let byTenant = new Map<string, { version: string; subs: Subscription[] }>();
  let current: string | null = null;

  const load = async (q: Query, tenantId: string) => {
    const rows = await q<
      { version: string | number } & (SubscriptionRow | { [K in keyof SubscriptionRow]: null })
    >(
      `SELECT v.version, ${SUBSCRIPTION_COLUMNS.split(", ")
        .map((c) => `w.${c}`)
        .join(", ")} FROM fanout_version v
       LEFT JOIN webhooks w ON w.tenant_id = $1 AND w.enabled WHERE v.id = 1 ORDER BY w.id`,
      [tenantId],
    );
    const version = String(rows[0]?.version);
    const subs = rows
      .filter((row): row is { version: string | number } & SubscriptionRow => row.id !== null)
      .map(toSubscription);
    saw(version);
    byTenant.set(tenantId, { version, subs });
    return subs;
  };

  const saw = (version: string) => {
    if (version === current) return;
    current = version;
    const kept = new Map<string, { version: string; subs: Subscription[] }>();
    for (const [tenant, entry] of byTenant) if (entry.version === version) kept.set(tenant, entry);
    byTenant = kept;
  };

  const loading = new Map<string, Promise<void>>();

  return {
    load(q, tenantId) {
      const entry = byTenant.get(tenantId);
      if (entry && entry.version === current) return Promise.resolve();
      let pending = loading.get(tenantId);
      if (!pending) {
        pending = load(q, tenantId)
          .then(() => {})
          .finally(() => loading.delete(tenantId));
        loading.set(tenantId, pending);
      }
      return pending;
    },
    async begin(q) {
      const [row] = await q<{ version: string | number }>(`SELECT ${FANOUT_VERSION} AS version`);
      saw(String(row?.version));
    },
    async match(q, tenantId, mode, event) {
      const entry = byTenant.get(tenantId);
      const subs = entry && entry.version === current ? entry.subs : await load(q, tenantId);
      return matchSubscriptions(subs, mode, event);
    },
    cached(tenantId) {
      const entry = byTenant.get(tenantId);
      if (!entry) return null;
      return { version: entry.version, match: (mode, event) => matchSubscriptions(entry.subs, mode, event) };
    },
    saw,
  };
}
