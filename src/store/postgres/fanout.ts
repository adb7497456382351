// Fan-out matching on PostgreSQL: the enabled subscriptions of each tenant (with their filters
// compiled once, SPEC §2 `filter`), cached per instance and
// good only while the database's fan-out version is the one they were loaded at. Every change to a
// subscription (on any instance) takes the fan-out lock exclusively and bumps the version in its
// transaction; ingest takes the lock shared and reads the version first. So an event accepted after
// a change committed anywhere is fanned out against that change, and an ingest running while a
// subscription is deleted finishes before the delete cancels its queued deliveries.
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
const FANOUT_LOCK = "hashtext('hookd.fanout'), hashtext(current_setting('search_path'))";

export interface Fanout {
  /** Inside an ingest transaction, before matching: shared lock, and the cache checked against the version. */
  begin(q: Query): Promise<void>;
  /** Subscriptions of `tenantId` in `mode` that receive `event`: its type, its account, their filters. */
  match(q: Query, tenantId: string, mode: Mode, event: FanoutEvent): Promise<string[]>;
}

/** Inside a transaction that changes subscriptions, before it changes any. */
export async function lockFanoutForChange(q: Query): Promise<void> {
  await q(`SELECT pg_advisory_xact_lock(${FANOUT_LOCK})`);
  await q("UPDATE fanout_version SET version = version + 1 WHERE id = 1");
}

export function createFanout(): Fanout {
  let version: string | null = null;
  let byTenant = new Map<string, Subscription[]>();

  return {
    async begin(q) {
      const [row] = await q<{ version: string | number }>(
        `SELECT pg_advisory_xact_lock_shared(${FANOUT_LOCK}), (SELECT version FROM fanout_version WHERE id = 1) AS version`,
      );
      const current = String(row?.version);
      if (current !== version) {
        version = current;
        byTenant = new Map();
      }
    },
    async match(q, tenantId, mode, event) {
      let subs = byTenant.get(tenantId);
      if (!subs) {
        const rows = await q<SubscriptionRow>(
          `SELECT ${SUBSCRIPTION_COLUMNS} FROM webhooks WHERE tenant_id = $1 AND enabled ORDER BY id`,
          [tenantId],
        );
        subs = rows.map(toSubscription);
        byTenant.set(tenantId, subs);
      }
      return matchSubscriptions(subs, mode, event);
    },
  };
}
