// Loading the configuration: YAML text → `${ENV}` interpolation → the zod schema → a frozen Config.
// Every problem is reported with its YAML path, all at once.
import { existsSync, readFileSync } from "node:fs";
import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { type Config, configSchema } from "./schema.ts";

export interface ConfigProblem {
  path: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: ConfigProblem[],
  ) {
    super(`${source}: ${problems.length} problem(s) in the configuration`);
  }

  describe(): string {
    return [
      `${this.source}: invalid configuration`,
      ...this.problems.map((p) => `  ${p.path || "(root)"}: ${p.message}`),
    ].join("\n");
  }
}

export type Env = Record<string, string | undefined>;

export interface LoadedConfig {
  config: Config;
  /** Where it came from: a file path, or "embedded defaults". */
  source: string;
}

/** Finds and loads the configuration: `--config`, else `HOOKD_CONFIG`, else the embedded defaults. */
export function loadConfig(options: { path?: string; env: Env }): LoadedConfig {
  const path = options.path ?? (options.env.HOOKD_CONFIG || undefined);
  if (path === undefined) {
    // No file: the embedded defaults, on PostgreSQL when the environment names a database (§6).
    const url = databaseUrlFromEnv(options.env);
    if (url) {
      const source = "embedded defaults (PostgreSQL from the environment)";
      const quoted = JSON.stringify(url.replaceAll("${", "$${"));
      const text = `storage:\n  driver: postgres\n  postgres:\n    url: ${quoted}\n`;
      return { config: parseConfig(text, source, options.env), source };
    }
    return { config: parseConfig("", "embedded defaults", options.env), source: "embedded defaults" };
  }
  if (!existsSync(path)) throw new ConfigError(path, [{ path: "", message: "file not found" }]);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(path, [{ path: "", message: `cannot be read: ${(error as Error).message}` }]);
  }
  return { config: parseConfig(text, path, options.env), source: path };
}

/** A `postgres://` URL in HOOKD_DATABASE_URL, else DATABASE_URL (another scheme there is not ours). */
export function databaseUrlFromEnv(env: Env): string | null {
  for (const name of ["HOOKD_DATABASE_URL", "DATABASE_URL"]) {
    const value = env[name];
    if (value && /^postgres(ql)?:\/\//.test(value)) return value;
  }
  return null;
}

/** Parses configuration text; throws ConfigError naming every problem. */
export function parseConfig(text: string, source: string, env: Env): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((error) => {
        const at = error.pos ? lines.linePos(error.pos[0]) : undefined;
        const where = at ? `line ${at.line}, column ${at.col}` : "";
        return { path: where, message: error.message.split("\n")[0] ?? error.message };
      }),
    );
  }
  const problems: ConfigProblem[] = [];
  const raw = interpolate(toPlain(doc.contents, doc), [], env, problems);
  if (raw !== null && raw !== undefined && (typeof raw !== "object" || Array.isArray(raw))) {
    throw new ConfigError(source, [{ path: "", message: "must be a mapping of settings" }]);
  }
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    // A value with an unset variable is already reported; its leftover `${NAME}` text is not news.
    const unset = new Set(problems.map((problem) => problem.path));
    const found = result.error.issues.flatMap(issueToProblems);
    problems.push(...found.filter((problem) => !unset.has(problem.path)));
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  return deepFreeze((result as { data: Config }).data);
}

function toPlain(node: unknown, doc: Document): unknown {
  if (node === null || node === undefined) return null;
  if (isAlias(node)) return toPlain(node.resolve(doc), doc);
  if (isMap(node)) {
    const out: Record<string, unknown> = {};
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const value = toPlain(pair.value, doc);
      // A key with an empty value (e.g. a section whose settings are all commented out) is unset.
      if (value !== null) out[key] = value;
    }
    return out;
  }
  if (isSeq(node)) return node.items.map((item) => toPlain(item, doc));
  if (isScalar(node)) return node.value;
  return node;
}

const ENV_REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Replaces `${NAME}` in every string; `$${` stands for a literal `${`. */
function interpolate(
  value: unknown,
  path: (string | number)[],
  env: Env,
  problems: ConfigProblem[],
): unknown {
  if (typeof value === "string") {
    return value.replace(ENV_REF, (match, name: string | undefined) => {
      if (name === undefined) return "${";
      const found = env[name];
      if (found === undefined) {
        problems.push({ path: formatPath(path), message: `environment variable ${name} is not set` });
        return match;
      }
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => interpolate(item, [...path, i], env, problems));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value))
      out[key] = interpolate(item, [...path, key], env, problems);
    return out;
  }
  return value;
}

function issueToProblems(issue: z.core.$ZodIssue): ConfigProblem[] {
  const path = issue.path as (string | number)[];
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({ path: formatPath([...path, key]), message: "unknown key" }));
  }
  if (issue.code === "invalid_union") {
    // Name the element at fault (`delivery.retry_schedule[1]`) when only one form fits the value's type.
    const meant = issue.errors.filter(
      (branch) => !branch.some((inner) => inner.code === "invalid_type" && inner.path.length === 0),
    );
    if (meant.length === 1) {
      return (meant[0] ?? []).flatMap((inner) =>
        issueToProblems({ ...inner, path: [...path, ...inner.path] } as z.core.$ZodIssue),
      );
    }
  }
  return [{ path: formatPath(path), message: issue.message }];
}

/** `auth.keys[0].key` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}
