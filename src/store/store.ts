// The storage contract. Everything durable goes through a Store; nothing outside src/store touches
// SQL. Two implementations: SQLite (one process) and PostgreSQL (any number of instances over one
// database, SPEC §6). Every method is async and speaks domain types; every guarantee below holds
// across instances on PostgreSQL (caps and leases are counted in the database, never in a process).
import type { Attempt, Delivery, DeliveryStatus, EventStatus } from "../domain/delivery.ts";
import type { Filter } from "../domain/filter.ts";
import type { Mode } from "../domain/mode.ts";
import type { Capability, SessionKind } from "../domain/portal.ts";
import type { StatCounts } from "../domain/stats.ts";
import type { DisabledReason, Ordering, SignatureScheme, Webhook } from "../domain/webhook.ts";

export type SortDirection = "asc" | "desc";

/** A position in a list: the sort key of a row and its id, the tie-breaker. */
export interface Cursor {
  value: string | number;
  id: string;
}

export interface PageQuery<Order extends string> {
  order: Order;
  limit: number;
  after?: Cursor;
  before?: Cursor;
}

export interface Page<T> {
  items: T[];
  hasNextPage: boolean;
  hasPreviousPage: boolean;
}

export const WEBHOOK_ORDERS = [
  "created_at",
  "-created_at",
  "updated_at",
  "-updated_at",
  "name",
  "-name",
] as const;
export type WebhookOrder = (typeof WEBHOOK_ORDERS)[number];

export interface WebhookFilter {
  /** Only this tenant's; undefined for an admin listing every tenant. */
  tenantId?: string;
  mode?: Mode;
  /** Subscriptions that would receive this event type. */
  eventType?: string;
  enabled?: boolean;
  /** Subscriptions that would receive this account's events (including those with no account filter). */
  accountId?: string;
  /** Text every listed subscription's name, URL, id or description contains, in any case. */
  search?: string;
  ordering?: Ordering;
}

/** The delivery controls default to none: no filter, unordered, no rate limit, v1 signatures. */
type WebhookControls = "filter" | "ordering" | "rateLimit" | "signatureScheme";

export type NewWebhook = Omit<
  Webhook,
  "mode" | "previousSecrets" | "consecutiveFailures" | "healthSince" | "updatedAt" | WebhookControls
> &
  Partial<Pick<Webhook, WebhookControls>> & { mode?: Mode };

export interface WebhookChanges {
  name?: string;
  description?: string | null;
  url?: string;
  events?: string[];
  accountIds?: string[] | null;
  enabled?: boolean;
  disabledReason?: DisabledReason | null;
  timeoutSeconds?: number;
  headers?: Record<string, string>;
  metadata?: Record<string, string>;
  maxInFlight?: number;
  filter?: Filter | null;
  ordering?: Ordering;
  rateLimit?: number | null;
  /** A new scheme comes with new key material (`secret`); earlier secrets stop signing at once. */
  signatureScheme?: SignatureScheme;
  /** Replaces the signing secret or key and ends every previous one (a change of scheme). */
  secret?: string;
  /** Restart the auto-disable window at this time and clear the failure count. */
  resetHealthAt?: number;
}

export interface NewEvent {
  id: string;
  type: string;
  accountId: string | null;
  /** The exact body every delivery of this event sends. */
  payload: string;
  createdAt: number;
  /**
   * The event's data, when the caller has it parsed, for the subscriptions' filters; read from
   * `payload` when absent. Not stored on its own.
   */
  data?: unknown;
}

export interface EventRecord extends NewEvent {
  tenantId: string;
  mode: Mode;
  deliveriesCount: number;
}

export interface EventWithStatus extends EventRecord {
  status: EventStatus;
  /** Deliveries by status. */
  deliveryCounts: Partial<Record<DeliveryStatus, number>>;
}

export interface IngestRequest {
  tenantId: string;
  /** The events' mode (default live): they fan out to webhooks of this mode only; idempotency keys are per mode. */
  mode?: Mode;
  /** Idempotency-Key (or the client's event id) with the hash of the request it came with. */
  idempotency?: { key: string; requestHash: string; expiresAt: number };
  /** Per-event client ids, each an idempotency key of its own (batch requests). */
  eventKeys?: ({ key: string; requestHash: string; expiresAt: number } | null)[];
  events: NewEvent[];
  now: number;
}

