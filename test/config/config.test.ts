// The configuration loader against SPEC §4: every key, the defaults, the example file, errors named by
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${NAME} in config text is the syntax under test
// their YAML path, `${ENV}` interpolation, where the file is found, and the frozen result.
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ConfigError, type ConfigProblem, loadConfig, parseConfig } from "../../src/config/load.ts";
import { type Config, configSchema, defaultPublicUrl } from "../../src/config/schema.ts";
import { tempDir } from "../support/temp.ts";

const EXAMPLE_PATH = join(import.meta.dir, "..", "..", "config.example.yaml");

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** SPEC §4's defaults, written out by hand (durations in milliseconds). */
const SPEC_DEFAULTS: Config = {
  server: { host: "127.0.0.1", port: 8080 },
  storage: {
    driver: "sqlite",
    sqlite: { path: "./data/hookd.db", synchronous: "full" },
    postgres: { pool_size: 10, statement_timeout: 5000 },
  },
  console: { enabled: true, frame_ancestors: [] },
  auth: { keys: [], oauth_clients: [], token_ttl: HOUR },
  rate_limits: { read: 600, write: 300, ingest: 6000 },
  event_types: [],
  limits: { max_payload_bytes: 262_144, idempotency_window: 24 * HOUR },
  delivery: {
    timeout: 10 * SEC,
    retry_schedule: [5 * SEC, 5 * MIN, 30 * MIN, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR],
    max_in_flight: 256,
    max_in_flight_per_webhook: 8,
    lease: 60 * SEC,
    disable_after: 5 * DAY,
    disable_after_failures: 10,
    allow_http: false,
    allow_private_networks: false,
    allowed_cidrs: [],
  },
  retention: 30 * DAY,
  shutdown_grace: 10 * SEC,
  log: { level: "info" },
};

const BILLING_HASH = "5E884898DA28047151D0E56F8DC6292773603D0D6AABBDD62A11EF721D1542D8";
const PARTNER_HASH = "A665A45920422F9D417E4867EFDC4FB8A04A1F3FFF1FA07E998E86F7F7A27AE3";

/** Every key of the schema, each with a value that is not its default. */
const FULL_YAML = `
server:
  host: 0.0.0.0
  port: 9090
  public_url: https://hooks.example.com/hookd/
storage:
  driver: postgres
  sqlite:
    path: /var/lib/hookd/other.db
    synchronous: normal
  postgres:
    url: postgres://hookd:pw@db:5432/hookd
    pool_size: 4
    statement_timeout: 2s
console:
  enabled: false
  frame_ancestors: [https://app.example.com, "https://*.example.org:8443", "'self'"]
auth:
  keys:
    - name: admin
      key: admin-key-0123456789
      scopes: ["*"]
    - name: billing
      key_sha256: ${BILLING_HASH}
      scopes: [webhooks:read, webhooks:write, events:write]
      tenant: acme
      mode: live
  oauth_clients:
    - client_id: ci-robot
      client_secret: ci-robot-secret-0123456789
      scopes: ["*"]
    - client_id: partner.acme
      client_secret_sha256: ${PARTNER_HASH}
      scopes: [webhooks:read, events:write]
      tenant: acme
      mode: test
  token_ttl: 30m
rate_limits:
  read: 1
  write: 2
  ingest: 3
event_types:
  - name: invoice.paid
    description: An invoice was paid.
    schema: { type: object, required: [invoice_id] }
limits:
  max_payload_bytes: 1024
  idempotency_window: 90m
delivery:
  timeout: 1500ms
  retry_schedule: [1s, 2.5s, 1d]
  max_in_flight: 1
  max_in_flight_per_webhook: 2
  lease: 2m
  disable_after: 1h
  disable_after_failures: 3
  allow_http: true
  allow_private_networks: true
  allowed_cidrs: [10.0.0.0/8, "fd00::/8"]
retention: 7d
shutdown_grace: 0s
log:
  level: debug
`;

const EVERY_YAML = "delivery:\n  retry_schedule: { every: 1h, for: 48h }\n";

