// Fan-out matching: the enabled subscriptions of each tenant, cached in memory with their compiled
// filters and dropped whenever a subscription changes (this store is their only writer), so ingest
// neither queries them nor re-reads a filter per event.
import type { Database } from "bun:sqlite";
import { anyPatternMatches } from "../../domain/event-types.ts";
import { compileFilter, type FanoutEvent, type FilterPredicate, subjectOf } from "../../domain/filter.ts";

interface Subscription {
  id: string;
  events: string[];
  accountIds: Set<string> | null;
  /** Null when the subscription has no filter. */
  filter: FilterPredicate | null;
}

export interface SubscriptionIndex {
  /** Subscriptions of `tenantId` that receive `event`: its type, its account, and their filters. */
  match(tenantId: string, event: FanoutEvent): string[];
  invalidate(): void;
}

export function createSubscriptionIndex(db: Database): SubscriptionIndex {
  let byTenant = new Map<string, Subscription[]>();

  const load = (tenantId: string): Subscription[] => {
    const rows = db
      .query<{ id: string; events: string; account_ids: string | null; filter: string | null }, [string]>(
        "SELECT id, events, account_ids, filter FROM webhooks WHERE tenant_id = ? AND enabled = 1 ORDER BY id",
      )
      .all(tenantId);
    const subs = rows.map((row) => ({
      id: row.id,
      events: JSON.parse(row.events) as string[],
      accountIds: row.account_ids === null ? null : new Set(JSON.parse(row.account_ids) as string[]),
      filter: row.filter === null ? null : compileFilter(JSON.parse(row.filter)),
    }));
    byTenant.set(tenantId, subs);
    return subs;
  };

  return {
    match(tenantId, event) {
      const subs = byTenant.get(tenantId) ?? load(tenantId);
      const { type, accountId } = event;
      const out: string[] = [];
      let subject: ReturnType<typeof subjectOf> | null = null;
      for (const sub of subs) {
        if (sub.accountIds !== null && (accountId === null || !sub.accountIds.has(accountId))) continue;
        if (!anyPatternMatches(sub.events, type)) continue;
        if (sub.filter !== null) {
          subject ??= subjectOf(event);
          if (!sub.filter(subject)) continue;
        }
        out.push(sub.id);
      }
      return out;
    },
    invalidate() {
      byTenant = new Map();
    },
  };
}
