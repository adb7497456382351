// GET /v1/stats and GET /v1/webhooks/{id}/stats (SPEC §2 Statistics): read from the aggregates the
// stores keep with every ingest and settle (domain/stats.ts), never from deliveries or attempts.
import { notFound, validationFailed } from "../../domain/errors.ts";
import { alignRange, buildStats, STAT_BUCKETS, type StatBucket } from "../../domain/stats.ts";
import { toIso } from "../../runtime/clock.ts";
import type { Api } from "../api.ts";
import { principalOf, tenantForRead } from "../auth.ts";
import { validate } from "../body.ts";
import type { Principal } from "../context.ts";
import type { HttpDeps } from "../deps.ts";
import { statsQuery, statsResource, webhookStatsQuery } from "../schemas/stats.ts";

const DAY_MS = 86_400_000;

export function registerStatsRoutes(api: Api, deps: HttpDeps): void {
  const { store, clock } = deps;

  const answer = async (
    principal: Principal,
    query: { since?: number; until?: number; bucket?: StatBucket },
    scope: { tenantId?: string; webhookId?: string },
  ) => {
    const now = clock.now();
    const until = query.until ?? now;
    const since = query.since ?? until - DAY_MS;
    const bucket = query.bucket ?? "1h";
    if (since >= until) throw validationFailed([{ path: "until", message: "must be after since" }]);
    const range = alignRange(since, until, bucket);
    if ("error" in range) throw validationFailed([{ path: "bucket", message: range.error }]);
    const read = await store.readStats({
      span: STAT_BUCKETS[bucket],
      since: range.since,
      until: range.until,
      ...scope,
      ...(principal.mode !== undefined ? { mode: principal.mode } : {}),
      now,
    });
    const stats = buildStats(range, read.rows);
    const oldest = read.queue.oldestDueAt;
    return {
      since: toIso(range.since),
      until: toIso(range.until),
      bucket,
      series: stats.series.map((s) => ({ ...s, start: toIso(s.start) })),
      totals: stats.totals,
      queue: {
        depth: read.queue.depth,
        oldest_due_seconds: oldest === null ? 0 : Math.max(0, Math.floor((now - oldest) / 1000)),
      },
      webhooks: read.webhooks,
    };
  };

  api.route(
    {
      method: "get",
      path: "/v1/stats",
      summary: "Events and attempts over time, success rate, attempt duration percentiles, queue, webhooks",
      tag: "Statistics",
      auth: "deliveries:read",
      rate: "read",
      query: statsQuery,
      responses: { 200: { description: "Statistics", schema: statsResource } },
    },
    async (c) => {
      const principal = principalOf(c);
      const query = validate(statsQuery, c.req.query());
      const tenantId = tenantForRead(principal, query.tenant_id);
      return c.json(
        await answer(principal, query, {
          ...(tenantId !== undefined ? { tenantId } : {}),
          ...(query.webhook_id !== undefined ? { webhookId: query.webhook_id } : {}),
        }),
      );
    },
  );

  api.route(
    {
      method: "get",
      path: "/v1/webhooks/:id/stats",
      summary: "The /v1/stats answer for this subscription alone",
      tag: "Statistics",
      auth: "deliveries:read",
      rate: "read",
      query: webhookStatsQuery,
      responses: {
        200: { description: "Statistics", schema: statsResource },
        404: { description: "Not found" },
      },
    },
    async (c) => {
      const principal = principalOf(c);
      const query = validate(webhookStatsQuery, c.req.query());
      const webhook = await store.findWebhook(c.req.param("id") ?? "", principal.tenantId);
      if (!webhook) throw notFound("webhook");
      return c.json(await answer(principal, query, { tenantId: webhook.tenantId, webhookId: webhook.id }));
    },
  );
}
