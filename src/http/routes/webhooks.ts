// /v1/webhooks: create, read, list, update, delete and rotate-secret (SPEC §2 Webhooks).
import type { Context } from "hono";
import { z } from "zod";
import { ApiError, notFound } from "../../domain/errors.ts";
import { generateSecret, generateSigningKey, isSigningKey, publicKeyOf } from "../../domain/secrets.ts";
import { buildPayload } from "../../domain/signer.ts";
import type { SignatureScheme, Webhook } from "../../domain/webhook.ts";
import { toIso } from "../../runtime/clock.ts";
import type { WebhookChanges, WebhookOrder } from "../../store/store.ts";
import type { Api } from "../api.ts";
import { principalOf, tenantForRead, tenantForWrite } from "../auth.ts";
import { readJson, validate } from "../body.ts";
import type { AppEnv } from "../context.ts";
import type { HttpDeps } from "../deps.ts";
import { actingMode, inMode } from "../mode.ts";
import { pageBodySchema, toPageBody, toPageQuery } from "../pagination.ts";
import {
  deliveryResource,
  recoverBody,
  renderDelivery,
  webhookDeliveryListQuery,
} from "../schemas/events.ts";
import {
  createWebhookSchemas,
  objectQuery,
  renderWebhook,
  renderWithSecret,
  webhookResource,
  webhookWithSecret,
} from "../schemas/webhooks.ts";

const TAG = "Webhooks";

const idParam = (c: { req: { param(name: string): string | undefined } }) => c.req.param("id") ?? "";

