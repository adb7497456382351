// /v1/deliveries: list, get, attempts, retry (SPEC §2 Deliveries); GET /metrics.
import { z } from "zod";
import { ApiError, notFound } from "../../domain/errors.ts";
import type { RequeueRefusal } from "../../store/store.ts";
import type { Api } from "../api.ts";
import { principalOf, tenantForRead } from "../auth.ts";
import { validate } from "../body.ts";
import type { HttpDeps } from "../deps.ts";
import { actingMode, inMode } from "../mode.ts";
import { pageBodySchema, toPageBody, toPageQuery } from "../pagination.ts";
import {
  attemptListQuery,
  attemptResource,
  deliveryListQuery,
  deliveryResource,
  renderAttempt,
  renderDelivery,
} from "../schemas/events.ts";
import { objectQuery } from "../schemas/webhooks.ts";

const TAG = "Deliveries";

const REQUEUE_REFUSALS: Record<RequeueRefusal, string> = {
  queued: "the delivery is already queued",
  cancelled: "the delivery was cancelled with its subscription",
  webhook_deleted: "the delivery's subscription was deleted",
  webhook_disabled: "the delivery's subscription is disabled: enable it first",
};

export function registerDeliveryRoutes(api: Api, deps: HttpDeps): void {
  const { store, clock } = deps;
  const idOf = (c: { req: { param(name: string): string | undefined } }) => c.req.param("id") ?? "";

  api.route(
    {
      method: "get",
      path: "/v1/deliveries",
      summary: "List deliveries, newest first",
      tag: TAG,
      auth: "deliveries:read",
      rate: "read",
      query: deliveryListQuery,
      responses: { 200: { description: "A page of deliveries", schema: pageBodySchema(deliveryResource) } },
    },
    async (c) => {
      const query = validate(deliveryListQuery, c.req.query());
      const tenantId = tenantForRead(principalOf(c), query.tenant_id);
      const page = await store.listDeliveries(
        {
          tenantId,
          mode: actingMode(c, query.mode),
          status: query.status,
          eventId: query.event_id,
          webhookId: query.webhook_id,
        },
        toPageQuery(query, "-created_at", "number"),
      );
      return c.json(
        toPageBody(page, "-created_at", (d) => ({ value: d.createdAt, id: d.id }), renderDelivery),
      );
    },
  );

  api.route(
    {
      method: "get",
      path: "/v1/deliveries/:id",
      summary: "Get a delivery",
      tag: TAG,
      auth: "deliveries:read",
      rate: "read",
      query: objectQuery,
      responses: {
        200: { description: "The delivery", schema: deliveryResource },
        404: { description: "Not found" },
      },
    },
    async (c) => {
      const delivery = inMode(c, await store.findDelivery(idOf(c), principalOf(c).tenantId));
      if (!delivery) throw notFound("delivery");
      return c.json(renderDelivery(delivery));
    },
  );

  api.route(
    {
      method: "get",
      path: "/v1/deliveries/:id/attempts",
      summary: "A delivery's attempts, oldest first",
      tag: TAG,
      auth: "deliveries:read",
      rate: "read",
      query: attemptListQuery,
      responses: {
        200: { description: "A page of attempts", schema: pageBodySchema(attemptResource) },
        404: { description: "Not found" },
      },
    },
    async (c) => {
      const query = validate(attemptListQuery, c.req.query());
      const delivery = inMode(c, await store.findDelivery(idOf(c), principalOf(c).tenantId));
      if (!delivery) throw notFound("delivery");
      const page = await store.listAttempts(delivery.id, toPageQuery(query, "started_at", "number"));
      return c.json(toPageBody(page, "started_at", (a) => ({ value: a.startedAt, id: a.id }), renderAttempt));
    },
  );

  api.route(
    {
      method: "post",
      path: "/v1/deliveries/:id/retry",
      summary: "Re-queue a failed, exhausted or successful delivery now, as a new attempt series",
      tag: TAG,
      auth: "deliveries:write",
      rate: "write",
      query: objectQuery,
      responses: {
        202: { description: "Re-queued", schema: deliveryResource },
        404: { description: "Not found" },
        409: { description: "Already queued, or its subscription is deleted or disabled" },
      },
    },
    async (c) => {
      const tenantId = principalOf(c).tenantId;
      const delivery = inMode(c, await store.findDelivery(idOf(c), tenantId));
      if (!delivery) throw notFound("delivery");
      const result = await store.requeueDelivery(delivery.id, tenantId, clock.now());
      if (result === null) throw notFound("delivery");
      if (typeof result === "string") throw new ApiError("conflict", REQUEUE_REFUSALS[result]);
      deps.wakeDispatcher();
      return c.json(renderDelivery(result), 202);
    },
  );

  api.route(
    {
      method: "get",
      path: "/metrics",
      summary: "Prometheus metrics",
      tag: "Operations",
      auth: null,
      responses: { 200: { description: "Prometheus text format", schema: z.string() } },
    },
    async (c) => {
      const { metrics } = deps;
      const now = clock.now();
      try {
        const stats = await store.queueStats(now);
        metrics.queueDepth.set(stats.depth);
        metrics.oldestDue.set(stats.oldestDueAt === null ? 0 : Math.max(0, (now - stats.oldestDueAt) / 1000));
      } catch (error) {
        deps.logger.warn({ err: (error as Error).message }, "queue stats unavailable for /metrics");
      }
      c.header("Content-Type", metrics.registry.contentType);
      return c.body(await metrics.registry.metrics());
    },
  );
}
