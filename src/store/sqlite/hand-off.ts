// Fresh deliveries leased by the ingest batch that creates them (Store.handOff). At a low rate
// every event used to cost a claim transaction of its own after its ingest commit (≈ 0.2 ms on the
// event's way to its receiver); a delivery inserted already leased needs none. The batch leases a
// first attempt only where the claim would have taken it at once: the taker has room, the
// subscription is enabled, unordered, not rate-limited, below its max_in_flight with every lease
// counted, and nothing of it is due before (its due hint is unset or later than now, so a queued
// delivery is never overtaken). Once one of a subscription's new deliveries waits for a claim,
// the later ones of the same batch wait too.
import type { Database } from "bun:sqlite";
import { effectiveMaxInFlight, leaseEnd, type Webhook } from "../../domain/webhook.ts";
import type { ClaimedDelivery, HandOffTaker } from "../store.ts";
import type { LeaseCounter } from "./dispatch.ts";
import { selectWebhook } from "./webhooks.ts";

/** A lease granted at ingest: the delivery row is inserted with it. */
export interface IngestLease {
  owner: string;
  until: number;
  webhook: Webhook;
}

interface Target {
  /** Null: this batch leases nothing of it (disabled, FIFO, rate-limited, something due). */
  webhook: Webhook | null;
  leased: number;
}

export interface HandOffBatch {
  /** A lease for a new first attempt of `webhookId`, or null: it waits for a claim. */
  lease(webhookId: string, now: number): IngestLease | null;
  /** Whether some new delivery of this batch waits for a claim (the dispatcher must be woken). */
  readonly queued: boolean;
  /** The leased deliveries of one request whose writes are kept. */
  keep(claimed: readonly ClaimedDelivery[]): void;
  /** After the commit: counts the leases and hands them over. */
  commit(): void;
}

export function createHandOffBatch(
  db: Database,
  taker: HandOffTaker | null,
  leases: Pick<LeaseCounter, "add" | "count">,
): HandOffBatch {
  const dueHint = db.query<{ next_due_at: number | null }, [string]>(
    "SELECT next_due_at FROM webhooks WHERE id = ?",
  );
  const targets = new Map<string, Target>();
  const kept: ClaimedDelivery[] = [];
  let room: number | null = null;
  let owner: string | null = null;
  let queued = false;

  const target = (webhookId: string, now: number): Target => {
    let found = targets.get(webhookId);
    if (!found) {
      const webhook = selectWebhook(db, webhookId);
      const due = dueHint.get(webhookId)?.next_due_at ?? null;
      const eligible =
        webhook?.enabled === true &&
        webhook.ordering === "unordered" &&
        webhook.rateLimit === null &&
        (due === null || due > now);
      found = { webhook: eligible ? webhook : null, leased: 0 };
      targets.set(webhookId, found);
    }
    return found;
  };

  return {
    lease(webhookId, now) {
      if (taker === null) {
        queued = true;
        return null;
      }
      room ??= taker.room();
      const t = room > 0 ? target(webhookId, now) : null;
      const webhook = t?.webhook ?? null;
      if (
        t === null ||
        webhook === null ||
        leases.count(webhookId, now) + t.leased >= effectiveMaxInFlight(webhook)
      ) {
        // Its later deliveries of this batch must not overtake this one.
        if (t) t.webhook = null;
        else targets.set(webhookId, { webhook: null, leased: 0 });
        queued = true;
        return null;
      }
      t.leased++;
      room--;
      owner ??= taker.owner();
      return { owner, until: leaseEnd(now, taker.leaseMs, webhook), webhook };
    },
    get queued() {
      return queued;
    },
    keep(claimed) {
      kept.push(...claimed);
    },
    commit() {
      if (kept.length === 0 || taker === null) return;
      for (const d of kept) leases.add(d.id, d.leaseOwner, d.webhook.id, d.leaseUntil);
      taker.take(kept);
    },
  };
}
