// Talking to a hookd child process (test/support/hookd-process.ts): the config it runs with (port 0,
// its database in a temp directory or, in the PostgreSQL pass, a fresh database; plain http to
// 127.0.0.1 allowed) and calls to its API with the admin key that config sets.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { storageYaml, type TestDriver } from "./driver.ts";
import { childStorage } from "./hookd-process.ts";

export const CHILD_ADMIN_KEY = "child-admin-key-0123456789";

/**
 * Writes `dir/hookd.yaml` for a test child and answers its path: port 0, its database in `dir` (or a
 * fresh PostgreSQL database, or `databaseUrl`: hookd-process.ts `childStorage`), plain http to
 * 127.0.0.1 allowed. Every start with this file uses the same database.
 */
export async function writeChildConfig(
  dir: string,
  options: {
    retrySchedule?: string[];
    lease?: string;
    timeout?: string;
    shutdownGrace?: string;
    maxInFlightPerWebhook?: number;
    driver?: TestDriver;
    databaseUrl?: string;
  } = {},
): Promise<string> {
  const path = join(dir, "hookd.yaml");
  const schedule = (options.retrySchedule ?? ["100ms", "200ms", "500ms"]).join(", ");
  const storage = await childStorage(dir, { driver: options.driver, databaseUrl: options.databaseUrl });
  writeFileSync(
    path,
    [
      "server:",
      "  host: 127.0.0.1",
      "  port: 0",
      ...storageYaml(storage),
      "auth:",
      "  keys:",
      "    - name: admin",
      `      key: ${CHILD_ADMIN_KEY}`,
      '      scopes: ["*"]',
      "rate_limits:",
      "  ingest: 100000",
      "  write: 100000",
      "  read: 100000",
      "delivery:",
      `  timeout: ${options.timeout ?? "1s"}`,
      `  retry_schedule: [${schedule}]`,
      `  lease: ${options.lease ?? "1s"}`,
      `  max_in_flight_per_webhook: ${options.maxInFlightPerWebhook ?? 16}`,
      "  allow_http: true",
      "  allow_private_networks: true",
      `shutdown_grace: ${options.shutdownGrace ?? "1s"}`,
      "log:",
      "  level: info",
      "",
    ].join("\n"),
  );
  return path;
}

/** A request to the child's API with the admin key (and a JSON body when given), bounded in time. */
export function fetchApi(
  url: string,
  method: string,
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<Response> {
  return fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${CHILD_ADMIN_KEY}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
}

/** A call to the child's API with the admin key, bounded in time. */
export async function callApi(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 5_000,
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected freely
): Promise<{ status: number; body: any }> {
  const response = await fetchApi(url, method, path, body, timeoutMs);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

export async function createWebhook(url: string, target: string, events: string[]): Promise<string> {
  const created = await callApi(url, "POST", "/v1/webhooks", { name: "receiver", url: target, events });
  if (created.status !== 201) throw new Error(`cannot create the webhook: ${JSON.stringify(created)}`);
  return created.body.id as string;
}
