// Request and response schemas of /v1/portal-sessions (SPEC §2 Portal sessions).
import { z } from "zod";
import { CAPABILITIES, MODES, SESSION_TTL } from "../../domain/portal.ts";
import { toIso } from "../../runtime/clock.ts";
import type { PortalSession } from "../../store/store.ts";
import { pageQueryShape } from "../pagination.ts";
import { TENANT_ID } from "./webhooks.ts";

export const createSessionBody = z.strictObject({
  tenant_id: TENANT_ID.optional().describe("Required for an admin credential; a tenant credential's own."),
  mode: z.enum(MODES).optional().describe("Default: the credential's mode (live)."),
  ttl_seconds: z
    .number()
    .int(`must be a whole number of seconds from ${SESSION_TTL.min} to ${SESSION_TTL.max}`)
    .min(SESSION_TTL.min, `must be at least ${SESSION_TTL.min}`)
    .max(SESSION_TTL.max, `must be at most ${SESSION_TTL.max}`)
    .optional()
    .describe(`How long the link works, in seconds (default ${SESSION_TTL.default}).`),
  capabilities: z
    .array(z.enum(CAPABILITIES))
    .max(CAPABILITIES.length * 4)
    .optional()
    .describe("Subset of read, manage_webhooks, replay (default all three); read is always included."),
});

export const revokeSessionsBody = z.strictObject({
  tenant_id: TENANT_ID.optional().describe(
    "A tenant credential's own; an admin without one revokes every session.",
  ),
});

export const sessionListQuery = z.object({
  ...pageQueryShape,
  tenant_id: TENANT_ID.optional().describe("Admin keys only."),
});

export const sessionResource = z.object({
  id: z.string(),
  kind: z.enum(["portal", "console"]),
  tenant_id: z.string().nullable(),
  mode: z.enum(MODES),
  capabilities: z.array(z.enum(CAPABILITIES)),
  created_at: z.string(),
  expires_at: z.string(),
});

export const createdSession = z.object({
  id: z.string(),
  token: z.string().describe("The bearer token: shown only here, stored only as a hash."),
  url: z.string().describe("<server.public_url>/portal/#token=<token>"),
  tenant_id: z.string(),
  mode: z.enum(MODES),
  capabilities: z.array(z.enum(CAPABILITIES)),
  expires_at: z.string(),
});

export const whoamiResource = z.object({
  kind: z
    .enum(["key", "token", "portal", "console"])
    .describe("API key, OAuth2 access token, portal or console session"),
  name: z
    .string()
    .describe("The key's name, the OAuth2 client_id, or portal-session:<id> / console-session:<id>"),
  tenant_id: z.string().nullable().describe("null for an admin credential"),
  mode: z.enum(MODES),
  scopes: z.array(z.string()),
  capabilities: z.array(z.enum(CAPABILITIES)).nullable().describe("A portal session's; null otherwise"),
  session_id: z.string().nullable(),
  expires_at: z.string().nullable().describe("When a session ends; null for keys and tokens"),
});

export const renderSession = (s: PortalSession): z.output<typeof sessionResource> => ({
  id: s.id,
  kind: s.kind,
  tenant_id: s.tenantId,
  mode: s.mode,
  capabilities: s.capabilities,
  created_at: toIso(s.createdAt),
  expires_at: toIso(s.expiresAt),
});
