// The browser tests' support: the compiled hookd on port 0 with a config for walking the console,
// headless Chromium (Debian's, through playwright-core), and guards every page carries: no page or
// console error, no request leaving loopback, SPEC §7's headers on every console and portal
// response, no 5xx, and only the API failures a test expects.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { storageYaml } from "../support/driver.ts";
import { childStorage, ensureBinary, type HookdProcess, ROOT, startHookd } from "../support/hookd-process.ts";
import { tempDir } from "../support/temp.ts";

// Page globals inside page.evaluate() callbacks (this file is typechecked without the DOM lib).
// biome-ignore lint/suspicious/noExplicitAny: the page's globals, seen from Node
declare const document: any;

export const CHROMIUM = "/usr/bin/chromium";
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.log(`browser tests skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

export const ADMIN_KEY = "browser-admin-key-0123456789";
export const ACME_KEY = "browser-acme-key-0123456789";
export const READER_KEY = "browser-reader-key-0123456789";
export const SCREENSHOTS = join(ROOT, "docs", "screenshots");

export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export interface Hookd {
  url: string;
  /** Its config file and working directory (for `hookd console-link` beside it). */
  configPath: string;
  dir: string;
  hookd: HookdProcess;
  /** A call to the API as a test client (not the browser), admin key by default. */
  // biome-ignore lint/suspicious/noExplicitAny: answers are inspected freely
  call(method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; body: any }>;
}

export async function startBrowserHookd(extraYaml = ""): Promise<Hookd> {
  await ensureBinary();
  const dir = tempDir("hookd-browser-");
  const configPath = join(dir, "hookd.yaml");
  writeFileSync(
    configPath,
    [
      "server:",
      "  port: 0",
      ...storageYaml(await childStorage(dir)),
      "auth:",
      "  keys:",
      `    - { name: admin, key: ${ADMIN_KEY}, scopes: ["*"] }`,
      `    - { name: acme, key: ${ACME_KEY}, scopes: ["*"], tenant: acme }`,
      `    - { name: reader, key: ${READER_KEY}, scopes: [webhooks:read, events:read, deliveries:read] }`,
      "rate_limits: { read: 100000, write: 100000, ingest: 100000 }",
      "event_types:",
      "  - { name: invoice.paid, description: An invoice was paid., schema: { type: object, required: [invoice_id] } }",
      "  - { name: user.created, description: A user signed up. }",
      "delivery:",
      "  allow_http: true",
      "  allow_private_networks: true",
      "  retry_schedule: [1s]",
      "  timeout: 5s",
      "log:",
      "  level: info",
      extraYaml,
      "",
    ].join("\n"),
  );
  const hookd = startHookd("binary", ["serve", "--config", configPath], { cwd: dir });
  const url = await hookd.listening();
  return {
    url,
    configPath,
    dir,
    hookd,
    async call(method, path, body, key = ADMIN_KEY) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(5_000),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : undefined };
    },
  };
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** An API answer ≥ 400 that a test provokes on purpose (a probe, a revoked session). */
export interface Expected {
  status: number;
  path: RegExp;
}

export interface Guarded {
  context: BrowserContext;
  page: Page;
  /** Allows more API failures from now on. */
  expect(...failures: Expected[]): void;
  /** Every problem seen so far (empty when the page behaved). */
  problems(): string[];
}

/** A fresh context and page with every guard attached. */
export async function guardedPage(
  browser: Browser,
  options: { width?: number; height?: number; colorScheme?: "light" | "dark"; bypassCSP?: boolean } = {},
): Promise<Guarded> {
  const context = await browser.newContext({
    // Only the hostile-content test sets it: markup must stay text even with no CSP to stop it.
    bypassCSP: options.bypassCSP ?? false,
    viewport: { width: options.width ?? 1280, height: options.height ?? 860 },
    colorScheme: options.colorScheme ?? "light",
    timezoneId: "Europe/Paris",
    locale: "en-GB",
  });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const problems: string[] = [];
  const expected: Expected[] = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    // The browser logs every HTTP failure; those are judged below by their response.
    if (message.text().startsWith("Failed to load resource: the server responded with a status of")) return;
    problems.push(`console error: ${message.text()}`);
  });
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.protocol === "data:") return;
    if (url.hostname !== "127.0.0.1") problems.push(`request left loopback: ${request.url()}`);
  });
  page.on("requestfailed", (request) => {
    // A navigation cancels the calls of the view it leaves; anything else is a failure.
    if (request.failure()?.errorText === "net::ERR_ABORTED") return;
    problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
  });
  page.on("response", (response) => {
    const url = new URL(response.url());
    if (url.pathname.startsWith("/console") || url.pathname.startsWith("/portal")) {
      const headers = response.headers();
      if (headers["content-security-policy"] !== CSP) problems.push(`no CSP on ${url.pathname}`);
      if (headers["x-content-type-options"] !== "nosniff") problems.push(`no nosniff on ${url.pathname}`);
      if (headers["referrer-policy"] !== "no-referrer")
        problems.push(`no Referrer-Policy on ${url.pathname}`);
    }
    const status = response.status();
    if (status >= 500) problems.push(`${status} from ${url.pathname}`);
    else if (status >= 400 && !expected.some((e) => e.status === status && e.path.test(url.pathname))) {
      problems.push(`unexpected ${status} from ${response.request().method()} ${url.pathname}`);
    }
  });
  return {
    context,
    page,
    expect: (...failures) => expected.push(...failures),
    problems: () => [...problems],
  };
}

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/**
 * axe-core's serious and critical violations on the page as it is. axe is evaluated through the
 * DevTools protocol: the page's CSP (rightly) refuses the inline script addScriptTag would add.
 */
export async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    // biome-ignore lint/suspicious/noExplicitAny: axe is a global once evaluated
    const axe = (globalThis as any).axe;
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return (
      result.violations as { id: string; impact: string; help: string; nodes: { target: string[] }[] }[]
    )
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  });
  return violations;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false });
}

/** Presses Tab until the focused element has this accessible name (bounded), and returns it. */
export async function tabTo(page: Page, name: string | RegExp, limit = 60): Promise<void> {
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el) return "";
      const labelled = el.getAttribute("aria-label");
      if (labelled) return labelled;
      const id = el.id;
      const label = id ? document.querySelector(`label[for="${id}"]`)?.textContent : null;
      if (label) return label.trim();
      const wrapping = el.closest("label");
      if (wrapping && wrapping !== el) return wrapping.textContent?.trim() ?? "";
      return (el.textContent ?? "").trim();
    });
    if (typeof name === "string" ? focused === name : name.test(focused)) return;
  }
  throw new Error(`Tab never reached ${String(name)}`);
}