export function registerWebhookRoutes(api: Api, deps: HttpDeps): void {
  const { config, store, clock, random, ids } = deps;
  const limit = config.limits.max_payload_bytes;
  const defaultTimeout = Math.round(config.delivery.timeout / 1000);
  const defaultMaxInFlight = config.delivery.max_in_flight_per_webhook;
  const schemas = createWebhookSchemas({
    catalog: deps.catalog,
    urlPolicy: {
      allowHttp: config.delivery.allow_http,
      allowPrivateNetworks: config.delivery.allow_private_networks,
      allowedCidrs: deps.allowedCidrs,
    },
    maxInFlightCap: config.delivery.max_in_flight,
  });

  /** New key material for a scheme: a whsec_ secret (v1) or a whsk_ Ed25519 private key (v1a). */
  const newKeyFor = (scheme: SignatureScheme, own?: string): string =>
    scheme === "v1a" ? generateSigningKey(random) : (own ?? generateSecret(random));

  /** The named webhook if this request may see it: its tenant's credential, in its mode. */
  const findOr404 = async (c: Context<AppEnv>): Promise<Webhook> => {
    const webhook = inMode(c, await store.findWebhook(idParam(c), principalOf(c).tenantId));
    if (!webhook) throw notFound("webhook");
    return webhook;
  };

  api.route(
    {
      method: "post",
      path: "/v1/webhooks",
      summary:
        "Create a subscription; the answer is the only time its secret is shown (v1a: its public_key instead)",
      tag: TAG,
      auth: "webhooks:write",
      rate: "write",
      body: schemas.create,
      responses: { 201: { description: "Created, with its full secret", schema: webhookWithSecret } },
    },
    async (c) => {
      const principal = principalOf(c);
      const input = validate(schemas.create, await readJson(c, limit));
      const tenantId = tenantForWrite(principal, input.tenant_id);
      const mode = actingMode(c, input.mode);
      const now = clock.now();
      const enabled = input.enabled ?? true;
      const webhook = await store.insertWebhook({
        id: ids.next("wh"),
        tenantId,
        mode,
        name: input.name ?? new URL(input.url).hostname,
        description: input.description ?? null,
        url: input.url,
        events: input.events,
        accountIds: input.account_ids ?? null,
        enabled,
        disabledReason: enabled ? null : "manual",
        timeoutSeconds: input.timeout_seconds ?? defaultTimeout,
        headers: input.headers ?? {},
        metadata: input.metadata ?? {},
        maxInFlight: input.max_in_flight ?? defaultMaxInFlight,
        filter: input.filter ?? null,
        ordering: input.ordering ?? "unordered",
        rateLimit: input.rate_limit ?? null,
        signatureScheme: input.signature_scheme ?? "v1",
        secret: newKeyFor(input.signature_scheme ?? "v1", input.secret),
        createdAt: now,
      });
      c.header("Location", `/v1/webhooks/${webhook.id}`);
      return c.json(renderWithSecret(webhook), 201);
    },
  );

  api.route(
    {
      method: "get",
      path: "/v1/webhooks",
      summary: "List subscriptions",
      tag: TAG,
      auth: "webhooks:read",
      rate: "read",
      query: schemas.list,
      responses: { 200: { description: "A page of subscriptions", schema: pageBodySchema(webhookResource) } },
    },
    async (c) => {
      const query = validate(schemas.list, c.req.query());
      const tenantId = tenantForRead(principalOf(c), query.tenant_id);
      const mode = actingMode(c, query.mode);
      const order: WebhookOrder = query.order ?? "-created_at";
      const valueType = order.endsWith("name") ? "string" : "number";
      const page = await store.listWebhooks(
        {
          tenantId,
          mode,
          eventType: query.event,
          enabled: query.enabled === undefined ? undefined : query.enabled === "true",
          accountId: query.account_id,
          search: query.search,
          ordering: query.ordering,
        },
        toPageQuery(query, order, valueType),
      );
      const key = order.replace("-", "") as "created_at" | "updated_at" | "name";
      const sortValue = (w: Webhook) =>
        key === "name" ? w.name : key === "created_at" ? w.createdAt : w.updatedAt;
      return c.json(toPageBody(page, order, (w) => ({ value: sortValue(w), id: w.id }), renderWebhook));
    },
  );

  api.route(
    {
      method: "get",
      path: "/v1/webhooks/:id",
      summary: "Get a subscription (secret masked)",
      tag: TAG,
      auth: "webhooks:read",
      rate: "read",
      query: objectQuery,
      responses: {
        200: { description: "The subscription", schema: webhookResource },
        404: { description: "Not found" },
      },
    },
    async (c) => {
      const webhook = await findOr404(c);
      return c.json(renderWebhook(webhook));
    },
  );

  const update = async (c: Parameters<Parameters<Api["route"]>[1]>[0]) => {
    const principal = principalOf(c);
    const input = validate(schemas.update, await readJson(c, limit));
    const current = await findOr404(c);
    const fixed = [
      ...(input.tenant_id !== undefined && input.tenant_id !== current.tenantId ? ["tenant_id"] : []),
      ...(input.mode !== undefined && input.mode !== current.mode ? ["mode"] : []),
    ];
    if (fixed.length > 0) {
      throw new ApiError(
        "validation_failed",
        "the request is not valid",
        fixed.map((path) => ({ path, message: "cannot be changed" })),
      );
    }
    const now = clock.now();
    const changes: WebhookChanges = {};
    if (input.url !== undefined) changes.url = input.url;
    if (input.events !== undefined) changes.events = input.events;
    if (input.name !== undefined) changes.name = input.name;
    if (input.description !== undefined) changes.description = input.description;
    if (input.account_ids !== undefined) changes.accountIds = input.account_ids;
    if (input.timeout_seconds !== undefined) changes.timeoutSeconds = input.timeout_seconds ?? defaultTimeout;
    if (input.headers !== undefined) changes.headers = input.headers ?? {};
    if (input.metadata !== undefined) changes.metadata = input.metadata ?? {};
    if (input.max_in_flight !== undefined) changes.maxInFlight = input.max_in_flight ?? defaultMaxInFlight;
    if (input.filter !== undefined) changes.filter = input.filter;
    if (input.ordering !== undefined) changes.ordering = input.ordering;
    if (input.rate_limit !== undefined) changes.rateLimit = input.rate_limit;
    const schemeChanged =
      input.signature_scheme !== undefined && input.signature_scheme !== current.signatureScheme;
    if (schemeChanged && input.signature_scheme !== undefined) {
      changes.signatureScheme = input.signature_scheme;
      changes.secret = newKeyFor(input.signature_scheme);
    }
    if (input.enabled === true && !current.enabled) {
      changes.enabled = true;
      changes.disabledReason = null;
      changes.resetHealthAt = now;
    } else if (input.enabled === false && current.enabled) {
      changes.enabled = false;
      changes.disabledReason = "manual";
    }
    const updated = await store.updateWebhook(current.id, principal.tenantId, changes, now);
    if (!updated) throw notFound("webhook");
    // A change of scheme made new key material: a v1 secret is shown here, once.
    return c.json(schemeChanged ? renderWithSecret(updated) : renderWebhook(updated));
  };

  for (const method of ["patch", "put"] as const) {
    api.route(
      {
        method,
        path: "/v1/webhooks/:id",
        summary: "Update a subscription: fields not given keep their value, null clears a nullable one",
        tag: TAG,
        auth: "webhooks:write",
        rate: "write",
        body: schemas.update,
        query: objectQuery,
        responses: {
          200: {
            description: "The updated subscription (with its new secret when signature_scheme changed to v1)",
            schema: webhookWithSecret,
          },
          404: { description: "Not found" },
        },
      },
      update,
    );
  }

  api.route(
    {
      method: "delete",
      path: "/v1/webhooks/:id",
      summary: "Delete a subscription; its undelivered deliveries are cancelled",
      tag: TAG,
      auth: "webhooks:write",
      rate: "write",
      query: objectQuery,
      responses: { 204: { description: "Deleted" }, 404: { description: "Not found" } },
    },
    async (c) => {
      // A webhook's mode never changes: checked here, it holds for the delete below.
      const webhook = await findOr404(c);
      const deleted = await store.deleteWebhook(webhook.id, principalOf(c).tenantId, clock.now());
      if (!deleted) throw notFound("webhook");
      return c.body(null, 204);
    },
  );

  api.route(
    {
      method: "post",
      path: "/v1/webhooks/:id/rotate-secret",
      summary:
        "Replace the signing secret (v1a: the key pair); the old one keeps signing during the grace period",
      tag: TAG,
      auth: "webhooks:write",
      rate: "write",
      body: schemas.rotate,
      bodyOptional: true,
      query: objectQuery,
      responses: {
        200: {
          description: "The subscription with its new full secret (v1a: its new public_key)",
          schema: webhookWithSecret.extend({
            previous_secret_expires_at: z
              .string()
              .nullable()
              .describe("When the previous secret or key stops signing; null when it stopped at once."),
            previous_public_keys: z
              .array(z.object({ public_key: z.string(), expires_at: z.string() }))
              .optional()
              .describe("v1a: the earlier public keys still signing, with when each stops."),
          }),
        },
        404: { description: "Not found" },
      },
    },
    async (c) => {
      const principal = principalOf(c);
      const body = await readJson(c, limit, { optional: true });
      const input = validate(schemas.rotate, body === undefined ? {} : body);
      const current = await findOr404(c);
      if (current.signatureScheme === "v1a" && input.secret !== undefined) {
        throw new ApiError("validation_failed", "the request is not valid", [
          { path: "secret", message: "a v1a webhook has no secret: hookd makes its new Ed25519 key pair" },
        ]);
      }
      const now = clock.now();
      const graceUntil = now + (input.grace_period_seconds ?? 0) * 1000;
      const rotated = await store.rotateWebhookSecret(
        current.id,
        principal.tenantId,
        newKeyFor(current.signatureScheme, input.secret),
        now,
        graceUntil,
      );
      if (!rotated) throw notFound("webhook");
      const previous = rotated.previousSecrets.filter((p) => p.expiresAt > now);
      return c.json({
        ...renderWithSecret(rotated),
        previous_secret_expires_at: graceUntil > now ? toIso(graceUntil) : null,
        ...(rotated.signatureScheme === "v1a"
          ? {
              previous_public_keys: previous
                .filter((p) => isSigningKey(p.secret))
                .map((p) => ({ public_key: publicKeyOf(p.secret), expires_at: toIso(p.expiresAt) })),
            }
          : {}),
      });
    },
  );

  api.route(
    {
      method: "post",
      path: "/v1/webhooks/:id/test",
      summary: "Send a webhook.test event to this subscription alone",
      tag: TAG,
      auth: "webhooks:write",
      // A portal session tests with its `replay` capability (SPEC §2 Portal sessions).
      sessionAuth: "deliveries:write",
      rate: "write",
      query: objectQuery,
      responses: {
        202: { description: "The test delivery, queued", schema: deliveryResource },
        404: { description: "Not found" },
        409: { description: "The subscription is disabled" },
      },
    },
    async (c) => {
      const webhook = await findOr404(c);
      if (!webhook.enabled) throw new ApiError("conflict", "the subscription is disabled: enable it first");
      const now = clock.now();
      const id = ids.next("evt");
      const data = { webhook_id: webhook.id, message: "A test event from hookd." };
      const { delivery } = await store.insertTestEvent(webhook, {
        id,
        type: "webhook.test",
        accountId: null,
        createdAt: now,
        payload: buildPayload({
          id,
          type: "webhook.test",
          createdAt: now,
          mode: webhook.mode,
          accountId: null,
          dataJson: JSON.stringify(data),
        }),
      });
      deps.wakeDispatcher();
      return c.json(renderDelivery(delivery), 202);
    },
  );

  api.route(
    {
      method: "post",
      path: "/v1/webhooks/:id/recover",
      summary: "Re-queue this subscription's failed and exhausted deliveries created in [since, until)",
      tag: TAG,
      auth: "deliveries:write",
      rate: "write",
      body: recoverBody,
      query: objectQuery,
      responses: {
        202: { description: "How many were re-queued", schema: z.object({ recovered: z.number() }) },
        404: { description: "Not found" },
        409: { description: "The subscription is disabled" },
      },
    },
    async (c) => {
      const input = validate(recoverBody, await readJson(c, limit));
      const webhook = await findOr404(c);
      const now = clock.now();
      const recovered = await store.recoverDeliveries(webhook.id, input.since, input.until ?? now + 1, now);
      if (recovered === "webhook_deleted") throw notFound("webhook");
      if (recovered === "webhook_disabled") {
        throw new ApiError("conflict", "the subscription is disabled: enable it first");
      }
      if (recovered > 0) deps.wakeDispatcher();
      return c.json({ recovered }, 202);
    },
  );

  api.route(
    {
      method: "get",
      path: "/v1/webhooks/:id/deliveries",
      summary: "This subscription's deliveries, newest first",
      tag: TAG,
      auth: "deliveries:read",
      rate: "read",
      query: webhookDeliveryListQuery,
      responses: {
        200: { description: "A page of deliveries", schema: pageBodySchema(deliveryResource) },
        404: { description: "Not found" },
      },
    },
    async (c) => {
      const query = validate(webhookDeliveryListQuery, c.req.query());
      const webhook = await findOr404(c);
      const page = await store.listDeliveries(
        { webhookId: webhook.id, status: query.status },
        toPageQuery(query, "-created_at", "number"),
      );
      return c.json(
        toPageBody(page, "-created_at", (d) => ({ value: d.createdAt, id: d.id }), renderDelivery),
      );
    },
  );
}
