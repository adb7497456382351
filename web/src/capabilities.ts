// What this session may do, so the page offers only those actions. The console offers every
// action (the API's answer, with its message, decides). A portal session's capabilities are
// learned from the API itself: a write its token lacks the scope for is a 403 before any lookup,
// one it has reaches the lookup of an id that cannot exist (404).
import { signal } from "@preact/signals";
import { ApiFailure, api } from "./api.ts";
import { appKind } from "./session.ts";

export interface Capabilities {
  manageWebhooks: boolean;
  replay: boolean;
  /** Operator-only views: portal sessions, instances and queue. */
  operator: boolean;
}

export const capabilities = signal<Capabilities | null>(
  appKind === "console" ? { manageWebhooks: true, replay: true, operator: true } : null,
);

const NO_SUCH_ID = "00000000000000000000000000";

async function allowed(method: string, path: string, body: unknown): Promise<boolean> {
  try {
    await api(method, path, body);
    return true;
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 403) return false;
    if (error instanceof ApiFailure && error.status === 401) throw error;
    return true;
  }
}

export async function learnPortalCapabilities(): Promise<void> {
  const [manageWebhooks, replay] = await Promise.all([
    allowed("PATCH", `/v1/webhooks/wh_${NO_SUCH_ID}`, {}),
    allowed("POST", `/v1/deliveries/dlv_${NO_SUCH_ID}/retry`, undefined),
  ]);
  capabilities.value = { manageWebhooks, replay, operator: false };
}
