// Unauthenticated operational endpoints: /healthz, /readyz, /openapi.json.
import { z } from "zod";
import { type Api, buildOpenApi } from "../api.ts";
import type { HttpDeps } from "../deps.ts";

export function registerOperationRoutes(api: Api, deps: HttpDeps): void {
  api.route(
    {
      method: "get",
      path: "/healthz",
      summary: "The process is up",
      tag: "Operations",
      auth: null,
      responses: { 200: { description: "Up", schema: z.object({ status: z.literal("ok") }) } },
    },
    (c) => c.json({ status: "ok" }),
  );

  api.route(
    {
      method: "get",
      path: "/readyz",
      summary: "The database accepts writes and the dispatcher runs",
      tag: "Operations",
      auth: null,
      responses: {
        200: {
          description: "Ready",
          schema: z.object({
            status: z.literal("ready"),
            driver: z.enum(["sqlite", "postgres"]),
            checks: z.record(z.string(), z.string()),
          }),
        },
        503: { description: "Not ready" },
      },
    },
    async (c) => {
      const checks: Record<string, string> = {};
      let ready = true;
      for (const readiness of deps.readiness) {
        try {
          await readiness.check();
          checks[readiness.name] = "ok";
        } catch (error) {
          ready = false;
          checks[readiness.name] = (error as Error).message;
        }
      }
      const driver = deps.store.driver;
      if (ready) return c.json({ status: "ready", driver, checks });
      return c.json(
        {
          error: {
            code: "unavailable",
            message: `not ready: ${Object.entries(checks)
              .filter(([, v]) => v !== "ok")
              .map(([k, v]) => `${k}: ${v}`)
              .join("; ")}`,
          },
          driver,
          checks,
        },
        503,
      );
    },
  );

  let document: Record<string, unknown> | undefined;
  api.route(
    {
      method: "get",
      path: "/openapi.json",
      summary: "This API's OpenAPI 3 document",
      tag: "Operations",
      auth: null,
      responses: { 200: { description: "OpenAPI document" } },
    },
    (c) => {
      document ??= buildOpenApi(api.routes, deps.version);
      return c.json(document);
    },
  );
}
