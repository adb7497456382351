// /v1/events: publish (single and batch, idempotent), list and get (SPEC §2 Events).
import { createHash } from "node:crypto";
import type { Context } from "hono";
import { z } from "zod";
import { ApiError, type ErrorDetail, notFound, validationFailed } from "../../domain/errors.ts";
import { BUILT_IN_EVENT_TYPES } from "../../domain/event-types.ts";
import { buildPayload } from "../../domain/signer.ts";
import type { IngestRequest, NewEvent } from "../../store/store.ts";
import type { Api } from "../api.ts";
import { principalOf, tenantForRead, tenantForWrite } from "../auth.ts";
import { readJson, validate } from "../body.ts";
import type { AppEnv } from "../context.ts";
import type { HttpDeps } from "../deps.ts";
import { pageBodySchema, toPageBody, toPageQuery } from "../pagination.ts";
import {
  batchBody,
  eventDetail,
  type eventInput,
  eventListQuery,
  eventSummary,
  publishBody,
  renderEventDetail,
  renderEventSummary,
} from "../schemas/events.ts";

const TAG = "Events";
const RESERVED_TYPES = new Set<string>(BUILT_IN_EVENT_TYPES.map((t) => t.name));
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

type EventInput = z.output<typeof eventInput>;

export function registerEventRoutes(api: Api, deps: HttpDeps): void {
  const { config, store, clock, ids, catalog, metrics } = deps;
  const limit = config.limits.max_payload_bytes;
  const windowMs = config.limits.idempotency_window;

  /** The catalog and JSON Schema checks that zod cannot do, with paths under `root`. */
  const checkEvent = (input: EventInput, root: string): ErrorDetail[] => {
    const at = (path: string) => (root === "" ? path : `${root}.${path}`);
    if (RESERVED_TYPES.has(input.type)) {
      return [
        {
          path: at("type"),
          message: `"${input.type}" is published by hookd itself`,
          code: "reserved_event_type",
        },
      ];
    }
    if (!catalog.isKnownType(input.type)) {
      return [
        {
          path: at("type"),
          message: `unknown_event_type: "${input.type}" is not in the event type catalog`,
          code: "unknown_event_type",
        },
      ];
    }
    const validator = deps.dataValidators.get(input.type);
    if (!validator) return [];
    return validator(input.data).map((p) => ({
      path: p.path === "" ? at("data") : at(`data.${p.path}`).replace(".data.[", ".data["),
      message: p.message,
      code: "schema_mismatch",
    }));
  };

  const toNewEvent = (input: EventInput, now: number): NewEvent => {
    const id = ids.next("evt");
    const accountId = input.account_id ?? null;
    return {
      id,
      type: input.type,
      accountId,
      createdAt: now,
      payload: buildPayload({
        id,
        type: input.type,
        createdAt: now,
        accountId,
        dataJson: JSON.stringify(input.data),
      }),
      data: input.data,
    };
  };

  const idempotencyKeyOf = (c: Context<AppEnv>): string | undefined => {
    const header = c.req.header("idempotency-key");
    if (header === undefined) return undefined;
    if (!IDEMPOTENCY_KEY.test(header)) {
      throw validationFailed([
        { path: "Idempotency-Key", message: "must be 1-255 printable ASCII characters" },
      ]);
    }
    return header;
  };

  const ingest = async (c: Context<AppEnv>, request: IngestRequest) => {
    const result = await store.ingest(request);
    if (result.kind === "conflict") {
      throw new ApiError("conflict", "this idempotency key was already used with a different request");
    }
    if (result.kind === "replayed") {
      c.header("Idempotent-Replayed", "true");
    } else {
      // Only the events this request created: batch items whose id was already used replay theirs.
      const created = new Set(request.events.map((e) => e.id));
      metrics.eventsAccepted.inc(
        new Set(result.events.filter((e) => created.has(e.id)).map((e) => e.id)).size,
      );
      deps.wakeDispatcher();
    }
    return result.events;
  };

  api.route(
    {
      method: "post",
      path: "/v1/events",
      summary: "Publish an event; 202 once it and its deliveries are on disk",
      tag: TAG,
      auth: "events:write",
      rate: "ingest",
      body: publishBody,
      responses: {
        202: { description: "Accepted", schema: eventSummary },
        409: { description: "Idempotency conflict" },
      },
    },
    async (c) => {
      const principal = principalOf(c);
      const raw = await readJson(c, limit);
      const input = validate(publishBody, raw);
      const details = checkEvent(input, "");
      if (details.length > 0) throw validationFailed(details);
      const tenantId = tenantForWrite(principal, input.tenant_id);
      const key = idempotencyKeyOf(c) ?? input.id;
      const now = clock.now();
      const events = await ingest(c, {
        tenantId,
        now,
        events: [toNewEvent(input, now)],
        ...(key !== undefined
          ? { idempotency: { key, requestHash: hashRequest(raw), expiresAt: now + windowMs } }
          : {}),
      });
      return c.json(renderEventSummary(events[0]!), 202);
    },
  );

  api.route(
    {
      method: "post",
      path: "/v1/events/batch",
      summary: "Publish 1-500 events in one transaction: one invalid event refuses them all",
      tag: TAG,
      auth: "events:write",
      rate: "ingest",
      body: batchBody,
      responses: {
        202: {
          description: "Accepted, one result per event in order",
          schema: z.object({ data: z.array(eventSummary) }),
        },
        409: { description: "Idempotency conflict" },
      },
    },
    async (c) => {
      const principal = principalOf(c);
      const raw = await readJson(c, limit);
      const input = validate(batchBody, raw);
      const details = input.events.flatMap((event, i) => checkEvent(event, `events[${i}]`));
      if (details.length > 0) throw validationFailed(details);
      const tenantId = tenantForWrite(principal, input.tenant_id);
      const key = idempotencyKeyOf(c);
      const now = clock.now();
      const expiresAt = now + windowMs;
      const events = await ingest(c, {
        tenantId,
        now,
        events: input.events.map((event) => toNewEvent(event, now)),
        eventKeys: input.events.map((event, i) =>
          event.id === undefined
            ? null
            : {
                key: event.id,
                requestHash: hashRequest((raw as { events: unknown[] }).events[i]),
                expiresAt,
              },
        ),
        ...(key !== undefined ? { idempotency: { key, requestHash: hashRequest(raw), expiresAt } } : {}),
      });
      return c.json({ data: events.map(renderEventSummary) }, 202);
    },
  );

  api.route(
    {
      method: "get",
      path: "/v1/events",
      summary: "List events, newest first",
      tag: TAG,
      auth: "events:read",
      rate: "read",
      query: eventListQuery,
      responses: { 200: { description: "A page of events", schema: pageBodySchema(eventDetail) } },
    },
    async (c) => {
      const query = validate(eventListQuery, c.req.query());
      const tenantId = tenantForRead(principalOf(c), query.tenant_id);
      const page = await store.listEvents(
        {
          tenantId,
          type: query.type,
          status: query.status,
          accountId: query.account_id,
          from: query.from,
          to: query.to,
        },
        toPageQuery(query, "-created_at", "number"),
      );
      return c.json(
        toPageBody(page, "-created_at", (e) => ({ value: e.createdAt, id: e.id }), renderEventDetail),
      );
    },
  );

  api.route(
    {
      method: "get",
      path: "/v1/events/:id",
      summary: "Get an event with its data and a summary of its deliveries",
      tag: TAG,
      auth: "events:read",
      rate: "read",
      responses: {
        200: { description: "The event", schema: eventDetail },
        404: { description: "Not found" },
      },
    },
    async (c) => {
      const event = await store.findEvent(c.req.param("id") ?? "", principalOf(c).tenantId);
      if (!event) throw notFound("event");
      return c.json(renderEventDetail(event));
    },
  );
}

/** A stable hash of a request body: the same JSON, whatever its key order or spacing. */
export function hashRequest(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex");
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
