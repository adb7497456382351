// What the tenant and mode isolation tests share: the routes that name an object, a ghost id for
// each, bodies that a route would accept, the observable part of an answer, and one world of
// objects (a webhook, an event, its delivery failed with one attempt) made through the real app.
import { expect } from "bun:test";
import type { Mode } from "../../src/domain/mode.ts";
import type { RouteSpec } from "../../src/http/api.ts";
import type { RequestOptions, TestDaemon, TestResponse } from "./daemon.ts";

export interface World {
  webhook: string;
  event: string;
  delivery: string;
  /** A portal session minted with the world's key. */
  session: string;
}

export const label = (r: RouteSpec) => `${r.method.toUpperCase()} ${r.path}`;

export const resourceOf = (route: RouteSpec) =>
  (/^\/v1\/(webhooks|events|deliveries|portal-sessions)\/:id/.exec(route.path)?.[1] ?? "") as
    | "webhooks"
    | "events"
    | "deliveries"
    | "portal-sessions"
    | "";

export const idOf = (world: World, resource: string) =>
  resource === "webhooks"
    ? world.webhook
    : resource === "events"
      ? world.event
      : resource === "portal-sessions"
        ? world.session
        : world.delivery;

/** A well-formed id of the same kind and length that names nothing. */
export const ghostOf = (id: string) => `${id.slice(0, -6)}ZZZZZZ`;

export const routesWithId = (t: TestDaemon) => t.daemon.routes.filter((r) => r.path.includes(":id"));

/** Bodies each object route accepts, so a request gets past validation to the lookup. */
export const VALID_BODIES: Record<string, unknown> = {
  "PATCH /v1/webhooks/:id": { name: "taken over", enabled: false },
  "PUT /v1/webhooks/:id": { name: "taken over", url: "http://127.0.0.1:9/evil", events: ["*"] },
  "POST /v1/webhooks/:id/rotate-secret": { grace_period_seconds: 0 },
  "POST /v1/webhooks/:id/recover": { since: "2000-01-01T00:00:00.000Z" },
};

/** No body, a valid one, an invalid one, malformed JSON: an object route is tried with each. */
export const bodiesFor = (route: RouteSpec): (RequestOptions & { what: string })[] => [
  { what: "no body" },
  { what: "valid body", body: VALID_BODIES[label(route)] ?? {} },
  { what: "invalid body", body: { name: 42, since: "yesterday", grace_period_seconds: -1 } },
  { what: "malformed JSON", rawBody: "{", headers: { "content-type": "application/json" } },
];

/** The parts of an answer a caller could learn something from (not its request id or rate count). */
export function observable(res: TestResponse): unknown {
  const headers: Record<string, string> = {};
  for (const [name, value] of res.headers) {
    if (["x-request-id", "ratelimit-remaining", "ratelimit-reset", "date"].includes(name)) continue;
    headers[name] = value;
  }
  return { status: res.status, headers, body: res.text };
}

export function send(
  t: TestDaemon,
  route: RouteSpec,
  id: string,
  options: RequestOptions,
  query = "",
): Promise<TestResponse> {
  return t.request(route.method.toUpperCase(), route.path.replace(":id", id) + query, options);
}

/**
 * A webhook taking every event, one event, its delivery settled as failed with one attempt (so
 * retry and recover have work to do), and a portal session, all made with `key`. The dispatcher is not started: the
 * delivery is claimed and settled through the store, as the dispatcher would.
 */
export async function makeWorld(
  t: TestDaemon,
  key: string,
  name: string,
  mode: Mode = "live",
): Promise<World> {
  const webhook = await t.request("POST", "/v1/webhooks", {
    key,
    body: { name: `${name} hook`, url: `http://127.0.0.1:9/${name}`, events: ["*"] },
  });
  expect([webhook.status, webhook.body.mode]).toEqual([201, mode]);
  const event = await t.request("POST", "/v1/events", {
    key,
    body: { type: "invoice.paid", data: { name } },
  });
  expect([event.status, event.body.mode]).toEqual([202, mode]);
  const deliveries = await t.request("GET", `/v1/deliveries?event_id=${event.body.id}`, { key });
  expect(deliveries.body.data.map((d: { webhook_id: string }) => d.webhook_id)).toEqual([webhook.body.id]);
  const delivery = deliveries.body.data[0].id as string;
  const claimed = await t.daemon.store.claimDue({
    now: t.clock.now(),
    owner: `test.${name}`,
    leaseMs: 60_000,
    limit: 10,
    retryLimit: 10,
  });
  expect(claimed.map((d) => d.id)).toEqual([delivery]);
  const outcome = await t.daemon.store.settle(
    [
      {
        deliveryId: delivery,
        leaseOwner: claimed[0]!.leaseOwner,
        webhookId: webhook.body.id,
        mode,
        signature: null,
        settlement: { action: "fail", reason: "blocked_address" },
        attempt: {
          id: `atm_${name}`,
          startedAt: t.clock.now(),
          durationMs: 12,
          responseStatusCode: 500,
          responseHeaders: {},
          responseBody: "nope",
          error: "http_status",
        },
      },
    ],
    t.clock.now(),
    { disableAfterFailures: 1000, disableAfterMs: 365 * 86_400_000 },
    () => `evt_internal_${name}`,
  );
  expect(outcome.applied).toEqual([true]);
  const session = await t.request("POST", "/v1/portal-sessions", { key, body: {} });
  expect([session.status, session.body.mode]).toEqual([201, mode]);
  return { webhook: webhook.body.id, event: event.body.id, delivery, session: session.body.id };
}
