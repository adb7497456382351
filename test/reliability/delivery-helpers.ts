// API helpers for the delivery reliability tests: create subscriptions (through the API, or straight
// into the store for targets the API refuses), publish, and read deliveries and attempts back.
import { expect } from "bun:test";
import { systemClock } from "../../src/runtime/clock.ts";
import { createIdGenerator } from "../../src/runtime/ids.ts";
import { cryptoRandom } from "../../src/runtime/random.ts";
import type { TestDaemon } from "../support/daemon.ts";
import { waitFor } from "../support/wait-for.ts";

// biome-ignore lint/suspicious/noExplicitAny: API bodies are inspected freely
export type Json = any;

const ids = createIdGenerator(systemClock, cryptoRandom);

const ENDED = new Set(["success", "failed", "exhausted"]);

export function deliveryApi(t: TestDaemon) {
  const api = {
    async createWebhook(body: Record<string, unknown>): Promise<Json> {
      const res = await t.request("POST", "/v1/webhooks", { body: { events: ["*"], ...body } });
      expect(res.status).toBe(201);
      return res.body;
    },

    /**
     * A subscription written under the API, as if created while the config allowed it: the way to
     * get a target the API refuses (private addresses) in front of the dispatcher.
     */
    async insertWebhook(url: string, events: string[], extra: { timeoutSeconds?: number } = {}) {
      const now = Date.now();
      return t.daemon.store.insertWebhook({
        id: ids.next("wh"),
        tenantId: "default",
        name: url,
        description: null,
        url,
        events,
        accountIds: null,
        enabled: true,
        disabledReason: null,
        timeoutSeconds: extra.timeoutSeconds ?? 2,
        headers: {},
        metadata: {},
        maxInFlight: 4,
        secret: `whsec_${Buffer.from(cryptoRandom.bytes(32)).toString("base64")}`,
        createdAt: now,
      });
    },

    async publish(type: string, data: Record<string, unknown> = {}): Promise<{ id: string }> {
      const res = await t.request("POST", "/v1/events", { body: { type, data } });
      expect(res.status).toBe(202);
      return res.body;
    },

    async deliveries(query: string): Promise<Json[]> {
      const res = await t.request("GET", `/v1/deliveries?limit=100&${query}`);
      expect(res.status).toBe(200);
      return res.body.data;
    },

    async attempts(deliveryId: string): Promise<Json[]> {
      const res = await t.request("GET", `/v1/deliveries/${deliveryId}/attempts?limit=100`);
      expect(res.status).toBe(200);
      return res.body.data;
    },

    /** Waits until every delivery of the subscription is in `status` (at least `count` of them). */
    allIn: (webhookId: string, status: string, count: number, timeoutMs = 10_000): Promise<Json[]> =>
      waitFor(
        async () => {
          const list = await api.deliveries(`webhook_id=${webhookId}`);
          return list.length >= count && list.every((d) => d.status === status) ? list : null;
        },
        { timeoutMs, what: `${count} deliveries of ${webhookId} to be ${status}` },
      ),

    /**
     * Waits until every delivery of the subscription has ended (success, failed or exhausted; at
     * least `count` of them), whichever way: the caller asserts which, so a wrong ending fails at
     * once with what it was instead of a wait for the expected one running out.
     */
    allEnded: (webhookId: string, count: number, timeoutMs = 10_000): Promise<Json[]> =>
      waitFor(
        async () => {
          const list = await api.deliveries(`webhook_id=${webhookId}`);
          return list.length >= count && list.every((d) => ENDED.has(d.status)) ? list : null;
        },
        { timeoutMs, what: `${count} deliveries of ${webhookId} to end` },
      ),
  };
  return api;
}
