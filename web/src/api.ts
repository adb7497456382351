// The one client of the /v1 API: every call carries the session's credential, every error keeps
// the API's own message, and a 401 ends the session once (views unmount; nothing calls again).
import { credential, endSession } from "./session.ts";

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: { path: string; message: string }[] = [],
  ) {
    super(message);
  }
}

export interface Page<T> {
  data: T[];
  has_next_page: boolean;
  has_previous_page: boolean;
  start_cursor: string | null;
  end_cursor: string | null;
}

type Query = Record<string, string | number | boolean | null | undefined>;

export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const token = credential.value;
  if (token === null) throw new ApiFailure(401, "unauthorized", "You are signed out.");
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiFailure(0, "network", "hookd could not be reached. Check that it is running.");
  }
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (response.ok) return parsed as T;
  const error = (parsed as { error?: { code?: string; message?: string; details?: [] } } | null)?.error;
  const failure = new ApiFailure(
    response.status,
    error?.code ?? "http_error",
    error?.message ?? `hookd answered ${response.status} ${response.statusText}`,
    error?.details ?? [],
  );
  // Only the credential this call was made with ends: a newer sign-in is left alone.
  if (response.status === 401 && credential.value === token) {
    endSession(`Your session has ended: ${failure.message}`);
  }
  throw failure;
}

export function describeError(error: unknown): string {
  if (error instanceof ApiFailure) {
    const details = error.details.map((d) => `${d.path}: ${d.message}`).join("; ");
    return details ? `${error.message} (${details})` : error.message;
  }
  return error instanceof Error ? error.message : String(error);
}

// The shapes of the public API this app reads (SPEC §2).
export interface Webhook {
  id: string;
  tenant_id: string;
  name: string;
  description: string | null;
  url: string;
  events: string[];
  account_ids: string[] | null;
  enabled: boolean;
  disabled_reason: "manual" | "failing" | "gone" | null;
  timeout_seconds: number;
  headers: Record<string, string>;
  metadata: Record<string, string>;
  max_in_flight: number;
  filter?: Record<string, unknown> | null;
  ordering?: "unordered" | "fifo";
  rate_limit?: number | null;
  signature_scheme?: "v1" | "v1a";
  public_key?: string;
  previous_public_keys?: { public_key: string; expires_at: string }[];
  mode?: string;
  secret_last4: string;
  secret?: string;
  created_at: string;
  updated_at: string;
}

export interface EventSummary {
  id: string;
  tenant_id: string;
  type: string;
  account_id: string | null;
  created_at: string;
  deliveries_count: number;
  mode?: string;
}

export interface EventDetail extends EventSummary {
  data: Record<string, unknown>;
  status: string;
  deliveries: Record<string, number>;
}

export interface Delivery {
  id: string;
  tenant_id: string;
  event_id: string;
  webhook_id: string;
  event_type: string;
  status: string;
  attempts: number;
  response_status_code: number | null;
  last_attempt_at: string | null;
  next_retry_at: string | null;
  created_at: string;
  payload: string;
  signature: string | null;
}

export interface Attempt {
  id: string;
  started_at: string;
  duration_ms: number;
  response_status_code: number | null;
  response_headers: Record<string, string> | null;
  response_body: string | null;
  error: string | null;
}

export interface EventType {
  name: string;
  description: string;
  schema?: Record<string, unknown>;
}

export interface Stats {
  since: string;
  until: string;
  bucket: string;
  series: { start: string; events: number; attempts: number; succeeded: number; failed: number }[];
  totals: {
    events: number;
    attempts: number;
    succeeded: number;
    failed: number;
    success_rate: number | null;
    p50_ms: number | null;
    p95_ms: number | null;
  };
  queue: { depth: number; oldest_due_seconds: number | null };
  webhooks: { enabled: number; disabled: number; failing: number };
}

export interface PortalSession {
  id: string;
  kind?: "portal" | "console";
  token?: string;
  url?: string;
  /** null for a console session (hookd console-link without --tenant). */
  tenant_id: string | null;
  mode: string;
  capabilities: string[];
  expires_at: string;
  created_at?: string;
}

export const DELIVERY_STATUSES = ["pending", "retrying", "success", "failed", "exhausted", "cancelled"];
export const EVENT_STATUSES = ["pending", "delivered", "failed", "no_subscribers"];
