// `hookd console-link` (SPEC §5) through the compiled binary, on the pass's driver: it writes a
// session into the database the config names, before a daemon runs and beside a running one, and
// prints a URL whose token signs in to the console (every scope) or to one tenant's portal; the
// session is stored hashed, expires and is revocable like any portal session.
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { storageYaml } from "../support/driver.ts";
import { BINARY, childStorage, ensureBinary, killStarted, startHookd } from "../support/hookd-process.ts";
import { tempDir } from "../support/temp.ts";

const ADMIN_KEY = "console-link-admin-key-0123456789";
const RUN_TIMEOUT_MS = 20_000;

beforeAll(ensureBinary, 150_000);
afterEach(killStarted);

async function run(
  args: string[],
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = Bun.spawn([BINARY, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
    stdout: "pipe",
    stderr: "pipe",
    timeout: RUN_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

async function call(url: string, method: string, path: string, key: string, body?: unknown) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected freely
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as any };
}

async function setup(): Promise<{ dir: string; configPath: string }> {
  const dir = tempDir("hookd-console-link-");
  const configPath = join(dir, "hookd.yaml");
  writeFileSync(
    configPath,
    [
      "server:",
      "  port: 0",
      "  public_url: https://hooks.example.test/",
      ...storageYaml(await childStorage(dir)),
      "auth:",
      "  keys:",
      `    - { name: admin, key: ${ADMIN_KEY}, scopes: ["*"] }`,
      "log:",
      "  level: info",
      "",
    ].join("\n"),
  );
  return { dir, configPath };
}

const tokenOf = (url: string) => url.slice(url.indexOf("#token=") + "#token=".length);

describe("hookd console-link", () => {
  test("before a daemon runs and beside it: console and portal links that sign in, hashed, revocable", async () => {
    const { dir, configPath } = await setup();
    // No daemon yet: the link is written into the database (created and migrated if need be).
    const portal = await run(
      ["console-link", "--config", configPath, "--tenant", "acme", "--ttl", "10m"],
      dir,
    );
    expect([portal.code, portal.stderr]).toEqual([
      0,
      expect.stringContaining("portal (tenant acme) session ps_"),
    ]);
    expect(portal.stdout).toMatch(/^https:\/\/hooks\.example\.test\/portal\/#token=hkp_[A-Za-z0-9_-]{43}\n$/);
    const portalToken = tokenOf(portal.stdout.trim());

    const hookd = startHookd("binary", ["serve", "--config", configPath], { cwd: dir });
    const url = await hookd.listening();
    // Beside the running daemon.
    const admin = await run(["console-link", "--config", configPath], dir);
    expect(admin.code).toBe(0);
    expect(admin.stdout).toMatch(/^https:\/\/hooks\.example\.test\/console\/#token=hkc_[A-Za-z0-9_-]{43}\n$/);
    const consoleToken = tokenOf(admin.stdout.trim());

    // The console session has every scope and no tenant.
    const created = await call(url, "POST", "/v1/webhooks", consoleToken, {
      url: "https://example.com/hooks",
      events: ["*"],
      tenant_id: "acme",
    });
    expect([created.status, created.body.tenant_id]).toEqual([201, "acme"]);
    await call(url, "POST", "/v1/webhooks", consoleToken, {
      url: "https://example.com/g",
      events: ["*"],
      tenant_id: "globex",
    });
    const minted = await call(url, "POST", "/v1/portal-sessions", consoleToken, { tenant_id: "globex" });
    expect(minted.status).toBe(201);
    // The portal session sees acme's alone, and cannot publish.
    const listed = await call(url, "GET", "/v1/webhooks", portalToken);
    expect([listed.status, listed.body.data.map((w: { id: string }) => w.id)]).toEqual([
      200,
      [created.body.id],
    ]);
    expect((await call(url, "POST", "/v1/events", portalToken, { type: "a.b", data: {} })).status).toBe(403);

    // Both are listed (no token), expire as asked, and are revocable.
    const sessions = await call(url, "GET", "/v1/portal-sessions?limit=100", ADMIN_KEY);
    const kinds = sessions.body.data.map((s: { kind: string; tenant_id: string | null }) => [
      s.kind,
      s.tenant_id,
    ]);
    expect(kinds.sort()).toEqual(
      [
        ["console", null],
        ["portal", "acme"],
        ["portal", "globex"],
      ].sort(),
    );
    const text = JSON.stringify(sessions.body);
    for (const token of [portalToken, consoleToken]) expect(text).not.toContain(token.slice(4));
    const portalSession = sessions.body.data.find(
      (s: { tenant_id: string | null }) => s.tenant_id === "acme",
    );
    const ttl = Date.parse(portalSession.expires_at) - Date.parse(portalSession.created_at);
    expect(ttl).toBe(600_000);
    const consoleSession = sessions.body.data.find((s: { kind: string }) => s.kind === "console");
    expect((await call(url, "DELETE", `/v1/portal-sessions/${consoleSession.id}`, ADMIN_KEY)).status).toBe(
      204,
    );
    expect((await call(url, "GET", "/v1/webhooks", consoleToken)).status).toBe(401);
    expect((await call(url, "GET", "/v1/webhooks", portalToken)).status).toBe(200);
    expect(hookd.lines.join("\n")).not.toContain(portalToken.slice(4));
    expect(await hookd.stop()).toBe(0);
  }, 90_000);

  test("bad options: a usage error, and nothing is written", async () => {
    const { dir, configPath } = await setup();
    for (const args of [
      ["--ttl", "10s"],
      ["--ttl", "25h"],
      ["--ttl", "soon"],
      ["--tenant", "no spaces"],
    ]) {
      const result = await run(["console-link", "--config", configPath, ...args], dir);
      expect([args, result.code, result.stdout]).toEqual([args, 2, ""]);
    }
    const wrong = await run(["console-link", "--from", "x"], dir);
    expect([wrong.code, wrong.stderr]).toEqual([
      2,
      expect.stringContaining("--from belongs to hookd storage copy"),
    ]);
    const help = await run(["--help"], dir);
    expect(help.stdout).toContain("hookd console-link [--config FILE] [--tenant T] [--ttl 1h]");
  }, 60_000);
});
