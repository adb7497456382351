// The command line (SPEC §5): `src/main.ts` run by bun as a child process, each run bounded in time.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${NAME} in config text is the syntax under test
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { HELP } from "../../src/cli/args.ts";
import { VERSION } from "../../src/version.ts";
import { tempDir } from "../support/temp.ts";

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const RUN_TIMEOUT_MS = 15_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bun src/main.ts ...args` in an empty temp directory with only PATH and HOME set. */
async function hookd(
  args: string[],
  options: { stdin?: string; env?: Record<string, string>; cwd?: string } = {},
): Promise<Run> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    cwd: options.cwd ?? tempDir(),
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...options.env },
    stdin: new Blob([options.stdin ?? ""]),
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
  if (proc.signalCode) throw new Error(`hookd ${args.join(" ")} was killed (${proc.signalCode}): ${stderr}`);
  return { code, stdout, stderr };
}

function writeConfig(text: string): string {
  const path = join(tempDir(), "hookd.yaml");
  writeFileSync(path, text);
  return path;
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

describe("version and help", () => {
  test("version prints the version", async () => {
    const run = await hookd(["version"]);
    expect(run).toEqual({ code: 0, stdout: `hookd ${VERSION}\n`, stderr: "" });
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  test("--help prints the usage and every command", async () => {
    const run = await hookd(["--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${HELP}\n`);
    for (const command of ["serve", "config check", "key hash", "version", "--config"]) {
      expect(run.stdout).toContain(command);
    }
  });

  test("an unknown command exits 2 with the usage on stderr", async () => {
    const run = await hookd(["frobnicate"]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toStartWith("hookd: unknown command 'frobnicate'");
    expect(run.stderr).toContain("Usage:");
  });

  test("an unknown option, or --config without a file, exits 2", async () => {
    const unknown = await hookd(["serve", "--verbose"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option --verbose");
    const bare = await hookd(["config", "check", "--config"]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain("--config needs a file path");
  });
});

describe("config check", () => {
  test("a valid file: ok on stdout, exit 0", async () => {
    const path = writeConfig("server:\n  port: 0\nlog:\n  level: warn\n");
    const run = await hookd(["config", "check", "--config", path]);
    expect(run).toEqual({ code: 0, stdout: `${path}: ok\n`, stderr: "" });
  });

  test("config.example.yaml is valid with no environment", async () => {
    const example = join(import.meta.dir, "..", "..", "config.example.yaml");
    const run = await hookd(["config", "check", "--config", example]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
  });

  test("with no file and no HOOKD_CONFIG it checks the embedded defaults", async () => {
    const run = await hookd(["config", "check"]);
    expect(run).toEqual({ code: 0, stdout: "embedded defaults: ok\n", stderr: "" });
  });

  test("HOOKD_CONFIG is honoured, --config wins over it, and ${ENV} is read from the environment", async () => {
    const good = writeConfig("server:\n  port: ${PORT}\n");
    const bad = writeConfig("server:\n  port: nope\n");
    const viaEnv = await hookd(["config", "check"], { env: { HOOKD_CONFIG: good, PORT: "9000" } });
    expect(viaEnv).toEqual({ code: 0, stdout: `${good}: ok\n`, stderr: "" });
    const flagWins = await hookd(["config", "check", "--config", bad], {
      env: { HOOKD_CONFIG: good, PORT: "1" },
    });
    expect(flagWins.code).toBe(1);
    expect(flagWins.stderr).toContain(`${bad}: invalid configuration`);
    const unset = await hookd(["config", "check", `--config=${good}`]);
    expect(unset.code).toBe(1);
    expect(unset.stderr).toContain("server.port: environment variable PORT is not set");
  });

  test("OAuth2 clients: ${ENV} secrets, and each bad client named by its path", async () => {
    const good = writeConfig(
      "auth:\n  oauth_clients:\n    - { client_id: ci, client_secret: '${CI_SECRET}', scopes: ['*'] }\n  token_ttl: 2h\n",
    );
    const ok = await hookd(["config", "check", "--config", good], {
      env: { CI_SECRET: "ci-secret-0123456789" },
    });
    expect(ok).toEqual({ code: 0, stdout: `${good}: ok\n`, stderr: "" });
    const bad = writeConfig(
      [
        "server:",
        "  port: 70000",
        "auth:",
        "  oauth_clients:",
        "    - { client_id: ci, client_secret: ci-secret-0123456789, scopes: ['*'] }",
        "    - { client_id: ci, client_secret: ci-secret-0123456789, scopes: ['*'] }",
        "",
      ].join("\n"),
    );
    const run = await hookd(["config", "check", "--config", bad]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("server.port: must be at most 65535");
    expect(run.stderr).toContain("auth.oauth_clients[1].client_id: is used twice");
    const both = writeConfig(
      `auth:\n  oauth_clients:\n    - { client_id: ci, client_secret: ci-secret-0123456789, client_secret_sha256: ${"ab".repeat(32)}, scopes: ['*'] }\n  token_ttl: 2d\n`,
    );
    const twice = await hookd(["config", "check", "--config", both]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain(
      "auth.oauth_clients[0]: needs exactly one of client_secret or client_secret_sha256",
    );
    expect(twice.stderr).toContain("auth.token_ttl: must be at most");
    expect(twice.stderr + run.stderr).not.toContain("ci-secret-0123456789");
  });

  test("a bad file: every problem with its path on stderr, exit non-zero", async () => {
    const path = writeConfig(
      [
        "server:",
        "  port: 70000",
        "auth:",
        "  keys:",
        "    - { name: a, key_sha256: abc, scopes: ['*'] }",
        "delivery:",
        "  retry_schedule: [5s, later]",
        "  allowed_cidrs: [300.0.0.0/8]",
        "rate_limits:",
        "  read: 0",
        "log:",
        "  level: loud",
        "colour: blue",
        "",
      ].join("\n"),
    );
    const run = await hookd(["config", "check", "--config", path]);
    expect(run.code).not.toBe(0);
    expect(run.stdout).toBe("");
    const lines = run.stderr.trimEnd().split("\n");
    expect(lines[0]).toBe(`${path}: invalid configuration`);
    const paths = lines.slice(1).map((line) => line.trim().split(":")[0]);
    expect(paths.sort()).toEqual(
      [
        "server.port",
        "auth.keys[0].key_sha256",
        "delivery.retry_schedule[1]",
        "delivery.allowed_cidrs[0]",
        "rate_limits.read",
        "log.level",
        "colour",
      ].sort(),
    );
  });

  test("a YAML syntax error names its line", async () => {
    const path = writeConfig("server:\n  port: 8080\n  host: x: y\n");
    const run = await hookd(["config", "check", "--config", path]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain("  line 3, column 9: ");
  });

  test("a missing file is an error", async () => {
    const path = join(tempDir(), "missing.yaml");
    const run = await hookd(["config", "check", "--config", path]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(path);
    expect(run.stderr).toContain("file not found");
  });
});

describe("key hash", () => {
  const key = "hk_example-key-0123456789";

  test("prints the SHA-256 hex of the key on stdin, with or without a trailing newline", async () => {
    for (const stdin of [key, `${key}\n`, `${key}\r\n`]) {
      const run = await hookd(["key", "hash"], { stdin });
      expect(run).toEqual({ code: 0, stdout: `${sha256(key)}\n`, stderr: "" });
    }
  });

  test("only one trailing newline is ignored", async () => {
    const run = await hookd(["key", "hash"], { stdin: `${key}\n\n` });
    expect(run.stdout).toBe(`${sha256(`${key}\n`)}\n`);
  });

  test("the hash is accepted as key_sha256 by the config", async () => {
    const hashed = await hookd(["key", "hash"], { stdin: key });
    const path = writeConfig(
      `auth:\n  keys:\n    - name: a\n      key_sha256: ${hashed.stdout.trim()}\n      scopes: ["*"]\n`,
    );
    expect((await hookd(["config", "check", "--config", path])).code).toBe(0);
  });

  test("empty stdin, or a lone newline, is an error", async () => {
    for (const stdin of ["", "\n"]) {
      const run = await hookd(["key", "hash"], { stdin });
      expect(run.code).not.toBe(0);
      expect(run.stdout).toBe("");
      expect(run.stderr).toContain("no key on stdin");
    }
  });
});
