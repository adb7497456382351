// Fan-out matching: the enabled subscriptions of each tenant, cached in memory with their compiled
// filters and dropped whenever a subscription changes (this store is their only writer), so ingest
// neither queries them nor re-reads a filter per event.
import type { Database } from "bun:sqlite";
import type { FanoutEvent } from "../../domain/filter.ts";
import type { Mode } from "../../domain/mode.ts";
import {
  matchSubscriptions,
  SUBSCRIPTION_COLUMNS,
  type Subscription,
  type SubscriptionRow,
  toSubscription,
} from "../subscription-match.ts";

export interface SubscriptionIndex {
  /** Subscriptions of `tenantId` in `mode` that receive `event`: its type, its account, their filters. */
  match(tenantId: string, mode: Mode, event: FanoutEvent): string[];
  invalidate(): void;
}

export function createSubscriptionIndex(db: Database): SubscriptionIndex {
  let byTenant = new Map<string, Subscription[]>();

  const load = (tenantId: string): Subscription[] => {
    const rows = db
      .query<SubscriptionRow, [string]>(
        `SELECT ${SUBSCRIPTION_COLUMNS} FROM webhooks WHERE tenant_id = ? AND enabled = 1 ORDER BY id`,
      )
      .all(tenantId);
    const subs = rows.map(toSubscription);
    byTenant.set(tenantId, subs);
    return subs;
  };

  return {
    match(tenantId, mode, event) {
      return matchSubscriptions(byTenant.get(tenantId) ?? load(tenantId), mode, event);
    },
    invalidate() {
      byTenant = new Map();
    },
  };
}
