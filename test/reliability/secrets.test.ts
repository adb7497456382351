// Secrets stay out of the output (issue 5, item 7): a daemon at log level debug is driven through
// every declared route (right, wrong and missing keys, 4xx answers to input laden with secrets,
// rotation with a generated and a chosen secret) and through the receiver faults (timeout, redirect,
// bad TLS certificate, 500 with a body, garbage, reset, endless body) with custom headers on every
// subscription; then no webhook secret (current, rotated, or its base64 part alone), no API key and no
// custom header value may appear in any captured log line. The real CLI (`bun src/main.ts serve`) is
// checked the same way, and the first-start admin key is shown exactly once, on stderr, never in a
// JSON log line.
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { systemClock } from "../../src/runtime/clock.ts";
import {
  ACME_KEY,
  ADMIN_KEY,
  createTestDaemon,
  GLOBEX_KEY,
  NOSCOPE_KEY,
  READER_KEY,
  type TestDaemon,
} from "../support/daemon.ts";
import { storageYaml } from "../support/driver.ts";
import { childStorage } from "../support/hookd-process.ts";
import { type Receiver, startReceiver } from "../support/receiver.ts";
import { tempDir } from "../support/temp.ts";
import { waitFor } from "../support/wait-for.ts";
import { deliveryApi, type Json } from "./delivery-helpers.ts";
import {
  selfSignedCertificate,
  startEndlessBodyServer,
  startGarbageServer,
  startTlsServer,
} from "./fault-servers.ts";

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const unique = (label: string) => `${label}-${crypto.randomUUID()}`;

/** Values that must never be written: collected as the test makes or learns them. */
class Secrets {
  private readonly values = new Map<string, string>();
  add(label: string, value: string) {
    if (value.length < 8) throw new Error(`${label} is too short to search for safely`);
    this.values.set(value, label);
  }
  /** A whsec_ secret, and its base64 part alone. */
  addWebhookSecret(label: string, secret: string) {
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    this.add(label, secret);
    this.add(`${label} (base64 part)`, secret.slice("whsec_".length));
  }
  get size() {
    return this.values.size;
  }
  /** Every (secret label, offending line) pair. */
  findIn(lines: string[]): string[] {
    const found: string[] = [];
    for (const line of lines)
      for (const [value, label] of this.values) if (line.includes(value)) found.push(`${label}: ${line}`);
    return found;
  }
}

const customHeaders = () => ({
  Authorization: `Bearer ${unique("partner-token")}`,
  "X-Api-Key": unique("partner-api-key"),
  "X-Partner-Signature-Secret": unique("partner-signing"),
});

let t: TestDaemon | undefined;
const stops: (() => Promise<void>)[] = [];
const children = new Set<Subprocess>();

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  await t?.close();
  t = undefined;
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await Promise.race([child.exited, Bun.sleep(5000)]);
  }
  children.clear();
});

