// The console (/console/) and the portal (/portal/): the bundle built by scripts/build-web.ts,
// embedded in the executable, served with SPEC §7's headers on every response. Hashed assets are
// immutable; index.html is never cached and answers every other path under both, so the app's
// own routes survive reload. GET / redirects to the console.
import type { Context, Hono } from "hono";
import type { Config } from "../../config/schema.ts";
import type { AppEnv } from "../context.ts";

interface Bundle {
  /** Asset name → its bytes and content type. */
  assets: Map<string, { body: Uint8Array; type: string }>;
  /** index.html per app base ("/console", "/portal"). */
  index: Map<string, string>;
}

const APPS = ["/console", "/portal"] as const;

const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  woff2: "font/woff2",
};

/** The bundle, read once; null when it was never built (a run from source before `npm run build`). */
async function loadBundle(): Promise<Bundle | null> {
  let manifest: typeof import("../../../web/dist/manifest.ts");
  try {
    manifest = await import("../../../web/dist/manifest.ts");
  } catch {
    return null;
  }
  const assets = new Map<string, { body: Uint8Array; type: string }>();
  for (const [name, path] of Object.entries(manifest.assets)) {
    const extension = name.slice(name.lastIndexOf(".") + 1);
    assets.set(name, {
      body: await Bun.file(path).bytes(),
      type: TYPES[extension] ?? "application/octet-stream",
    });
  }
  const index = new Map(
    APPS.map((base) => [base, manifest.indexHtml.replaceAll(manifest.basePlaceholder, base)]),
  );
  return { assets, index };
}

export function contentSecurityPolicy(frameAncestors: readonly string[]): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    `frame-ancestors ${frameAncestors.length > 0 ? frameAncestors.join(" ") : "'none'"}`,
    "base-uri 'none'",
    "form-action 'self'",
  ].join("; ");
}

export function registerConsoleRoutes(app: Hono<AppEnv>, config: Config["console"]): void {
  if (!config.enabled) return;
  const csp = contentSecurityPolicy(config.frame_ancestors);
  let bundle: Promise<Bundle | null> | undefined;

  const secure = (c: Context<AppEnv>) => {
    c.header("Content-Security-Policy", csp);
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "no-referrer");
  };

  app.get("/", (c) => {
    c.set("route", "/");
    return c.redirect("/console/", 302);
  });

  for (const base of APPS) {
    const serve = async (c: Context<AppEnv>) => {
      c.set("route", `${base}/*`);
      secure(c);
      if (c.req.method !== "GET" && c.req.method !== "HEAD") {
        c.header("Allow", "GET, HEAD");
        return c.text("Method not allowed\n", 405);
      }
      const path = c.req.path;
      if (path === base) return c.redirect(`${base}/`, 302);
      bundle ??= loadBundle();
      const loaded = await bundle;
      if (!loaded) {
        c.header("Cache-Control", "no-store");
        return c.text(
          "The console is not built: run `npm run build` (or `bun scripts/build-web.ts`).\n",
          503,
        );
      }
      const assetPrefix = `${base}/assets/`;
      if (path.startsWith(assetPrefix)) {
        const asset = loaded.assets.get(path.slice(assetPrefix.length));
        if (!asset) {
          c.header("Cache-Control", "no-store");
          return c.text("Not found\n", 404);
        }
        c.header("Cache-Control", "public, max-age=31536000, immutable");
        c.header("Content-Type", asset.type);
        return c.body(asset.body as Uint8Array<ArrayBuffer>, 200);
      }
      c.header("Cache-Control", "no-cache");
      return c.html(loaded.index.get(base) as string);
    };
    app.all(base, serve);
    app.all(`${base}/*`, serve);
  }
}