export type IngestResult =
  | { kind: "accepted"; events: EventRecord[] }
  /** The same key and request within the window: the first response's events, nothing new. */
  | { kind: "replayed"; events: EventRecord[] }
  /** The same key with another request. */
  | { kind: "conflict" };

export interface EventFilter {
  tenantId?: string;
  mode?: Mode;
  type?: string;
  status?: EventStatus;
  accountId?: string;
  from?: number;
  to?: number;
}

export interface DeliveryFilter {
  tenantId?: string;
  mode?: Mode;
  status?: DeliveryStatus;
  eventId?: string;
  webhookId?: string;
}

/** A delivery claimed for an attempt, with what the attempt needs. */
export interface ClaimedDelivery {
  id: string;
  leaseOwner: string;
  eventId: string;
  eventType: string;
  payload: string;
  status: DeliveryStatus;
  /** Attempts in the current series before this one. */
  seriesAttempts: number;
  /** When the lease ends (the attempt's timeout and a margin fit inside it). */
  leaseUntil: number;
  webhook: Webhook;
}

export interface ClaimRequest {
  now: number;
  /** A unique lease owner for this claim. */
  owner: string;
  leaseMs: number;
  /** Deliveries this claim may take in all. */
  limit: number;
  /** Of which retries (status retrying) at most this many; the rest is kept for first attempts. */
  retryLimit: number;
}

/** A dispatcher that takes fresh deliveries from the ingest that creates them (Store.handOff). */
export interface HandOffTaker {
  /** How many more attempts it can start now; 0 leaves every delivery to claimDue. */
  room(): number;
  /** A unique lease owner, asked once per committing batch that leases something. */
  owner(): string;
  leaseMs: number;
  /** Called once the batch has committed, with what it leased; each lease counts from then on. */
  take(claimed: readonly ClaimedDelivery[]): void;
}

export type Settlement =
  | { action: "succeed" }
  | { action: "retry"; at: number }
  | { action: "fail"; reason: "gone" | "blocked_address" | "disabled" }
  | { action: "exhaust" };

export interface AttemptResult {
  deliveryId: string;
  leaseOwner: string;
  webhookId: string;
  /** The webhook's mode (the metrics' label; default live). */
  mode?: Mode;
  attempt: Omit<Attempt, "deliveryId">;
  signature: string | null;
  settlement: Settlement;
}

export interface HealthPolicy {
  disableAfterFailures: number;
  disableAfterMs: number;
}

export interface DisabledWebhook {
  webhookId: string;
  tenantId: string;
  url: string;
  reason: "failing" | "gone";
  /** The `webhook.disabled` event published about it. */
  event: EventRecord;
}

export interface FinalCount {
  status: DeliveryStatus;
  mode: Mode;
  count: number;
}

/** Adds `count` deliveries of `mode` that reached `status` to `finals`. */
export function addFinal(finals: FinalCount[], status: DeliveryStatus, mode: Mode, count = 1): void {
  if (count <= 0) return;
  const found = finals.find((f) => f.status === status && f.mode === mode);
  if (found) found.count += count;
  else finals.push({ status, mode, count });
}

export interface SettleOutcome {
  /** Per result: false when the lease was lost (the delivery was reclaimed, cancelled or settled). */
  applied: boolean[];
  disabled: DisabledWebhook[];
  /** How many deliveries reached each final status, by mode, for metrics. */
  finals: FinalCount[];
}

export interface QueueStats {
  depth: number;
  oldestDueAt: number | null;
}

/** A portal session (one tenant's) or a console session (hookd console-link, an admin's). */
export interface PortalSession {
  id: string;
  kind: SessionKind;
  /** null for a console session. */
  tenantId: string | null;
  mode: Mode;
  capabilities: Capability[];
  createdAt: number;
  expiresAt: number;
}

export interface NewPortalSession extends PortalSession {
  /** SHA-256 (hex) of the token: the token itself is never stored. */
  tokenHash: string;
}

export interface PortalSessionFilter {
  /** Only this tenant's; undefined for an admin (every tenant's and the console sessions). */
  tenantId?: string;
  mode?: Mode;
  /** Live sessions only: those that expire after this. */
  now: number;
}

/** What GET /v1/stats reads: the summed aggregates of one span, the queue and the webhooks. */
export interface StatsQuery {
  /** The span width in ms (domain/stats.ts STAT_SPANS). */
  span: number;
  since: number;
  until: number;
  tenantId?: string;
  webhookId?: string;
  mode?: Mode;
  now: number;
}

