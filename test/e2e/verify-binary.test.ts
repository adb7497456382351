// `hookd verify --public-key` through the compiled dist/hookd (SPEC §5): a real v1a delivery from
// the daemon (the pass's driver) to a real receiver, then checked by the binary as a subscriber
// would, with the same "why it fails" answers as --secret.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTestDaemon, type TestDaemon } from "../support/daemon.ts";
import { BINARY, ensureBinary } from "../support/hookd-process.ts";
import { type ReceivedRequest, type Receiver, startReceiver } from "../support/receiver.ts";
import { tempDir } from "../support/temp.ts";

const RUN_TIMEOUT_MS = 15_000;

let t: TestDaemon;
let r: Receiver;
// biome-ignore lint/suspicious/noExplicitAny: API bodies are inspected freely
let v1a: any;
// biome-ignore lint/suspicious/noExplicitAny: API bodies are inspected freely
let v1: any;
let signed: ReceivedRequest;
let hmacSigned: ReceivedRequest;

beforeAll(async () => {
  await ensureBinary();
  t = await createTestDaemon({ yaml: "shutdown_grace: 1s" });
  r = await startReceiver();
  await t.daemon.start();
  v1a = (
    await t.request("POST", "/v1/webhooks", {
      body: { url: r.url("/a"), events: ["invoice.paid"], signature_scheme: "v1a" },
    })
  ).body;
  v1 = (await t.request("POST", "/v1/webhooks", { body: { url: r.url("/b"), events: ["invoice.paid"] } }))
    .body;
  await t.request("POST", "/v1/events", {
    body: { type: "invoice.paid", data: { amount: 1250, note: "ü" } },
  });
  [signed] = (await r.waitForRequests(1, "/a")) as [ReceivedRequest];
  [hmacSigned] = (await r.waitForRequests(1, "/b")) as [ReceivedRequest];
}, 180_000);

afterAll(async () => {
  await r?.stop();
  await t?.close();
});

/** Runs `dist/hookd verify` for `request` with `args`, the body from a file. */
async function verifyRun(
  request: ReceivedRequest,
  args: string[],
  options: { body?: string; env?: Record<string, string> } = {},
) {
  const bodyFile = join(tempDir(), "body.json");
  writeFileSync(bodyFile, options.body ?? request.body);
  const proc = Bun.spawn(
    [
      BINARY,
      "verify",
      ...args,
      "--id",
      request.headers["webhook-id"] ?? "",
      "--timestamp",
      request.headers["webhook-timestamp"] ?? "",
      "--signature",
      request.headers["webhook-signature"] ?? "",
      "--body-file",
      bodyFile,
    ],
    {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...options.env },
      stdout: "pipe",
      stderr: "pipe",
      timeout: RUN_TIMEOUT_MS,
      killSignal: "SIGKILL",
    },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

describe("hookd verify --public-key (the compiled binary)", () => {
  test("a real v1a delivery verifies with the webhook's public key", async () => {
    expect(signed.headers["webhook-signature"]).toMatch(/^v1a,/);
    expect(await verifyRun(signed, ["--public-key", v1a.public_key])).toEqual({
      code: 0,
      stdout: "valid: the signature matches\n",
      stderr: "",
    });
    // WEBHOOK_PUBLIC_KEY instead of the option.
    const fromEnv = await verifyRun(signed, [], { env: { WEBHOOK_PUBLIC_KEY: v1a.public_key } });
    expect(fromEnv.code).toBe(0);
  });

  test("says why it fails", async () => {
    const run = (args: string[], options?: { body?: string; env?: Record<string, string> }) =>
      verifyRun(signed, args, options);
    const key = ["--public-key", v1a.public_key];

    const tampered = await run(key, { body: signed.body.replace("1250", "1251") });
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toStartWith("invalid: no signature matches");
    expect((await run(key, { body: `${signed.body}\n` })).stdout).toContain("trailing newline");
    const pretty = JSON.stringify(JSON.parse(signed.body), null, 2);
    expect((await run(key, { body: pretty })).stdout).toContain("parsed and re-serialized");
    const other = (
      await t.request("POST", "/v1/webhooks", {
        body: { url: "https://example.com/x", events: ["invoice.paid"], signature_scheme: "v1a" },
      })
    ).body;
    expect((await run(["--public-key", other.public_key])).stdout).toContain("no signature matches");
    expect((await run(["--public-key", "whpk_nope"])).stdout).toContain("not base64 of 32 bytes");
    expect((await run(["--public-key", v1.secret])).stdout).toContain("verify a v1 webhook with --secret");
    // A secret against a v1a delivery, a public key against a v1 one: which option to use instead.
    const secretOnV1a = await run(["--secret", v1.secret]);
    expect(secretOnV1a.code).toBe(1);
    expect(secretOnV1a.stdout).toContain(
      "it has v1a entries, so the webhook signs with Ed25519: verify with --public-key",
    );
    const keyOnV1 = await verifyRun(hmacSigned, key);
    expect(keyOnV1.stdout).toContain(
      "it has v1 entries, so the webhook signs with HMAC: verify with --secret",
    );
    expect((await verifyRun(hmacSigned, ["--secret", v1.secret])).code).toBe(0);
    // Both keys at once is a usage error.
    const both = await run([...key, "--secret", v1.secret]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("not both");
  });
});
