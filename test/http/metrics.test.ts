import { afterEach, expect, test } from "bun:test";
import { createTestDaemon, type TestDaemon } from "../support/daemon.ts";

let t: TestDaemon;
afterEach(async () => {
  await t.close();
});

const metric = (text: string, name: string) =>
  Number(
    text
      .split("\n")
      .find((line) => line.startsWith(name))
      ?.split(" ")
      .pop() ?? Number.NaN,
  );

test("deliveries cancelled by a delete or failed by a disable are counted as final", async () => {
  t = await createTestDaemon();
  const a = await t.request("POST", "/v1/webhooks", { body: { url: "https://example.com/a", events: "*" } });
  const b = await t.request("POST", "/v1/webhooks", { body: { url: "https://example.com/b", events: "*" } });
  await t.request("POST", "/v1/events/batch", {
    body: {
      events: [
        { type: "x.y", data: {} },
        { type: "x.z", data: {} },
      ],
    },
  });
  expect(metric((await t.request("GET", "/metrics", { key: null })).text, "hookd_queue_depth")).toBe(4);

  expect((await t.request("DELETE", `/v1/webhooks/${a.body.id}`)).status).toBe(204);
  expect((await t.request("PATCH", `/v1/webhooks/${b.body.id}`, { body: { enabled: false } })).status).toBe(
    200,
  );
  const text = (await t.request("GET", "/metrics", { key: null })).text;
  expect(metric(text, 'hookd_deliveries_total{status="cancelled",mode="live"}')).toBe(2);
  expect(metric(text, 'hookd_deliveries_total{status="failed",mode="live"}')).toBe(2);
  expect(metric(text, "hookd_queue_depth")).toBe(0);
});