export interface StatsRead {
  /** One row per span start that has any count, summed over webhooks and shards. */
  rows: ({ start: number } & StatCounts)[];
  queue: QueueStats;
  webhooks: { enabled: number; disabled: number; failing: number };
}

/** The tables a store keeps, in the order a copy writes them (parents first). */
export const TABLES = [
  "settings",
  "webhooks",
  "webhook_previous_secrets",
  "events",
  "deliveries",
  "attempts",
  "idempotency_keys",
  "portal_sessions",
  "webhook_stats",
] as const;
export type TableName = (typeof TABLES)[number];

/**
 * One stored row in the drivers' shared format, for `storage copy` and for tests that look at what
 * was stored: the columns of the SQLite schema, times as epoch milliseconds, JSON columns as JSON
 * text, booleans as 0 or 1. A leased delivery's `next_attempt_at` is when its lease ends.
 */
export type StoredRow = Record<string, string | number | null>;

export type RequeueRefusal = "queued" | "cancelled" | "webhook_deleted" | "webhook_disabled";

export interface Store {
  /** Which implementation, for logs and /readyz. */
  readonly driver: "sqlite" | "postgres";

  /** Proves the database accepts a write now; throws StorageUnavailableError when it does not. */
  checkWritable(now: number): Promise<void>;
  close(): Promise<void>;

  /** A value from the settings table (for example the first-start admin key hash). */
  getSetting(key: string): Promise<string | null>;
  /** Stores a setting unless it exists; answers whether it was stored. */
  insertSettingIfAbsent(key: string, value: string): Promise<boolean>;

  insertWebhook(webhook: NewWebhook): Promise<Webhook>;
  /** A subscription by id, within a tenant when one is given (another tenant's is null). */
  findWebhook(id: string, tenantId?: string): Promise<Webhook | null>;
  listWebhooks(filter: WebhookFilter, page: PageQuery<WebhookOrder>): Promise<Page<Webhook>>;
  updateWebhook(
    id: string,
    tenantId: string | undefined,
    changes: WebhookChanges,
    now: number,
  ): Promise<Webhook | null>;
  /** Deletes the subscription and cancels its queued deliveries; false when there was none. */
  deleteWebhook(id: string, tenantId: string | undefined, now: number): Promise<boolean>;
  /**
   * Makes `secret` current; the old one stays valid until `graceUntil` (not at all when it is `now`),
   * and secrets of earlier rotations end by then too.
   */
  rotateWebhookSecret(
    id: string,
    tenantId: string | undefined,
    secret: string,
    now: number,
    graceUntil: number,
  ): Promise<Webhook | null>;

  /** Stores events and fans them out to every matching subscription, in one transaction. */
  ingest(request: IngestRequest): Promise<IngestResult>;
  /** A `webhook.test` event delivered to one subscription alone. */
  insertTestEvent(webhook: Webhook, event: NewEvent): Promise<{ event: EventRecord; delivery: Delivery }>;
  findEvent(id: string, tenantId?: string): Promise<EventWithStatus | null>;
  listEvents(filter: EventFilter, page: PageQuery<"-created_at">): Promise<Page<EventWithStatus>>;

  findDelivery(id: string, tenantId?: string): Promise<Delivery | null>;
  listDeliveries(filter: DeliveryFilter, page: PageQuery<"-created_at">): Promise<Page<Delivery>>;
  listAttempts(deliveryId: string, page: PageQuery<"started_at">): Promise<Page<Attempt>>;
  /**
   * Re-queues a final delivery now, as a new series. Refused ("queued", "cancelled",
   * "webhook_deleted", "webhook_disabled") in the same transaction that would apply it.
   */
  requeueDelivery(
    id: string,
    tenantId: string | undefined,
    now: number,
  ): Promise<Delivery | RequeueRefusal | null>;
  /** Re-queues a subscription's failed and exhausted deliveries created in [since, until). */
  recoverDeliveries(
    webhookId: string,
    since: number,
    until: number,
    now: number,
  ): Promise<number | "webhook_deleted" | "webhook_disabled">;