describe("in process, log level debug", () => {
  test("no secret, API key or custom header value reaches a log line, through every route and every fault", async () => {
    const secrets = new Secrets();
    for (const [label, key] of Object.entries({ ADMIN_KEY, READER_KEY, ACME_KEY, GLOBEX_KEY, NOSCOPE_KEY }))
      secrets.add(label, key);
    const wrongKey = unique("wrong-key");
    secrets.add("a wrong API key", wrongKey);

    t = await createTestDaemon({
      clock: systemClock,
      logLevel: "debug",
      yaml: "delivery:\n  retry_schedule: [50ms]\n  max_in_flight: 32\nshutdown_grace: 1s",
    });
    const r: Receiver = await startReceiver();
    stops.push(() => r.stop());
    const garbage = await startGarbageServer();
    const endless = await startEndlessBodyServer(503);
    stops.push(garbage.stop, endless.stop);
    const certificate = selfSignedCertificate();
    if (!certificate) console.warn("secrets: openssl is missing, so the bad-certificate fault is left out");
    const tls = certificate ? await startTlsServer(certificate) : null;
    if (tls) stops.push(tls.stop);
    await t.daemon.start();
    const api = deliveryApi(t);

    r.always("/ok", { status: 200, body: "thanks" });
    r.always("/boom", { status: 500, body: "database on fire: stack trace follows" });
    r.always("/hang", { kind: "hang" });
    r.always("/moved", { kind: "redirect", location: "http://127.0.0.2:9/elsewhere" });
    r.always("/reset", { kind: "reset", status: 502, partialBody: "half" });
    const targets: Record<string, string> = {
      ok: r.url("/ok"),
      boom: r.url("/boom"),
      hang: r.url("/hang"),
      moved: r.url("/moved"),
      reset: r.url("/reset"),
      garbage: `http://127.0.0.1:${garbage.port}/`,
      endless: `http://127.0.0.1:${endless.port}/`,
      ...(tls ? { tls: `https://127.0.0.1:${tls.port}/` } : {}),
    };

    // A subscription per target, each with its own custom header values.
    const hooks: Record<string, Json> = {};
    for (const [name, url] of Object.entries(targets)) {
      const headers = customHeaders();
      for (const [header, value] of Object.entries(headers)) secrets.add(`${name} ${header}`, value);
      secrets.add(`${name} bearer token alone`, headers.Authorization.slice("Bearer ".length));
      hooks[name] = await api.createWebhook({ url, headers, timeout_seconds: 1, description: name });
      secrets.addWebhookSecret(`${name} secret`, hooks[name].secret);
    }
    const chosen = `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;
    secrets.addWebhookSecret("a chosen rotated secret", chosen);
    const rotations = [
      { grace_period_seconds: 3600 },
      { secret: chosen, grace_period_seconds: 60 },
      undefined, // no body: a generated secret, no grace
    ];
    for (const body of rotations) {
      const rotated = await t.request(
        "POST",
        `/v1/webhooks/${hooks.ok.id}/rotate-secret`,
        body ? { body } : {},
      );
      expect(rotated.status).toBe(200);
      secrets.addWebhookSecret("a rotated secret", rotated.body.secret);
    }

    // A v1a webhook: its Ed25519 private keys (the current one and a rotated one, still signing)
    // are stored like secrets and must not appear either.
    const signing = await api.createWebhook({
      url: r.url("/boom"),
      signature_scheme: "v1a",
      timeout_seconds: 1,
    });
    const firstKey = (await t.daemon.store.findWebhook(signing.id))?.secret ?? "";
    const rotatedKey = await t.request("POST", `/v1/webhooks/${signing.id}/rotate-secret`, {
      body: { grace_period_seconds: 3600 },
    });
    expect(rotatedKey.status).toBe(200);
    for (const key of [firstKey, (await t.daemon.store.findWebhook(signing.id))?.secret ?? ""]) {
      expect(key).toMatch(/^whsk_[A-Za-z0-9+/]{43}=$/);
      secrets.add("a v1a private key", key);
      secrets.add("a v1a private key (base64 part)", key.slice("whsk_".length));
    }

    // Deliveries through every fault; the healthy one must still succeed (signed with three secrets).
    const events: Json[] = [];
    for (let i = 0; i < 3; i++) events.push(await api.publish("invoice.paid", { i }));
    expect((await t.request("POST", `/v1/webhooks/${hooks.boom.id}/test`)).status).toBe(202);
    const attempted = async () => {
      for (const hook of Object.values(hooks)) {
        const list = await api.deliveries(`webhook_id=${hook.id}`);
        if (list.length === 0 || list.some((d) => d.attempts === 0)) return false;
      }
      return true;
    };
    await waitFor(attempted, { timeoutMs: 8000, what: "an attempt of every delivery" });
    await api.allIn(hooks.ok.id, "success", 3);

    // Every declared route: no key, a wrong key, each real key, and input laden with secrets.
    const delivery = (await api.deliveries(`webhook_id=${hooks.boom.id}`))[0];
    const concrete = (path: string) =>
      path
        .replace(/^\/v1\/webhooks\/:id/, `/v1/webhooks/${hooks.boom.id}`)
        .replace(/^\/v1\/events\/:id/, `/v1/events/${events[0].id}`)
        .replace(/^\/v1\/deliveries\/:id/, `/v1/deliveries/${delivery.id}`);
    const junk = {
      url: `ftp://${ADMIN_KEY}@example.com/${hooks.ok.secret}`,
      secret: `whsec_${hooks.ok.secret}`, // not a valid secret: a 422 may echo it, a log line may not
      headers: { Authorization: `Bearer ${wrongKey}`, "Bad Header": hooks.boom.secret },
      events: [hooks.moved.secret],
      grace_period_seconds: ACME_KEY,
      since: GLOBEX_KEY,
      type: `${ADMIN_KEY}!`,
      data: { api_key: ADMIN_KEY, secret: hooks.ok.secret },
      tenant_id: READER_KEY,
    };
    const statuses: string[] = [];
    const call = async (method: string, path: string, options: Parameters<TestDaemon["request"]>[2]) => {
      const res = await t!.request(method, path, options);
      statuses.push(`${method} ${path} ${res.status}`);
      expect(res.status, `${method} ${path}`).toBeLessThan(500);
      return res;
    };
    for (const route of t.daemon.routes) {
      if (route.method === "delete") continue; // last, below
      const method = route.method.toUpperCase();
      const path = concrete(route.path);
      if (route.auth !== null) {
        expect((await call(method, path, { key: null })).status).toBe(401);
        expect((await call(method, path, { key: wrongKey })).status).toBe(401);
        expect(
          (
            await call(method, path, {
              key: null,
              headers: { authorization: `Basic ${btoa(`admin:${ADMIN_KEY}`)}` },
            })
          ).status,
        ).toBe(401);
        expect((await call(method, path, { key: `${ADMIN_KEY}x` })).status).toBe(401);
      }
      for (const key of [ADMIN_KEY, READER_KEY, ACME_KEY, GLOBEX_KEY, NOSCOPE_KEY]) {
        const query = route.query ? `?limit=${wrongKey}&cursor=${hooks.ok.secret}&status=${ACME_KEY}` : "";
        await call(method, `${path}${query}`, { key, ...(route.body ? { body: junk } : {}) });
        if (route.body) {
          await call(method, path, {
            key,
            rawBody: `{"secret": "${hooks.tls?.secret ?? chosen}", "key": "${ADMIN_KEY}"`,
            headers: { "content-type": "application/json" },
          });
        }
      }
    }
    // A 422 echoing bad input, explicitly, for the routes that take a body.
    const bad = await call("POST", "/v1/webhooks", { body: junk });
    expect(bad.status).toBe(422);
    expect(
      (
        await call("POST", `/v1/webhooks/${hooks.ok.id}/rotate-secret`, {
          body: { secret: `whsec_${wrongKey}` },
        })
      ).status,
    ).toBe(422);
    expect((await call("POST", `/v1/deliveries/${delivery.id}/retry`, {})).status).toBeLessThan(500);
    expect(
      (
        await call("POST", `/v1/webhooks/${hooks.boom.id}/recover`, {
          body: { since: new Date(0).toISOString() },
        })
      ).status,
    ).toBe(202);
    expect((await call("DELETE", `/v1/webhooks/${hooks.garbage.id}`, { key: wrongKey })).status).toBe(401);
    expect((await call("DELETE", `/v1/webhooks/${hooks.garbage.id}`, {})).status).toBe(204);

    await r.stop(); // cut the hanging requests, so the drain is short
    const lines = t.logs;
    await t.close(); // its last lines ("hookd stopped") are searched too
    t = undefined;

    expect(lines.length).toBeGreaterThan(100);
    // The faults were met and logged, so the search below looked at their lines.
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const errors = new Set(parsed.map((entry) => entry.error).filter(Boolean));
    for (const error of ["timeout", "redirect", "http_status", "invalid_response", ...(tls ? ["tls"] : [])])
      expect(errors).toContain(error);
    expect(parsed.some((entry) => entry.msg === "request" && entry.status === 401)).toBe(true);
    expect(parsed.some((entry) => entry.msg === "request" && entry.status === 422)).toBe(true);
    expect(statuses.length).toBeGreaterThan(100);
    expect(secrets.size).toBeGreaterThan(40);
    expect(secrets.findIn(lines)).toEqual([]);
  });
});

