// What this credential may do, so the page offers only those actions: asked of GET /v1/whoami
// (kind, tenant, mode, scopes, a session's capabilities and expiry). Against a server without it,
// the portal learns the two write capabilities from the API itself (a write its token has no
// scope for is a 403 before any lookup; one it has reaches the lookup of an id that cannot exist,
// a 404), and the console offers everything, leaving the API's answer to decide.
import { signal } from "@preact/signals";
import { ApiFailure, api } from "./api.ts";
import { appKind, credential } from "./session.ts";

export interface Capabilities {
  manageWebhooks: boolean;
  /** Retry and recover. */
  replay: boolean;
  /** The webhook test action (a session needs replay for it, a key webhooks:write). */
  sendTest: boolean;
  /** Operator-only views: instances and queue (console), portal sessions (with portal:write). */
  operator: boolean;
  mintPortalSessions: boolean;
  /** Shown in the header: the tenant and mode this credential is limited to, when it is. */
  tenantId: string | null;
  mode: string | null;
  expiresAt: string | null;
}

export interface Whoami {
  kind: "key" | "token" | "portal" | "console";
  name: string;
  tenant_id: string | null;
  mode: string;
  scopes: string[];
  capabilities: string[] | null;
  session_id: string | null;
  expires_at: string | null;
}

const learned = signal<{ token: string; capabilities: Capabilities } | null>(null);

/** The signed-in credential's capabilities, once learned (null before, and for another credential). */
export const capabilities = {
  get value(): Capabilities | null {
    const current = learned.value;
    return current && current.token === credential.value ? current.capabilities : null;
  },
};

export function capabilitiesOf(who: Whoami): Capabilities {
  const has = (scope: string) => who.scopes.includes("*") || who.scopes.includes(scope);
  const session = who.kind === "portal" || who.kind === "console";
  return {
    manageWebhooks: has("webhooks:write"),
    replay: has("deliveries:write"),
    sendTest: session ? has("deliveries:write") : has("webhooks:write"),
    operator: appKind === "console" && who.kind !== "portal",
    mintPortalSessions: appKind === "console" && has("portal:write"),
    tenantId: who.tenant_id,
    mode: who.mode,
    expiresAt: who.expires_at,
  };
}

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

async function probePortal(): Promise<Capabilities> {
  const [manageWebhooks, replay] = await Promise.all([
    allowed("PATCH", `/v1/webhooks/wh_${NO_SUCH_ID}`, {}),
    allowed("POST", `/v1/deliveries/dlv_${NO_SUCH_ID}/retry`, undefined),
  ]);
  const none = { tenantId: null, mode: null, expiresAt: null };
  return { manageWebhooks, replay, sendTest: replay, operator: false, mintPortalSessions: false, ...none };
}

const EVERYTHING: Capabilities = {
  manageWebhooks: true,
  replay: true,
  sendTest: true,
  operator: true,
  mintPortalSessions: true,
  tenantId: null,
  mode: null,
  expiresAt: null,
};

export async function learnCapabilities(): Promise<void> {
  const token = credential.value;
  if (token === null) return;
  let found: Capabilities;
  try {
    found = capabilitiesOf(await api<Whoami>("GET", "/v1/whoami"));
  } catch (error) {
    if (!(error instanceof ApiFailure) || error.status !== 404) throw error;
    found = appKind === "portal" ? await probePortal() : EVERYTHING;
  }
  learned.value = { token, capabilities: found };
}
