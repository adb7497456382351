// Fan-out matching: the enabled subscriptions of each tenant, cached in memory and dropped whenever
// a subscription changes (this store is their only writer), so ingest does not query them per event.
import type { Database } from "bun:sqlite";
import { anyPatternMatches } from "../../domain/event-types.ts";
import type { Mode } from "../../domain/mode.ts";

interface Subscription {
  id: string;
  mode: Mode;
  events: string[];
  accountIds: Set<string> | null;
}

export interface SubscriptionIndex {
  /** Subscriptions of `tenantId` in `mode` that receive an event of `type` for `accountId`. */
  match(tenantId: string, mode: Mode, type: string, accountId: string | null): string[];
  invalidate(): void;
}

export function createSubscriptionIndex(db: Database): SubscriptionIndex {
  let byTenant = new Map<string, Subscription[]>();

  const load = (tenantId: string): Subscription[] => {
    const rows = db
      .query<{ id: string; mode: Mode; events: string; account_ids: string | null }, [string]>(
        "SELECT id, mode, events, account_ids FROM webhooks WHERE tenant_id = ? AND enabled = 1 ORDER BY id",
      )
      .all(tenantId);
    const subs = rows.map((row) => ({
      id: row.id,
      mode: row.mode,
      events: JSON.parse(row.events) as string[],
      accountIds: row.account_ids === null ? null : new Set(JSON.parse(row.account_ids) as string[]),
    }));
    byTenant.set(tenantId, subs);
    return subs;
  };

  return {
    match(tenantId, mode, type, accountId) {
      const subs = byTenant.get(tenantId) ?? load(tenantId);
      const out: string[] = [];
      for (const sub of subs) {
        if (sub.mode !== mode) continue;
        if (sub.accountIds !== null && (accountId === null || !sub.accountIds.has(accountId))) continue;
        if (anyPatternMatches(sub.events, type)) out.push(sub.id);
      }
      return out;
    },
    invalidate() {
      byTenant = new Map();
    },
  };
}
