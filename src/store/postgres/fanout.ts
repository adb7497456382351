// Fan-out matching on PostgreSQL: the enabled subscriptions of each tenant (with their filters
// compiled once, SPEC §2 `filter`), cached per instance and
// good only while the database's fan-out version is the one they were loaded at. Every change to a
// subscription (on any instance) takes the fan-out lock exclusively and bumps the version in its
// transaction; ingest takes the lock shared and reads the version first. So an event accepted after
// a change committed anywhere is fanned out against that change, and an ingest running while a
// subscription is deleted finishes before the delete cancels its queued deliveries.
import { anyPatternMatches } from "../../domain/event-types.ts";
import { compileFilter, type FanoutEvent, type FilterPredicate, subjectOf } from "../../domain/filter.ts";
import type { Query } from "./client.ts";

/** The fan-out's advisory lock, one per schema (several hookd databases may share a server). */
const FANOUT_LOCK = "hashtext('hookd.fanout'), hashtext(current_setting('search_path'))";

interface Subscription {
  id: string;
  events: string[];
  accountIds: Set<string> | null;
  /** Null when the subscription has no filter. */
  filter: FilterPredicate | null;
}

export interface Fanout {
  /** Inside an ingest transaction, before matching: shared lock, and the cache checked against the version. */
  begin(q: Query): Promise<void>;
  /** Subscriptions of `tenantId` that receive `event`: its type, its account, and their filters. */
  match(q: Query, tenantId: string, event: FanoutEvent): Promise<string[]>;
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
    async match(q, tenantId, event) {
      let subs = byTenant.get(tenantId);
      if (!subs) {
        const rows = await q<{
          id: string;
          events: string;
          account_ids: string | null;
          filter: string | null;
        }>(
          "SELECT id, events, account_ids, filter FROM webhooks WHERE tenant_id = $1 AND enabled ORDER BY id",
          [tenantId],
        );
        subs = rows.map((row) => ({
          id: row.id,
          events: JSON.parse(row.events) as string[],
          accountIds: row.account_ids === null ? null : new Set(JSON.parse(row.account_ids) as string[]),
          filter: row.filter === null ? null : compileFilter(JSON.parse(row.filter)),
        }));
        byTenant.set(tenantId, subs);
      }
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
  };
}