function problemsOf(text: string, env: Record<string, string> = {}): ConfigProblem[] {
  try {
    parseConfig(text, "test.yaml", env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

function pathsOf(text: string, env: Record<string, string> = {}): string[] {
  return problemsOf(text, env)
    .map((problem) => problem.path)
    .sort();
}

interface ZodDef {
  type: string;
  shape?: Record<string, { _zod: { def: ZodDef } }>;
  innerType?: { _zod: { def: ZodDef } };
  in?: { _zod: { def: ZodDef } };
  element?: { _zod: { def: ZodDef } };
  options?: { _zod: { def: ZodDef } }[];
}

/** The YAML path of every setting the schema knows (`auth.keys[].name`), read from the schema itself. */
function settingPaths(def: ZodDef, prefix: string): string[] {
  switch (def.type) {
    case "object":
      return Object.entries(def.shape ?? {}).flatMap(([key, inner]) =>
        settingPaths(inner._zod.def, prefix ? `${prefix}.${key}` : key),
      );
    case "default":
    case "prefault":
    case "optional":
      return settingPaths(def.innerType?._zod.def as ZodDef, prefix);
    case "pipe":
      return settingPaths(def.in?._zod.def as ZodDef, prefix);
    case "array": {
      const inner = settingPaths(def.element?._zod.def as ZodDef, `${prefix}[]`);
      return inner.length === 1 && inner[0] === `${prefix}[]` ? [prefix] : inner;
    }
    case "union":
      return [...new Set((def.options ?? []).flatMap((option) => settingPaths(option._zod.def, prefix)))];
    default:
      return [prefix];
  }
}

const SETTINGS = settingPaths((configSchema as unknown as { _zod: { def: ZodDef } })._zod.def, "");

/** Whether a plain YAML value holds a path (`[]` matches any element). */
function hasPath(value: unknown, parts: string[]): boolean {
  if (parts.length === 0) return value !== undefined;
  const [head, ...rest] = parts as [string, ...string[]];
  if (head.endsWith("[]")) {
    const list = (value as Record<string, unknown>)?.[head.slice(0, -2)];
    return Array.isArray(list) && list.some((item) => hasPath(item, rest));
  }
  if (value === null || typeof value !== "object") return false;
  return hasPath((value as Record<string, unknown>)[head], rest);
}

function expectDeepFrozen(value: unknown, path = "config"): void {
  if (value === null || typeof value !== "object") return;
  if (!Object.isFrozen(value)) throw new Error(`${path} is not frozen`);
  for (const [key, item] of Object.entries(value)) expectDeepFrozen(item, `${path}.${key}`);
}

describe("every documented key", () => {
  test("the schema's settings are the ones SPEC §4 lists", () => {
    expect(SETTINGS.sort()).toEqual(
      [
        "server.host",
        "server.port",
        "server.public_url",
        "storage.driver",
        "storage.sqlite.path",
        "storage.sqlite.synchronous",
        "storage.postgres.pool_size",
        "storage.postgres.statement_timeout",
        "storage.postgres.url",
        "auth.keys[].name",
        "console.enabled",
        "console.frame_ancestors",
        "auth.keys[].key",
        "auth.keys[].key_sha256",
        "auth.keys[].scopes",
        "auth.keys[].tenant",
        "auth.keys[].mode",
        "auth.oauth_clients[].client_id",
        "auth.oauth_clients[].client_secret",
        "auth.oauth_clients[].client_secret_sha256",
        "auth.oauth_clients[].scopes",
        "auth.oauth_clients[].tenant",
        "auth.oauth_clients[].mode",
        "auth.token_ttl",
        "rate_limits.read",
        "rate_limits.write",
        "rate_limits.ingest",
        "event_types[].name",
        "event_types[].description",
        "event_types[].schema",
        "limits.max_payload_bytes",
        "limits.idempotency_window",
        "delivery.timeout",
        "delivery.retry_schedule",
        "delivery.retry_schedule.every",
        "delivery.retry_schedule.for",
        "delivery.max_in_flight",
        "delivery.max_in_flight_per_webhook",
        "delivery.lease",
        "delivery.disable_after",
        "delivery.disable_after_failures",
        "delivery.allow_http",
        "delivery.allow_private_networks",
        "delivery.allowed_cidrs",
        "retention",
        "shutdown_grace",
        "log.level",
      ].sort(),
    );
  });

  test("the full test YAML sets every setting of the schema", () => {
    const documents = [parse(FULL_YAML), parse(EVERY_YAML)];
    const missing = SETTINGS.filter(
      (path) => !documents.some((doc) => hasPath(doc, path.split(/\.(?![^[]*\])/))),
    );
    expect(missing).toEqual([]);
  });

  test("a value for every key is parsed; durations become milliseconds", () => {
    const config = parseConfig(FULL_YAML, "full.yaml", {});
    expect(config).toEqual({
      server: { host: "0.0.0.0", port: 9090, public_url: "https://hooks.example.com/hookd" },
      storage: {
        driver: "postgres",
        sqlite: { path: "/var/lib/hookd/other.db", synchronous: "normal" },
        postgres: { url: "postgres://hookd:pw@db:5432/hookd", pool_size: 4, statement_timeout: 2000 },
      },
      console: {
        enabled: false,
        frame_ancestors: ["https://app.example.com", "https://*.example.org:8443", "'self'"],
      },
      auth: {
        keys: [
          { name: "admin", key: "admin-key-0123456789", scopes: ["*"], mode: "live" },
          {
            name: "billing",
            key_sha256: BILLING_HASH.toLowerCase(),
            scopes: ["webhooks:read", "webhooks:write", "events:write"],
            tenant: "acme",
            mode: "live",
          },
        ],
        oauth_clients: [
          { client_id: "ci-robot", client_secret: "ci-robot-secret-0123456789", scopes: ["*"], mode: "live" },
          {
            client_id: "partner.acme",
            client_secret_sha256: PARTNER_HASH.toLowerCase(),
            scopes: ["webhooks:read", "events:write"],
            tenant: "acme",
            mode: "test",
          },
        ],
        token_ttl: 30 * MIN,
      },
      rate_limits: { read: 1, write: 2, ingest: 3 },
      event_types: [
        {
          name: "invoice.paid",
          description: "An invoice was paid.",
          schema: { type: "object", required: ["invoice_id"] },
        },
      ],
      limits: { max_payload_bytes: 1024, idempotency_window: 90 * MIN },
      delivery: {
        timeout: 1500,
        retry_schedule: [1 * SEC, 2500, 1 * DAY],
        max_in_flight: 1,
        max_in_flight_per_webhook: 2,
        lease: 2 * MIN,
        disable_after: 1 * HOUR,
        disable_after_failures: 3,
        allow_http: true,
        allow_private_networks: true,
        allowed_cidrs: ["10.0.0.0/8", "fd00::/8"],
      },
      retention: 7 * DAY,
      shutdown_grace: 0,
      log: { level: "debug" },
    });
  });

  test("retry_schedule also takes { every, for }", () => {
    const config = parseConfig(EVERY_YAML, "every.yaml", {});
    expect(config.delivery.retry_schedule).toEqual({ every: HOUR, for: 48 * HOUR });
  });

  test("an event type's description defaults to empty and its schema to none", () => {
    const config = parseConfig("event_types:\n  - name: order.created\n", "x.yaml", {});
    expect(config.event_types).toEqual([{ name: "order.created", description: "" }]);
  });
});

describe("defaults", () => {
  test("the embedded defaults are SPEC §4's", () => {
    expect(parseConfig("", "empty", {})).toEqual(SPEC_DEFAULTS);
    expect(loadConfig({ env: {} })).toEqual({ config: SPEC_DEFAULTS, source: "embedded defaults" });
  });

  test("an empty section, or one whose keys are all commented out, takes the defaults", () => {
    const text = "server:\nstorage:\n  postgres:\n    # url: x\nauth:\n  keys:\n";
    expect(parseConfig(text, "x.yaml", {})).toEqual(SPEC_DEFAULTS);
  });

  test("config.example.yaml parses to exactly the embedded defaults, with no environment", () => {
    const text = readFileSync(EXAMPLE_PATH, "utf8");
    expect(parseConfig(text, EXAMPLE_PATH, {})).toEqual(parseConfig("", "empty", {}));
  });

  test("config.example.yaml mentions every setting", () => {
    const text = readFileSync(EXAMPLE_PATH, "utf8");
    const missing = SETTINGS.filter((path) => {
      const name = path
        .split(/[.[\]]+/)
        .filter(Boolean)
        .at(-1) as string;
      return !new RegExp(`(^|[\\s{,])${name}:`, "m").test(text);
    });
    expect(missing).toEqual([]);
  });

  test("config.example.yaml explains ${ENV} and the $${ escape", () => {
    const text = readFileSync(EXAMPLE_PATH, "utf8");
    expect(text).toContain("${NAME}");
    expect(text).toContain("$${");
  });
});

describe("bad values are named by their YAML path", () => {
  const cases: [string, string][] = [
    ["server:\n  port: 70000\n", "server.port"],
    ["server:\n  port: 80.5\n", "server.port"],
    ["server:\n  port: http\n", "server.port"],
    ["server:\n  host: ''\n", "server.host"],
    ["server:\n  public_url: hooks.example.com\n", "server.public_url"],
    ["server:\n  public_url: ftp://hooks.example.com\n", "server.public_url"],
    ["server:\n  public_url: https://u:p@hooks.example.com\n", "server.public_url"],
    ["server:\n  public_url: https://hooks.example.com/?a=1\n", "server.public_url"],
    ["server:\n  public_url: https://hooks.example.com/#x\n", "server.public_url"],
    ["storage:\n  driver: mysql\n", "storage.driver"],
    ["storage:\n  driver: postgres\n", "storage.postgres.url"],
    ["storage:\n  sqlite:\n    synchronous: off\n", "storage.sqlite.synchronous"],
    ["auth:\n  keys:\n    - { name: a, key_sha256: abc123, scopes: ['*'] }\n", "auth.keys[0].key_sha256"],
    ["auth:\n  keys:\n    - { name: a, key: too-short, scopes: ['*'] }\n", "auth.keys[0].key"],
    ["auth:\n  keys:\n    - { name: a, scopes: ['*'] }\n", "auth.keys[0]"],
    [
      "auth:\n  keys:\n    - { name: a, key: 0123456789abcdef, scopes: [everything] }\n",
      "auth.keys[0].scopes[0]",
    ],
    ["auth:\n  keys:\n    - { name: a, key: 0123456789abcdef, scopes: [] }\n", "auth.keys[0].scopes"],
    [
      "auth:\n  keys:\n    - { name: a, key: 0123456789abcdef, scopes: ['*'], tenant: 'a b' }\n",
      "auth.keys[0].tenant",
    ],
    [
      "auth:\n  keys:\n    - { name: a, key: 0123456789abcdef, scopes: ['*'] }\n    - { name: a, key: 0123456789abcdeg, scopes: ['*'] }\n",
      "auth.keys[1].name",
    ],
    ["auth:\n  oauth_clients:\n    - { client_id: a, scopes: ['*'] }\n", "auth.oauth_clients[0]"],
    [
      `auth:\n  oauth_clients:\n    - { client_id: a, client_secret: 0123456789abcdef, client_secret_sha256: ${BILLING_HASH}, scopes: ['*'] }\n`,
      "auth.oauth_clients[0]",
    ],
    [
      "auth:\n  oauth_clients:\n    - { client_id: a, client_secret: short, scopes: ['*'] }\n",
      "auth.oauth_clients[0].client_secret",
    ],
    [
      "auth:\n  oauth_clients:\n    - { client_id: a, client_secret_sha256: abc, scopes: ['*'] }\n",
      "auth.oauth_clients[0].client_secret_sha256",
    ],
    [
      "auth:\n  oauth_clients:\n    - { client_id: 'a b', client_secret: 0123456789abcdef, scopes: ['*'] }\n",
      "auth.oauth_clients[0].client_id",
    ],
    [
      "auth:\n  oauth_clients:\n    - { client_id: a, client_secret: 0123456789abcdef, scopes: [] }\n",
      "auth.oauth_clients[0].scopes",
    ],
    [
      "auth:\n  oauth_clients:\n    - { client_id: a, client_secret: 0123456789abcdef, scopes: [all] }\n",
      "auth.oauth_clients[0].scopes[0]",
    ],
    [
      "auth:\n  oauth_clients:\n    - { client_id: a, client_secret: 0123456789abcdef, scopes: ['*'], tenant: 'a b' }\n",
      "auth.oauth_clients[0].tenant",
    ],
    [
      "auth:\n  oauth_clients:\n    - { client_id: a, client_secret: 0123456789abcdef, scopes: ['*'] }\n    - { client_id: a, client_secret: 0123456789abcdeg, scopes: ['*'] }\n",
      "auth.oauth_clients[1].client_id",
    ],
    [
      "auth:\n  keys:\n    - { name: a, key: 0123456789abcdef, scopes: ['*'] }\n  oauth_clients:\n    - { client_id: a, client_secret: 0123456789abcdeg, scopes: ['*'] }\n",
      "auth.oauth_clients[0].client_id",
    ],
    ["auth:\n  token_ttl: 25h\n", "auth.token_ttl"],
    ["auth:\n  token_ttl: 500ms\n", "auth.token_ttl"],
    ["auth:\n  token_ttl: 3600\n", "auth.token_ttl"],
    ["rate_limits:\n  read: 0\n", "rate_limits.read"],
    ["rate_limits:\n  write: many\n", "rate_limits.write"],
    ["event_types:\n  - name: 'not a name'\n", "event_types[0].name"],
    ["event_types:\n  - name: a.b\n  - name: a.b\n", "event_types[1].name"],
    ["event_types:\n  - name: a.b\n    schema: 5\n", "event_types[0].schema"],
    ["limits:\n  max_payload_bytes: 10\n", "limits.max_payload_bytes"],
    ["limits:\n  idempotency_window: 24\n", "limits.idempotency_window"],
    ["delivery:\n  timeout: 2m\n", "delivery.timeout"],
    ["delivery:\n  retry_schedule: [5s, soon, 1h]\n", "delivery.retry_schedule[1]"],
    ["delivery:\n  retry_schedule: []\n", "delivery.retry_schedule"],
    ["delivery:\n  retry_schedule: 5s\n", "delivery.retry_schedule"],
    ["delivery:\n  retry_schedule: { every: 1h, for: forever }\n", "delivery.retry_schedule.for"],
    ["delivery:\n  lease: 10\n", "delivery.lease"],
    ["delivery:\n  allow_http: yes\n", "delivery.allow_http"],
    ["delivery:\n  allowed_cidrs: [10.0.0.0/33]\n", "delivery.allowed_cidrs[0]"],
    ["retention: 1s\n", "retention"],
    ["shutdown_grace: -1s\n", "shutdown_grace"],
    ["log:\n  level: loud\n", "log.level"],
  ];
  for (const [text, path] of cases) {
    test(`${path} in ${JSON.stringify(text)}`, () => {
      expect(pathsOf(text)).toEqual([path]);
    });
  }

  test("a bound is itself allowed: the maximum duration is accepted, the one past it refused", () => {
    const config = parseConfig(
      "auth:\n  token_ttl: 24h\ndelivery:\n  timeout: 60s\nstorage:\n  postgres:\n    statement_timeout: 10m\n",
      "test.yaml",
      {},
    );
    expect(config.auth.token_ttl).toBe(DAY);
    expect(config.delivery.timeout).toBe(MIN);
    expect(config.storage.postgres.statement_timeout).toBe(10 * MIN);
    expect(pathsOf("delivery:\n  timeout: 60001ms\n")).toEqual(["delivery.timeout"]);
  });

  test("an idempotency window under a second is refused, not a silent switch-off", () => {
    expect(pathsOf("limits:\n  idempotency_window: 500ms\n")).toEqual(["limits.idempotency_window"]);
    expect(pathsOf("limits:\n  idempotency_window: 0s\n")).toEqual(["limits.idempotency_window"]);
    expect(
      parseConfig("limits:\n  idempotency_window: 1s\n", "test.yaml", {}).limits.idempotency_window,
    ).toBe(SEC);
  });

  test("messages say what is wrong, not only where", () => {
    expect(problemsOf("server:\n  port: 70000\n")).toEqual([
      { path: "server.port", message: "must be at most 65535" },
    ]);
    expect(problemsOf("delivery:\n  retry_schedule: [5s, soon]\n")[0]?.message).toContain('"soon"');
  });

  test("unknown keys at every level are errors naming their path", () => {
    const text = `
surprise: 1
server: { colour: red }
storage: { extra: 1, sqlite: { extra: 1 }, postgres: { extra: 1 } }
auth: { extra: 1, keys: [{ name: a, key: 0123456789abcdef, scopes: ["*"], extra: 1 }], oauth_clients: [{ client_id: c, client_secret: 0123456789abcdef, scopes: ["*"], extra: 1 }] }
rate_limits: { extra: 1 }
event_types: [{ name: a.b, extra: 1 }]
limits: { extra: 1 }
delivery: { extra: 1, retry_schedule: { every: 1h, for: 2h, extra: 1 } }
log: { extra: 1 }
`;
    const problems = problemsOf(text);
    expect(problems.map((p) => p.path).sort()).toEqual(
      [
        "surprise",
        "server.colour",
        "storage.extra",
        "storage.sqlite.extra",
        "storage.postgres.extra",
        "auth.extra",
        "auth.keys[0].extra",
        "auth.oauth_clients[0].extra",
        "rate_limits.extra",
        "event_types[0].extra",
        "limits.extra",
        "delivery.extra",
        "delivery.retry_schedule.extra",
        "log.extra",
      ].sort(),
    );
    for (const problem of problems) expect(problem.message).toBe("unknown key");
  });

  test("every problem is reported at once", () => {
    const text = `
server: { port: -1 }
auth: { keys: [{ name: a, key_sha256: nothex, scopes: ["*"] }] }
rate_limits: { read: none }
delivery: { retry_schedule: [1s, 2s, later], allowed_cidrs: [nope] }
log: { level: shout }
bogus: true
`;
    expect(pathsOf(text)).toEqual(
      [
        "server.port",
        "auth.keys[0].key_sha256",
        "rate_limits.read",
        "delivery.retry_schedule[2]",
        "delivery.allowed_cidrs[0]",
        "log.level",
        "bogus",
      ].sort(),
    );
  });

  test("ConfigError.describe() lists each problem with its path", () => {
    try {
      parseConfig("server: { port: x }\nlog: { level: y }\n", "my.yaml", {});
      throw new Error("expected a ConfigError");
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const text = (error as ConfigError).describe();
      expect(text).toStartWith("my.yaml: invalid configuration");
      expect(text).toContain("  server.port: must be a number");
      expect(text).toContain("  log.level: ");
    }
  });

  test("a YAML syntax error is reported with its line and column", () => {
    expect(problemsOf("server:\n  port: 8080\n  host: x: y\n")).toEqual([
      { path: "line 3, column 9", message: "Nested mappings are not allowed in compact mappings" },
    ]);
    expect(problemsOf("server:\n  port: 8080\n\thost: x\n")).toEqual([
      { path: "line 3, column 1", message: "Tabs are not allowed as indentation" },
    ]);
  });

  test("a key given twice is a syntax error at its line", () => {
    expect(problemsOf("server:\n  port: 1\n  port: 2\n")).toEqual([
      { path: "line 3, column 3", message: expect.stringContaining("unique") },
    ]);
  });

  test("a document that is not a mapping is one problem at the root", () => {
    expect(problemsOf("- server\n- log\n")).toEqual([{ path: "", message: "must be a mapping of settings" }]);
  });

  test("YAML anchors and aliases are resolved", () => {
    const config = parseConfig("rate_limits:\n  read: &n 42\n  write: *n\n", "x.yaml", {});
    expect(config.rate_limits).toEqual({ read: 42, write: 42, ingest: 6000 });
  });
});

describe("${NAME} interpolation", () => {
  test("a whole value and a part of a string", () => {
    const text = `
storage:
  postgres:
    url: postgres://\${DB_USER}:\${DB_PASS}@db/hookd
auth:
  keys:
    - { name: admin, key: "\${HOOKD_ADMIN_KEY}", scopes: ["*"] }
`;
    const config = parseConfig(text, "x.yaml", {
      DB_USER: "u",
      DB_PASS: "p@ss",
      HOOKD_ADMIN_KEY: "from-the-environment-0123",
    });
    expect(config.storage.postgres.url).toBe("postgres://u:p@ss@db/hookd");
    expect(config.auth.keys[0]?.key).toBe("from-the-environment-0123");
  });

  test("numeric and boolean keys accept values from the environment", () => {
    const text = `
server:
  port: \${PORT}
rate_limits:
  read: \${READ}
delivery:
  allow_http: \${ALLOW_HTTP}
  timeout: "\${TIMEOUT}"
`;
    const config = parseConfig(text, "x.yaml", {
      PORT: "9000",
      READ: "7",
      ALLOW_HTTP: "true",
      TIMEOUT: "3s",
    });
    expect(config.server.port).toBe(9000);
    expect(config.rate_limits.read).toBe(7);
    expect(config.delivery.allow_http).toBe(true);
    expect(config.delivery.timeout).toBe(3 * SEC);
  });

  test("a value from the environment is still validated at its path", () => {
    expect(problemsOf("server:\n  port: ${PORT}\n", { PORT: "eighty" })).toEqual([
      { path: "server.port", message: "must be a number" },
    ]);
  });

  test("an unset variable is an error naming the variable and the path", () => {
    const text = "server:\n  port: ${PORT}\nstorage: { postgres: { url: 'x-${DATABASE_URL}' } }\n";
    expect(problemsOf(text, {})).toEqual([
      { path: "server.port", message: "environment variable PORT is not set" },
      { path: "storage.postgres.url", message: "environment variable DATABASE_URL is not set" },
    ]);
  });

  test("an empty variable is set (to the empty string)", () => {
    expect(parseConfig("server: { host: 'a${EMPTY}b' }\n", "x.yaml", { EMPTY: "" }).server.host).toBe("ab");
  });

  test("$${X} is a literal ${X}, whether or not X is set", () => {
    const text = "server: { host: 'a$${X}b' }\n";
    expect(parseConfig(text, "x.yaml", {}).server.host).toBe("a${X}b");
    expect(parseConfig(text, "x.yaml", { X: "no" }).server.host).toBe("a${X}b");
  });

  test("a variable's value is not interpolated again", () => {
    const config = parseConfig("server: { host: '${A}' }\n", "x.yaml", { A: "${B}", B: "no" });
    expect(config.server.host).toBe("${B}");
  });

  test("keys are not interpolated, only values", () => {
    expect(pathsOf("server: { '${K}': 1 }\n", { K: "port" })).toEqual(["server.${K}"]);
  });
});

describe("loadConfig", () => {
  function writeConfig(text: string): string {
    const path = join(tempDir(), "hookd.yaml");
    writeFileSync(path, text);
    return path;
  }

  test("reads the file given as path", () => {
    const path = writeConfig("server: { port: 1234 }\n");
    const loaded = loadConfig({ path, env: {} });
    expect(loaded.source).toBe(path);
    expect(loaded.config.server.port).toBe(1234);
  });

  test("HOOKD_CONFIG is honoured when no path is given", () => {
    const path = writeConfig("server: { port: 2345 }\n");
    const loaded = loadConfig({ env: { HOOKD_CONFIG: path } });
    expect(loaded.source).toBe(path);
    expect(loaded.config.server.port).toBe(2345);
  });

  test("--config wins over HOOKD_CONFIG", () => {
    const fromFlag = writeConfig("server: { port: 3456 }\n");
    const fromEnv = writeConfig("server: { port: 4567 }\n");
    const loaded = loadConfig({ path: fromFlag, env: { HOOKD_CONFIG: fromEnv } });
    expect(loaded.source).toBe(fromFlag);
    expect(loaded.config.server.port).toBe(3456);
  });

  test("the environment given is the one used for ${NAME}", () => {
    const path = writeConfig("server:\n  port: ${PORT}\n");
    expect(loadConfig({ path, env: { PORT: "5678" } }).config.server.port).toBe(5678);
  });

  test("a missing file is an error, from --config or HOOKD_CONFIG", () => {
    const missing = join(tempDir(), "nope.yaml");
    for (const options of [{ path: missing, env: {} }, { env: { HOOKD_CONFIG: missing } }]) {
      let caught: unknown;
      try {
        loadConfig(options);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).source).toBe(missing);
      expect((caught as ConfigError).problems).toEqual([{ path: "", message: "file not found" }]);
    }
  });

  test("problems in a file name the file", () => {
    const path = writeConfig("log: { level: loud }\n");
    expect(() => loadConfig({ path, env: {} })).toThrow(`${path}: 1 problem(s)`);
  });
});

describe("the result", () => {
  test("is deep-frozen", () => {
    const config = parseConfig(FULL_YAML, "full.yaml", {});
    expectDeepFrozen(config);
    expectDeepFrozen(parseConfig(EVERY_YAML, "every.yaml", {}));
    expectDeepFrozen(parseConfig("", "empty", {}));
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => (config.delivery.retry_schedule as number[]).push(1)).toThrow(TypeError);
    expect(() => (config.auth.keys[0]!.scopes as string[]).push("x")).toThrow(TypeError);
    expect(config.server.port).toBe(9090);
  });
});

describe("a database URL in the environment", () => {
  test("with no config file, HOOKD_DATABASE_URL (else DATABASE_URL) runs the defaults on PostgreSQL", () => {
    const url = "postgres://hookd:pw@db:5432/hookd";
    for (const env of [
      { HOOKD_DATABASE_URL: url },
      { DATABASE_URL: url },
      { HOOKD_DATABASE_URL: url, DATABASE_URL: "x" },
    ]) {
      const { config } = loadConfig({ env });
      expect(config.storage.driver).toBe("postgres");
      expect(config.storage.postgres.url).toBe(url);
      expect({ ...config, storage: SPEC_DEFAULTS.storage }).toEqual(SPEC_DEFAULTS);
    }
  });

  test("a URL of another scheme, or a config file, leaves the driver as configured", () => {
    expect(loadConfig({ env: { DATABASE_URL: "mysql://db/x" } }).config.storage.driver).toBe("sqlite");
    const path = join(tempDir(), "c.yaml");
    writeFileSync(path, "server: { port: 1 }\n");
    expect(loadConfig({ path, env: { DATABASE_URL: "postgres://db/x" } }).config.storage.driver).toBe(
      "sqlite",
    );
  });
});

describe("console", () => {
  test("frame_ancestors takes origins, wildcard-subdomain origins and 'self'", () => {
    const config = parseConfig(
      "console:\n  frame_ancestors: [https://a.example.com, 'http://localhost:3000', \"https://*.b.example\", \"'self'\"]\n",
      "c.yaml",
      {},
    );
    expect(config.console.frame_ancestors).toEqual([
      "https://a.example.com",
      "http://localhost:3000",
      "https://*.b.example",
      "'self'",
    ]);
  });

  test("a frame_ancestors entry that could end or widen the CSP directive is a problem at its path", () => {
    for (const bad of [
      "*",
      "https://a.example.com; script-src *",
      "https://a.example.com b.example",
      "'unsafe-inline'",
      "javascript:",
      "https://a.example.com/path",
    ]) {
      expect(pathsOf(`console:\n  frame_ancestors: [${JSON.stringify(bad)}]\n`)).toEqual([
        "console.frame_ancestors[0]",
      ]);
    }
    expect(pathsOf("console:\n  enabled: maybe\n")).toEqual(["console.enabled"]);
  });
});

describe("server.public_url", () => {
  test("unset: portal links use http://<host>:<port>, a wildcard host read as 127.0.0.1", () => {
    expect(parseConfig("", "empty", {}).server.public_url).toBeUndefined();
    expect(defaultPublicUrl("127.0.0.1", 8080)).toBe("http://127.0.0.1:8080");
    expect(defaultPublicUrl("0.0.0.0", 9000)).toBe("http://127.0.0.1:9000");
    expect(defaultPublicUrl("::", 9000)).toBe("http://127.0.0.1:9000");
    expect(defaultPublicUrl("::1", 9000)).toBe("http://[::1]:9000");
    expect(defaultPublicUrl("hooks.internal", 80)).toBe("http://hooks.internal:80");
  });
});