interface Child {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  stdout(): string;
  stderr(): string;
  listening(): Promise<string>;
  /** SIGTERM, then the exit code (bounded) once both streams are read to their end. */
  stop(): Promise<number | null>;
}

/** `bun src/main.ts serve --config <path>` with only PATH and HOME in its environment. */
function serve(configPath: string): Child {
  const proc = Bun.spawn([process.execPath, MAIN, "serve", "--config", configPath], {
    cwd: tempDir(),
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  children.add(proc);
  const text = { stdout: "", stderr: "" };
  const read = async (stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr") => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) text[into] += decoder.decode(chunk, { stream: true });
  };
  const drained = Promise.all([read(proc.stdout, "stdout"), read(proc.stderr, "stderr")]);
  const exited = () => proc.exitCode !== null || proc.signalCode !== null;
  return {
    proc,
    stdout: () => text.stdout,
    stderr: () => text.stderr,
    async listening() {
      const line = await waitFor(
        () =>
          exited() ? "exited" : text.stdout.split("\n").find((l) => l.includes('"msg":"hookd listening"')),
        { timeoutMs: 15_000, what: "the 'hookd listening' log line" },
      );
      if (line === "exited")
        throw new Error(`hookd exited (${proc.exitCode}) before listening: ${text.stderr}`);
      return (JSON.parse(line) as { url: string }).url;
    },
    async stop() {
      if (!exited()) proc.kill("SIGTERM");
      await waitFor(exited, { timeoutMs: 10_000, what: `hookd (pid ${proc.pid}) to exit` });
      await Promise.race([drained, Bun.sleep(2000)]);
      children.delete(proc);
      return proc.exitCode;
    },
  };
}

async function writeConfig(dir: string, keysYaml: string): Promise<string> {
  const path = join(dir, "hookd.yaml");
  writeFileSync(
    path,
    [
      "server: { host: 127.0.0.1, port: 0 }",
      ...storageYaml(await childStorage(dir)),
      keysYaml,
      "delivery: { allow_http: true, allow_private_networks: true, retry_schedule: [50ms] }",
      "shutdown_grace: 1s",
      "log: { level: debug }",
    ].join("\n"),
  );
  return path;
}

/** A fetch against the child's API that answers status and JSON body. */
async function call(base: string, method: string, path: string, key: string | null, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Json) : undefined };
}

