// The compiled executable dist/hookd over real HTTP on 127.0.0.1: start on port 0, the operational
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${NAME} in config text is the syntax under test
// endpoints, the webhooks API with a configured key, SIGTERM → exit 0; and the first-start admin key.
// In the PostgreSQL pass the binary runs on a fresh database (and makes no SQLite file).
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { storageYaml, TEST_DRIVER } from "../support/driver.ts";
import {
  childStorage,
  EXIT_TIMEOUT_MS,
  ensureBinary,
  killStarted,
  startHookd,
} from "../support/hookd-process.ts";
import { tempDir } from "../support/temp.ts";
import { waitFor } from "../support/wait-for.ts";

const ADMIN_KEY = "e2e-admin-key-0123456789";
const READER_KEY = "e2e-reader-key-0123456789";
const READER_SHA256 = new Bun.CryptoHasher("sha256").update(READER_KEY).digest("hex");
const WEBHOOK = { url: "https://example.com/hooks", events: ["invoice.paid"] };

beforeAll(ensureBinary, 150_000);
afterEach(killStarted);

async function call(
  url: string,
  method: string,
  path: string,
  options: { key?: string; headers?: Record<string, string>; body?: unknown } = {},
) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${url}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected freely
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as any };
}

describe("dist/hookd", () => {
  test("serves health, readiness and the webhooks API on port 0, and exits 0 on SIGTERM", async () => {
    const dir = tempDir("hookd-e2e-");
    const configPath = join(dir, "hookd.yaml");
    writeFileSync(
      configPath,
      [
        "server:",
        "  port: 0",
        ...storageYaml(await childStorage(dir)),
        "auth:",
        "  keys:",
        "    - name: admin",
        "      key: ${HOOKD_ADMIN_KEY}",
        '      scopes: ["*"]',
        "    - name: reader",
        `      key_sha256: ${READER_SHA256}`,
        "      scopes: [webhooks:read]",
        "log:",
        "  level: info",
        "",
      ].join("\n"),
    );
    const hookd = startHookd("binary", ["serve", "--config", configPath], {
      cwd: dir,
      env: { HOOKD_ADMIN_KEY: ADMIN_KEY },
    });
    const url = await hookd.listening();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).not.toEndWith(":0");

    expect(await call(url, "GET", "/healthz")).toEqual({ status: 200, body: { status: "ok" } });
    const ready = await call(url, "GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe("ready");

    expect((await call(url, "POST", "/v1/webhooks", { body: WEBHOOK })).status).toBe(401);
    expect((await call(url, "POST", "/v1/webhooks", { key: READER_KEY, body: WEBHOOK })).status).toBe(403);

    const created = await call(url, "POST", "/v1/webhooks", { key: ADMIN_KEY, body: WEBHOOK });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ ...WEBHOOK, tenant_id: "default", enabled: true });
    const id: string = created.body.id;

    const fetched = await call(url, "GET", `/v1/webhooks/${id}`, { key: ADMIN_KEY });
    expect(fetched.status).toBe(200);
    expect(fetched.body).toMatchObject({ id, ...WEBHOOK });
    expect(fetched.body.secret).toBeUndefined();

    const listed = await call(url, "GET", "/v1/webhooks", { headers: { "x-api-key": READER_KEY } });
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((webhook: { id: string }) => webhook.id)).toEqual([id]);

    expect(await hookd.stop("SIGTERM")).toBe(0);
    const messages = hookd.lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toContain("shutting down");
    expect(messages).toContain("hookd stopped");
    // Logs never carry a key.
    expect(hookd.lines.join("\n")).not.toContain(ADMIN_KEY);
    expect(existsSync(join(dir, "hookd.db"))).toBe(TEST_DRIVER === "sqlite");
  }, 60_000);

  test("with no keys configured: the first start prints an admin key once; a restart does not", async () => {
    // The working directory holds no config: the database goes to the default ./data/hookd.db in it.
    // The config file (elsewhere) sets only what a test must: port 0 instead of 8080, and the log level
    // (and in the PostgreSQL pass the database: the admin key's hash is kept there).
    const cwd = tempDir("hookd-e2e-cwd-");
    const configDir = tempDir("hookd-e2e-config-");
    const configPath = join(configDir, "hookd.yaml");
    const storage = TEST_DRIVER === "postgres" ? storageYaml(await childStorage(configDir)) : [];
    writeFileSync(configPath, ["server:", "  port: 0", ...storage, "log:", "  level: info", ""].join("\n"));

    const first = startHookd("binary", ["--config", configPath], { cwd });
    const url = await first.listening();
    const printed = await waitForKey(first.stderr);
    const key = printed[0] as string;
    expect(printed).toHaveLength(1);
    expect(first.lines.join("\n")).not.toContain(key);
    expect(existsSync(join(cwd, "data", "hookd.db"))).toBe(TEST_DRIVER === "sqlite");

    expect((await call(url, "GET", "/v1/webhooks", { key })).status).toBe(200);
    expect((await call(url, "GET", "/v1/webhooks", { key: `${key}x` })).status).toBe(401);
    const created = await call(url, "POST", "/v1/webhooks", { key, body: WEBHOOK });
    expect(created.status).toBe(201);
    expect(await first.stop("SIGTERM")).toBe(0);

    const second = startHookd("binary", ["--config", configPath], { cwd });
    const url2 = await second.listening();
    await waitForText(second.stderr, "using the admin key created on first start");
    expect(second.stderr()).not.toMatch(/hk_/);
    expect(second.lines.join("\n")).not.toMatch(/hk_/);

    const fetched = await call(url2, "GET", `/v1/webhooks/${created.body.id}`, { key });
    expect(fetched.status).toBe(200);
    expect(fetched.body.url).toBe(WEBHOOK.url);
    expect((await call(url2, "GET", "/v1/webhooks", { headers: { "x-api-key": key } })).status).toBe(200);
    expect(await second.stop("SIGTERM")).toBe(0);
  }, 60_000);
});

function waitForKey(stderr: () => string): Promise<string[]> {
  return waitFor(() => stderr().match(/hk_[A-Za-z0-9_-]{43}/g), {
    timeoutMs: EXIT_TIMEOUT_MS,
    what: "the first-start admin key on stderr",
  });
}

async function waitForText(stderr: () => string, text: string): Promise<void> {
  await waitFor(() => stderr().includes(text), { timeoutMs: EXIT_TIMEOUT_MS, what: `"${text}" on stderr` });
}
