// The console and portal files through the real app (SPEC §7): GET / redirects, every response
// under /console/ and /portal/ carries the CSP and headers, hashed assets are immutable and
// index.html is not cached, unknown paths fall back to index.html, console.enabled: false is a 404.
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { buildWeb, WEB_DIST } from "../../scripts/build-web.ts";
import { createTestDaemon, type TestDaemon } from "../support/daemon.ts";

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

beforeAll(async () => {
  if (!existsSync(join(WEB_DIST, "manifest.ts"))) await buildWeb();
}, 60_000);

let daemon: TestDaemon | undefined;
afterEach(async () => {
  await daemon?.close();
  daemon = undefined;
});

function expectSecured(headers: Headers, csp = CSP) {
  expect(headers.get("content-security-policy")).toBe(csp);
  expect(headers.get("x-content-type-options")).toBe("nosniff");
  expect(headers.get("referrer-policy")).toBe("no-referrer");
}

describe("console files", () => {
  test("GET / and a bare base redirect; index.html answers every path under both apps, uncached", async () => {
    daemon = await createTestDaemon();
    const root = await daemon.request("GET", "/", { key: null });
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/console/");
    for (const base of ["/console", "/portal"]) {
      const bare = await daemon.request("GET", base, { key: null });
      expect(bare.status).toBe(302);
      expect(bare.headers.get("location")).toBe(`${base}/`);
      expectSecured(bare.headers);
      for (const path of [`${base}/`, `${base}/webhooks/wh_123?status=failed`, `${base}/no/such/view`]) {
        const page = await daemon.request("GET", path, { key: null });
        expect(page.status).toBe(200);
        expect(page.headers.get("content-type")).toStartWith("text/html");
        expect(page.headers.get("cache-control")).toBe("no-cache");
        expectSecured(page.headers);
        expect(page.text).toMatch(
          new RegExp(`<script type="module" src="${base}/assets/main-[a-z0-9]+\\.js">`),
        );
        expect(page.text).not.toContain("__HOOKD_BASE__");
      }
    }
  });

  test("hashed assets are immutable with their type; an unknown one is a 404, not index.html", async () => {
    daemon = await createTestDaemon();
    const index = await daemon.request("GET", "/console/", { key: null });
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(index.text)?.[1] as string;
    const style = /href="(\/console\/assets\/[^"]+\.css)"/.exec(index.text)?.[1] as string;
    for (const [path, type] of [
      [script, "text/javascript"],
      [style, "text/css"],
      [script.replace("/console/", "/portal/"), "text/javascript"],
    ] as const) {
      const asset = await daemon.request("GET", path, { key: null });
      expect(asset.status).toBe(200);
      expect(asset.headers.get("content-type")).toStartWith(type);
      expect(asset.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expect(asset.text.length).toBeGreaterThan(100);
      expectSecured(asset.headers);
    }
    const missing = await daemon.request("GET", "/console/assets/main-nothere.js", { key: null });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("cache-control")).toBe("no-store");
    expectSecured(missing.headers);
    const posted = await daemon.request("POST", "/portal/", { key: null, body: {} });
    expect(posted.status).toBe(405);
    expectSecured(posted.headers);
  });

  test("the bundle is built from the app alone: no inline script, no eval, nothing fetched from outside", async () => {
    daemon = await createTestDaemon();
    const index = await daemon.request("GET", "/console/", { key: null });
    expect(index.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(index.text).not.toMatch(/\sstyle=/);
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(index.text)?.[1] as string;
    const code = (await daemon.request("GET", script, { key: null })).text;
    expect(/\beval\(|new Function\(/.test(code)).toBe(false);
    // Origins in the bundle: only the XML namespaces Preact names and a placeholder URL (never fetched).
    const origins = new Set(code.match(/https?:\/\/[a-z0-9.-]+/gi) ?? []);
    expect([...origins].filter((o) => o !== "http://www.w3.org" && o !== "https://example.com")).toEqual([]);
    // The app's own code never hands received text to the HTML parser.
    for (const file of new Bun.Glob("**/*.{ts,tsx}").scanSync({
      cwd: join(import.meta.dir, "..", "..", "web", "src"),
    })) {
      const source = await Bun.file(join(import.meta.dir, "..", "..", "web", "src", file)).text();
      expect({
        file,
        html: /dangerouslySetInnerHTML|innerHTML|outerHTML|insertAdjacentHTML|document\.write/.test(source),
      }).toEqual({ file, html: false });
    }
  });

  test("console.frame_ancestors names the origins allowed to frame the pages", async () => {
    daemon = await createTestDaemon({
      yaml: "console:\n  frame_ancestors: [https://app.example.com, 'https://*.partner.example']",
    });
    const page = await daemon.request("GET", "/portal/", { key: null });
    expectSecured(
      page.headers,
      CSP.replace(
        "frame-ancestors 'none'",
        "frame-ancestors https://app.example.com https://*.partner.example",
      ),
    );
  });

  test("console.enabled: false answers 404 for both apps and for /, and leaves the API alone", async () => {
    daemon = await createTestDaemon({ yaml: "console:\n  enabled: false" });
    for (const path of ["/", "/console/", "/console/assets/x.js", "/portal/", "/portal/webhooks"]) {
      const answer = await daemon.request("GET", path, { key: null });
      expect({ path, status: answer.status }).toEqual({ path, status: 404 });
    }
    expect((await daemon.request("GET", "/v1/webhooks")).status).toBe(200);
  });
});