const isJsonLine = (line: string) => {
  try {
    return typeof JSON.parse(line) === "object";
  } catch {
    return false;
  }
};

describe("the real CLI, log level debug", () => {
  test("a short session (keys, rotation, 401, 422, failing deliveries) writes no secret to stdout or stderr", async () => {
    const secrets = new Secrets();
    const adminKey = unique("cli-admin-key");
    const tenantKey = unique("cli-tenant-key");
    const wrongKey = unique("cli-wrong-key");
    for (const [label, key] of Object.entries({ adminKey, tenantKey, wrongKey })) secrets.add(label, key);
    const r = await startReceiver();
    stops.push(() => r.stop());
    r.always("/boom", { status: 500, body: "internal trace" });
    r.always("/moved", { kind: "redirect", location: "http://127.0.0.2:9/" });
    r.always("/hang", { kind: "hang" });

    const dir = tempDir();
    const child = serve(
      await writeConfig(
        dir,
        `auth: { keys: [ { name: admin, key: ${adminKey}, scopes: ["*"] }, { name: acme, key: ${tenantKey}, scopes: ["*"], tenant: acme } ] }`,
      ),
    );
    const base = await child.listening();

    expect((await call(base, "GET", "/v1/webhooks", wrongKey)).status).toBe(401);
    expect((await call(base, "GET", "/v1/webhooks", null)).status).toBe(401);
    const hooks: Json[] = [];
    for (const [path, key] of [
      ["/boom", adminKey],
      ["/moved", tenantKey],
      ["/hang", adminKey],
    ] as const) {
      const headers = customHeaders();
      for (const [name, value] of Object.entries(headers)) secrets.add(`${path} ${name}`, value);
      const created = await call(base, "POST", "/v1/webhooks", key, {
        url: r.url(path),
        events: ["*"],
        headers,
        timeout_seconds: 1,
      });
      expect(created.status).toBe(201);
      secrets.addWebhookSecret(`${path} secret`, created.body.secret);
      hooks.push(created.body);
    }
    const rotated = await call(base, "POST", `/v1/webhooks/${hooks[0].id}/rotate-secret`, adminKey, {
      grace_period_seconds: 600,
    });
    expect(rotated.status).toBe(200);
    secrets.addWebhookSecret("rotated secret", rotated.body.secret);
    const junk = {
      url: `ftp://x/${rotated.body.secret}`,
      headers: { Authorization: `Bearer ${adminKey}` },
      events: [`${tenantKey}!`],
    };
    expect((await call(base, "POST", "/v1/webhooks", adminKey, junk)).status).toBe(422);
    expect(
      (await call(base, "POST", "/v1/events", adminKey, `{"type": "${rotated.body.secret}"`)).status,
    ).toBe(400);
    expect(
      (await call(base, "POST", "/v1/events", adminKey, { type: "invoice.paid", data: {} })).status,
    ).toBe(202);
    expect(
      (await call(base, "POST", "/v1/events", tenantKey, { type: "invoice.paid", data: {} })).status,
    ).toBe(202);
    await waitFor(
      async () => {
        for (const hook of hooks) {
          const list = await call(base, "GET", `/v1/deliveries?webhook_id=${hook.id}`, adminKey);
          if (list.body.data.length === 0 || list.body.data.some((d: Json) => d.attempts === 0)) return false;
        }
        return true;
      },
      { timeoutMs: 8000, what: "an attempt of every delivery" },
    );

    await r.stop(); // the hanging attempts end now: the shutdown is quick
    expect(await child.stop()).toBe(0);
    const lines = [...child.stdout().split("\n"), ...child.stderr().split("\n")].filter(Boolean);
    const failed = lines.filter((line) => line.includes('"msg":"delivery attempt failed"'));
    expect(failed.some((line) => line.includes('"error":"http_status"'))).toBe(true);
    expect(failed.some((line) => line.includes('"error":"redirect"'))).toBe(true);
    expect(lines.some((line) => line.includes('"status":401'))).toBe(true);
    expect(secrets.findIn(lines)).toEqual([]);
  });

  test("the first-start admin key is printed once, on stderr, in no JSON line; a restart does not print it again", async () => {
    const dir = tempDir();
    const config = await writeConfig(dir, "auth: { keys: [] }");
    const first = serve(config);
    const base = await first.listening();
    const key = (await waitFor(() => /^ {4}(\S{16,})$/m.exec(first.stderr())?.[1], {
      what: "the first-start key on stderr",
    })) as string;
    // It works, and using it does not put it in the access log.
    expect((await call(base, "GET", "/v1/webhooks", key)).status).toBe(200);
    expect(
      (await call(base, "POST", "/v1/webhooks", key, { url: "http://127.0.0.1:9/", events: ["*"] })).status,
    ).toBe(201);
    expect((await call(base, "GET", "/v1/webhooks", `${key}x`)).status).toBe(401);
    expect(await first.stop()).toBe(0);

    const output = first.stdout() + first.stderr();
    expect(output.split(key)).toHaveLength(2); // exactly once
    expect(first.stdout()).not.toContain(key);
    const carrying = first
      .stderr()
      .split("\n")
      .filter((line) => line.includes(key));
    expect(carrying).toEqual([`    ${key}`]);
    expect(carrying.some(isJsonLine)).toBe(false);

    const second = serve(config);
    const again = await second.listening();
    expect((await call(again, "GET", "/v1/webhooks", key)).status).toBe(200);
    expect(await second.stop()).toBe(0);
    expect(second.stdout() + second.stderr()).not.toContain(key);
    expect(second.stderr()).toContain("using the admin key created on first start");
  });
});
