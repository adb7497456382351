// /v1/portal-sessions: mint, list, read and revoke portal sessions (SPEC §2 Portal sessions).
// Scope portal:write throughout; a tenant credential acts only in its own tenant, an admin names
// the tenant a session is for. A session's token is answered once, at creation.
import { z } from "zod";
import { ApiError, notFound, validationFailed } from "../../domain/errors.ts";
import { normalizeCapabilities, SESSION_TTL } from "../../domain/portal.ts";
import { mintSession, sessionUrl } from "../../sessions.ts";
import type { Api } from "../api.ts";
import { principalOf, tenantForRead } from "../auth.ts";
import { readJson, validate } from "../body.ts";
import type { HttpDeps } from "../deps.ts";
import { pageBodySchema, toPageBody, toPageQuery } from "../pagination.ts";
import {
  createdSession,
  createSessionBody,
  renderSession,
  revokeSessionsBody,
  sessionListQuery,
  sessionResource,
  whoamiResource,
} from "../schemas/portal.ts";

const TAG = "Portal sessions";

export function registerPortalSessionRoutes(api: Api, deps: HttpDeps): void {
  const { store, clock } = deps;
  const limit = deps.config.limits.max_payload_bytes;

  api.route(
    {
      method: "post",
      path: "/v1/portal-sessions",
      summary: "Mint a portal session for one tenant: a link that signs its opener in to the portal",
      tag: TAG,
      auth: "portal:write",
      rate: "write",
      body: createSessionBody,
      bodyOptional: true,
      responses: {
        201: { description: "Created, with its token (shown only here)", schema: createdSession },
      },
    },
    async (c) => {
      const principal = principalOf(c);
      const raw = await readJson(c, limit, { optional: true });
      const input = validate(createSessionBody, raw ?? {});
      let tenantId: string;
      if (principal.tenantId !== undefined) {
        if (input.tenant_id !== undefined && input.tenant_id !== principal.tenantId)
          throw new ApiError("forbidden", "this credential may only mint sessions for its own tenant");
        tenantId = principal.tenantId;
      } else if (input.tenant_id === undefined) {
        throw validationFailed([
          {
            path: "tenant_id",
            message: "is required: an admin credential names the tenant the portal is for",
          },
        ]);
      } else tenantId = input.tenant_id;
      const ownMode = principal.mode ?? "live";
      // A tenant credential of one mode cannot mint for the other (SPEC §2 Live and test mode).
      if (
        principal.tenantId !== undefined &&
        principal.mode !== undefined &&
        input.mode !== undefined &&
        input.mode !== ownMode
      )
        throw new ApiError("forbidden", `this credential may only mint sessions in ${ownMode} mode`);
      const { session, token } = await mintSession(deps, {
        kind: "portal",
        tenantId,
        mode: input.mode ?? ownMode,
        capabilities: normalizeCapabilities(input.capabilities),
        ttlMs: (input.ttl_seconds ?? SESSION_TTL.default) * 1000,
      });
      c.header("Cache-Control", "no-store");
      return c.json(
        {
          id: session.id,
          token,
          url: sessionUrl(deps.publicUrl(), "portal", token),
          tenant_id: tenantId,
          mode: session.mode,
          capabilities: session.capabilities,
          expires_at: new Date(session.expiresAt).toISOString(),
        },
        201,
      );
    },
  );

  // What the console and portal pages ask first: who this credential is and what it may do.
  api.route(
    {
      method: "get",
      path: "/v1/whoami",
      summary:
        "The credential presented: its kind, tenant, mode, scopes and, for a session, capabilities and expiry",
      tag: TAG,
      auth: "any",
      rate: "read",
      responses: { 200: { description: "The credential", schema: whoamiResource } },
    },
    async (c) => {
      const p = principalOf(c);
      c.header("Cache-Control", "no-store");
      return c.json({
        kind: p.kind ?? "key",
        name: p.name,
        tenant_id: p.tenantId ?? null,
        mode: p.mode ?? "live",
        scopes: [...p.scopes].sort(),
        capabilities: p.capabilities ? [...p.capabilities] : null,
        session_id: p.sessionId ?? null,
        expires_at: p.expiresAt !== undefined ? new Date(p.expiresAt).toISOString() : null,
      });
    },
  );

  api.route(
    {
      method: "get",
      path: "/v1/portal-sessions",
      summary: "List live sessions, newest first (never their tokens)",
      tag: TAG,
      auth: "portal:write",
      rate: "read",
      query: sessionListQuery,
      responses: { 200: { description: "A page of sessions", schema: pageBodySchema(sessionResource) } },
    },
    async (c) => {
      const query = validate(sessionListQuery, c.req.query());
      const tenantId = tenantForRead(principalOf(c), query.tenant_id);
      const page = await store.listPortalSessions(
        { ...(tenantId !== undefined ? { tenantId } : {}), now: clock.now() },
        toPageQuery(query, "-created_at", "number"),
      );
      return c.json(
        toPageBody(page, "-created_at", (s) => ({ value: s.createdAt, id: s.id }), renderSession),
      );
    },
  );

  api.route(
    {
      method: "post",
      path: "/v1/portal-sessions/revoke",
      summary: "Revoke every live session of a tenant (an admin without tenant_id: every session)",
      tag: TAG,
      auth: "portal:write",
      rate: "write",
      body: revokeSessionsBody,
      bodyOptional: true,
      responses: { 200: { description: "How many were revoked", schema: z.object({ revoked: z.number() }) } },
    },
    async (c) => {
      const raw = await readJson(c, limit, { optional: true });
      const input = validate(revokeSessionsBody, raw ?? {});
      const tenantId = tenantForRead(principalOf(c), input.tenant_id);
      const revoked = await store.deletePortalSessions(tenantId, clock.now());
      return c.json({ revoked });
    },
  );

  api.route(
    {
      method: "get",
      path: "/v1/portal-sessions/:id",
      summary: "A live session (never its token)",
      tag: TAG,
      auth: "portal:write",
      rate: "read",
      responses: {
        200: { description: "The session", schema: sessionResource },
        404: { description: "Not found" },
      },
    },
    async (c) => {
      const session = await store.findPortalSession(
        c.req.param("id") ?? "",
        principalOf(c).tenantId,
        clock.now(),
      );
      if (!session) throw notFound("portal session");
      return c.json(renderSession(session));
    },
  );

  api.route(
    {
      method: "delete",
      path: "/v1/portal-sessions/:id",
      summary: "Revoke one session: its token is refused from the next request on, on every instance",
      tag: TAG,
      auth: "portal:write",
      rate: "write",
      responses: { 204: { description: "Revoked" }, 404: { description: "Not found" } },
    },
    async (c) => {
      const revoked = await store.deletePortalSession(
        c.req.param("id") ?? "",
        principalOf(c).tenantId,
        clock.now(),
      );
      if (!revoked) throw notFound("portal session");
      return c.body(null, 204);
    },
  );
}
