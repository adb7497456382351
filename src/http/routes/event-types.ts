// GET /v1/event-types: the catalog from the config plus the built-in types.
import { z } from "zod";
import type { Api } from "../api.ts";
import type { HttpDeps } from "../deps.ts";

const eventTypeResource = z.object({
  name: z.string(),
  description: z.string(),
  schema: z.record(z.string(), z.unknown()).optional(),
});

export function registerEventTypeRoutes(api: Api, deps: HttpDeps): void {
  const body = {
    data: deps.catalog.entries.map((entry) => ({
      name: entry.name,
      description: entry.description,
      ...(entry.schema ? { schema: entry.schema } : {}),
    })),
  };
  api.route(
    {
      method: "get",
      path: "/v1/event-types",
      summary: "The event type catalog",
      tag: "Event types",
      auth: "any",
      rate: "read",
      responses: {
        200: { description: "Every event type", schema: z.object({ data: z.array(eventTypeResource) }) },
      },
    },
    (c) => c.json(body),
  );
}