  /** Leases due deliveries, fairly across subscriptions and within their caps. */
  claimDue(request: ClaimRequest): Promise<ClaimedDelivery[]>;
  /** Records attempts and applies their settlements in one transaction. */
  settle(
    results: readonly AttemptResult[],
    now: number,
    health: HealthPolicy,
    newEventId: () => string,
  ): Promise<SettleOutcome>;
  /**
   * Optional: `settle(results)` then `claimDue(request)` in one transaction, so the places the
   * results free are claimed at once and both share one commit (a driver without it gets the two
   * calls). The claim sees the settlement; when the transaction fails neither happened.
   */
  settleAndClaim?(
    results: readonly AttemptResult[],
    now: number,
    health: HealthPolicy,
    newEventId: () => string,
    request: ClaimRequest,
  ): Promise<{ outcome: SettleOutcome; claimed: ClaimedDelivery[] }>;
  /**
   * Optional: while `taker` is registered, an ingest leases the first attempts it creates to the
   * taker when the taker has room and each subscription has a free place and nothing else due, and
   * hands them over when its transaction commits (before its sync), so a fresh event needs no
   * claim of its own. Everything else waits for claimDue. Answers a function that unregisters it.
   * (SQLite: one process counts every lease. PostgreSQL has no such call: the claim counts places
   * in the database for every instance.)
   */
  handOff?(taker: HandOffTaker): () => void;
  /** Gives leased deliveries back, due now (shutdown). */
  releaseLeases(leases: readonly { deliveryId: string; leaseOwner: string }[], now: number): Promise<number>;
  /** The earliest time a subscription not in `exclude` has something due; null when none. */
  nextDueAt(exclude: readonly string[]): Promise<number | null>;
  queueStats(now: number): Promise<QueueStats>;

  /**
   * Records this instance as live (until `now + ttlMs` by the database's clock) and answers how many
   * instances are live, this one included. SQLite: always 1.
   */
  heartbeat(instanceId: string, ttlMs: number): Promise<number>;
  /** Forgets this instance at a graceful stop. */
  removeInstance(instanceId: string): Promise<void>;
  /**
   * Runs `fn` unless another instance is running maintenance now; answers null when one is.
   * (PostgreSQL: a session advisory lock; SQLite: one process, always runs.)
   */
  withMaintenanceLock<T>(fn: () => Promise<T>): Promise<T | null>;
  /**
   * Calls `listener` when another instance committed work that may be due now (ingest, requeue,
   * released leases), and after a lost connection came back (work may have been missed). Answers
   * a function that stops listening. SQLite: there is no other instance; called when an ingest
   * batch commits, before its WAL sync (and so before its 202s), so the claim overlaps the sync.
   */
  onWork(listener: () => void): Promise<() => void>;
  /** Recounts each subscription's in-flight count from the leases in the database (the reaper). */
  reconcileInFlight(now: number): Promise<number>;

  /** Whether the store holds any subscription, event or setting (storage copy refuses a non-empty target). */
  hasData(): Promise<boolean>;
  /** Up to `limit` rows of `table` in a stable order, after the row whose key `exportRows` gave last. */
  exportRows(
    table: TableName,
    after: string | null,
    limit: number,
  ): Promise<{ rows: StoredRow[]; last: string | null }>;
  /** Writes rows in the shared format (storage copy); all of one call in one transaction. */
  importRows(table: TableName, rows: readonly StoredRow[]): Promise<void>;

  insertPortalSession(session: NewPortalSession): Promise<void>;
  /** The live session whose token has this hash, or null (unknown, revoked or expired at `now`). */
  findPortalSessionByToken(tokenHash: string, now: number): Promise<PortalSession | null>;
  /** A live session by id, within a tenant when one is given (another tenant's is null). */
  findPortalSession(id: string, tenantId: string | undefined, now: number): Promise<PortalSession | null>;
  listPortalSessions(
    filter: PortalSessionFilter,
    page: PageQuery<"-created_at">,
  ): Promise<Page<PortalSession>>;
  /** Revokes one live session; false when there was none (or it is another tenant's). */
  deletePortalSession(id: string, tenantId: string | undefined, now: number): Promise<boolean>;
  /** Revokes every live session of a tenant (undefined: every session), of one mode when given; answers how many. */
  deletePortalSessions(tenantId: string | undefined, now: number, mode?: Mode): Promise<number>;

  /** The statistics aggregates, queue and webhook counts for GET /v1/stats. */
  readStats(query: StatsQuery): Promise<StatsRead>;

  /**
   * Removes final deliveries, their attempts and events older than `before`, at most `limit` rows
   * each, and answers how many; in the same run, statistics aggregates and sessions that ended
   * before it (not counted).
   */
  sweepRetention(before: number, limit: number): Promise<number>;
  sweepIdempotencyKeys(now: number, limit: number): Promise<number>;
}
