// The storage contract. Everything durable goes through a Store; nothing outside src/store touches
// SQL. The SQLite store implements it today; a PostgreSQL store for several instances will too, so
// every method is async and speaks domain types, never rows.
import type { DisabledReason, Webhook } from "../domain/webhook.ts";

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
  /** Subscriptions that would receive this event type. */
  eventType?: string;
  enabled?: boolean;
  /** Subscriptions that would receive this account's events (including those with no account filter). */
  accountId?: string;
}

export type NewWebhook = Omit<
  Webhook,
  "previousSecrets" | "consecutiveFailures" | "healthSince" | "updatedAt"
>;

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
  /** Restart the auto-disable window at this time and clear the failure count. */
  resetHealthAt?: number;
}

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
  /** Deletes the subscription; answers false when there was none. */
  deleteWebhook(id: string, tenantId: string | undefined, now: number): Promise<boolean>;
  /** Makes `secret` current; the old one stays valid until `graceUntil` (none when it is `now`). */
  rotateWebhookSecret(
    id: string,
    tenantId: string | undefined,
    secret: string,
    now: number,
    graceUntil: number,
  ): Promise<Webhook | null>;
}
