// Hostile content in the console: a receiver answering HTML and script in its body and headers,
// a webhook's name, description, URL and metadata, and an event's data and account with markup.
// Nothing executes and every piece is shown as text, even in a page whose CSP is bypassed (so the
// rendering alone is what keeps it inert, not only the policy).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { killStarted } from "../support/hookd-process.ts";
import { type Receiver, startReceiver } from "../support/receiver.ts";
import { waitFor } from "../support/wait-for.ts";
import {
  ADMIN_KEY,
  guardedPage,
  HAVE_CHROMIUM,
  type Hookd,
  launchBrowser,
  startBrowserHookd,
} from "./support.ts";

// biome-ignore lint/suspicious/noExplicitAny: the page's globals, seen from Node
declare const document: any;
// biome-ignore lint/suspicious/noExplicitAny: as above
declare const window: any;

const BODY = `<script>window.__pwned="body-script"</script><img src=x onerror="window.__pwned='body-img'">`;
const HEADER = `<img src=x onerror="window.__pwned='header'">`;
const NAME = `<img src=x onerror="window.__pwned='name'">Evil`;
const DESCRIPTION = `<script>window.__pwned="description"</script>`;
const META_KEY = "<b>owner</b>";
const META_VALUE = `<iframe src="javascript:window.top.__pwned='meta'"></iframe>`;
const DATA = `<svg onload="window.__pwned='data'"></svg>`;
const ACCOUNT = `<a href="javascript:window.__pwned='account'">acct</a>`;

let browser: Browser;
let hookd: Hookd;
let receiver: Receiver;

beforeAll(async () => {
  if (!HAVE_CHROMIUM) return;
  [browser, hookd, receiver] = await Promise.all([launchBrowser(), startBrowserHookd(), startReceiver()]);
  receiver.always("/evil", {
    status: 500,
    headers: { "x-evil": HEADER, "content-type": "text/html" },
    body: BODY,
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await receiver?.stop();
  await killStarted();
});

/** Nothing ran, and no element came from received content. */
async function expectInert(page: Page): Promise<void> {
  expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
  const injected = await page.evaluate(
    () =>
      document.querySelectorAll(
        "#app img, #app script, #app iframe, #app [onerror], #app [onload], #app a[href^='javascript']",
      ).length,
  );
  expect(injected).toBe(0);
}

const it = HAVE_CHROMIUM ? test : test.skip;

describe("hostile content", () => {
  it("markup in every received field is shown as text and never runs", async () => {
    const created = await hookd.call("POST", "/v1/webhooks", {
      name: NAME,
      description: DESCRIPTION,
      url: `${receiver.url("/evil")}?q=<script>x</script>`,
      events: ["invoice.paid"],
      metadata: { [META_KEY]: META_VALUE },
    });
    expect(created.status).toBe(201);
    const event = await hookd.call("POST", "/v1/events", {
      type: "invoice.paid",
      data: { invoice_id: DATA },
      account_id: ACCOUNT,
    });
    expect(event.status).toBe(202);
    await receiver.waitForRequests(1, "/evil", 15_000);
    const delivery = await waitFor(async () => {
      const list = await hookd.call("GET", `/v1/deliveries?event_id=${event.body.id}`);
      const first = list.body.data[0];
      return first && first.attempts >= 1 ? first : null;
    });

    const { page, problems } = await guardedPage(browser, { bypassCSP: true });
    await page.goto(`${hookd.url}/console/`);
    await page.getByLabel("API key").fill(ADMIN_KEY);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Overview" }).waitFor();

    await page.goto(`${hookd.url}/console/webhooks`);
    await page.getByRole("link", { name: NAME }).waitFor();
    await expectInert(page);

    await page.getByRole("link", { name: NAME }).click();
    await page.getByRole("heading", { name: NAME }).waitFor();
    await page.getByText(DESCRIPTION, { exact: true }).first().waitFor();
    await page.getByText(META_KEY, { exact: true }).first().waitFor();
    await page.getByText(META_VALUE, { exact: true }).first().waitFor();
    await expectInert(page);

    await page.goto(`${hookd.url}/console/events/${event.body.id}`);
    await page.getByText(ACCOUNT, { exact: true }).waitFor();
    await page.getByText(JSON.stringify(DATA).slice(1, -1), { exact: false }).first().waitFor();
    await expectInert(page);

    await page.goto(`${hookd.url}/console/deliveries/${delivery.id}`);
    await page.locator(".attempt summary").first().click();
    await page.getByText(BODY, { exact: true }).first().waitFor();
    await page.getByText(HEADER, { exact: true }).first().waitFor();
    await expectInert(page);

    await page.goto(`${hookd.url}/console/events?type=${encodeURIComponent("<img src=x onerror=alert(1)>")}`);
    await page.getByRole("alert").waitFor();
    await expectInert(page);
    expect(problems().filter((p) => !p.startsWith("unexpected 422 from GET /v1/events"))).toEqual([]);
  }, 120_000);
});
