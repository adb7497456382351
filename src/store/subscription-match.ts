// Fan-out matching shared by both drivers' caches: a subscription row as it is cached (patterns,
// accounts, compiled filter), and which cached subscriptions of a tenant receive an event.
import { anyPatternMatches } from "../domain/event-types.ts";
import { compileFilter, type FanoutEvent, type FilterPredicate, subjectOf } from "../domain/filter.ts";
import type { Mode } from "../domain/mode.ts";

export interface Subscription {
  id: string;
  mode: Mode;
  events: string[];
  accountIds: Set<string> | null;
  /** Null when the subscription has no filter. */
  filter: FilterPredicate | null;
}

/** The columns a cache loads for each enabled subscription of a tenant. */
export const SUBSCRIPTION_COLUMNS = "id, mode, events, account_ids, filter";

export interface SubscriptionRow {
  id: string;
  mode: Mode;
  events: string;
  account_ids: string | null;
  filter: string | null;
}

/** A cached subscription: its filter compiled once, here, not per event. */
export const toSubscription = (row: SubscriptionRow): Subscription => ({
  id: row.id,
  mode: row.mode,
  events: JSON.parse(row.events) as string[],
  accountIds: row.account_ids === null ? null : new Set(JSON.parse(row.account_ids) as string[]),
  filter: row.filter === null ? null : compileFilter(JSON.parse(row.filter)),
});

/** The ids of the subscriptions in `mode` that receive `event`: its type, its account, their filters. */
export function matchSubscriptions(subs: readonly Subscription[], mode: Mode, event: FanoutEvent): string[] {
  const { type, accountId } = event;
  const out: string[] = [];
  let subject: ReturnType<typeof subjectOf> | null = null;
  for (const sub of subs) {
    if (sub.mode !== mode) continue;
    if (sub.accountIds !== null && (accountId === null || !sub.accountIds.has(accountId))) continue;
    if (!anyPatternMatches(sub.events, type)) continue;
    if (sub.filter !== null) {
      subject ??= subjectOf(event);
      if (!sub.filter(subject)) continue;
    }
    out.push(sub.id);
  }
  return out;
}
