// What both stores need from a batch of attempt results before they apply it: the attempts of each
// subscription in order, as the outcomes the health rule (domain/retry.ts) counts.
import type { AttemptResult } from "./store.ts";

export interface AttemptOutcome {
  ok: boolean;
  gone: boolean;
  startedAt: number;
}

/** Each subscription's attempt outcomes in the batch, in their order, subscriptions sorted by id. */
export function attemptsBySubscription(results: readonly AttemptResult[]): [string, AttemptOutcome[]][] {
  const byId = new Map<string, AttemptOutcome[]>();
  for (const { webhookId, settlement, attempt } of results) {
    const list = byId.get(webhookId) ?? [];
    list.push({
      ok: settlement.action === "succeed",
      gone: settlement.action === "fail" && settlement.reason === "gone",
      startedAt: attempt.startedAt,
    });
    byId.set(webhookId, list);
  }
  // A fixed order, so that settlers on several instances lock subscriptions in the same order.
  return [...byId].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
