// The test runner behind `npm test` (after the build): `bun test` over every file on SQLite, then,
// when HOOKD_TEST_POSTGRES_URL names a server, a second pass with HOOKD_TEST_DRIVER=postgres over the
// files that run hookd itself (test daemons and child processes), so the API, delivery and process
// tests hold on both drivers. Each pass's output is streamed as it comes; the last lines are the
// counts of both passes together, in bun's format (" N pass", " N fail"), for .ci/run to read.
// Extra arguments go to both passes: flags as they are, file filters narrowing the second pass too.
import { readFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { stripVTControlCharacters } from "node:util";

const ROOT = resolve(import.meta.dir, "..");

/**
 * What the PostgreSQL pass runs: every test file that starts a hookd (test/support/driver.ts), but
 * those that ask for PostgreSQL themselves (skipWithoutPostgres): they already ran on it in the first.
 */
const POSTGRES_TESTS = [
  "test/http/",
  "test/e2e/",
  "test/reliability/",
  "test/cli/",
  "test/dispatcher/delivery.test.ts",
  "test/dispatcher/delivery-controls.test.ts",
  "test/domain/webhook-url.test.ts",
];

/** bun test flags that take the next argument as their value when not written `--flag=value`. */
const FLAGS_WITH_VALUE = new Set([
  "-t",
  "--test-name-pattern",
  "--timeout",
  "--rerun-each",
  "--retry",
  "--seed",
  "--coverage-reporter",
  "--coverage-dir",
  "--reporter",
  "--reporter-outfile",
  "--max-concurrency",
  "--path-ignore-patterns",
  "--parallel-delay",
  "--shard",
  "--timings",
]);

interface Counts {
  pass: number;
  skip: number;
  todo: number;
  fail: number;
}

interface PassResult {
  name: string;
  code: number;
  /** Null when bun printed no summary (it crashed or was killed). */
  counts: Counts | null;
}

/** Splits the arguments into flags (with their values) and file filters. */
function splitArgs(args: string[]): { flags: string[]; filters: string[] } {
  const flags: string[] = [];
  const filters: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith("-")) filters.push(arg);
    else {
      flags.push(arg);
      if (FLAGS_WITH_VALUE.has(arg) && i + 1 < args.length) flags.push(args[++i] as string);
    }
  }
  return { flags, filters };
}

/** The PostgreSQL pass's files, narrowed to those a filter names (as bun matches: a path or a part of one). */
function postgresFiles(filters: string[]): string[] {
  const files = [...new Bun.Glob("test/**/*.test.ts").scanSync({ cwd: ROOT })]
    .map((file) => file.split("\\").join("/"))
    .filter((file) => POSTGRES_TESTS.some((entry) => file === entry || file.startsWith(entry)))
    .filter((file) => !readFileSync(resolve(ROOT, file), "utf8").includes("skipWithoutPostgres("))
    .sort();
  if (filters.length === 0) return files;
  return files.filter((file) =>
    filters.some((filter) => {
      const asPath = relative(ROOT, resolve(filter)).split("\\").join("/");
      return file.includes(filter.replace(/^\.\//, "")) || file === asPath || file.startsWith(`${asPath}/`);
    }),
  );
}

/** The last summary bun printed: its " N pass" … " N fail" lines. */
function parseCounts(output: string): Counts | null {
  const counts: Partial<Counts> = {};
  for (const line of stripVTControlCharacters(output).split("\n")) {
    const match = /^\s*(\d+) (pass|skip|todo|fail)$/.exec(line.trimEnd());
    if (match) counts[match[2] as keyof Counts] = Number(match[1]);
  }
  if (counts.pass === undefined && counts.fail === undefined) return null;
  return { pass: counts.pass ?? 0, skip: counts.skip ?? 0, todo: counts.todo ?? 0, fail: counts.fail ?? 0 };
}

/** Copies a child's stream to ours as it comes, and keeps the text. */
async function tee(stream: ReadableStream<Uint8Array>, to: NodeJS.WriteStream): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    to.write(chunk);
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

async function runPass(name: string, driver: "sqlite" | "postgres", args: string[]): Promise<PassResult> {
  const shown = args.map((arg) => (/[\s"'$]/.test(arg) ? JSON.stringify(arg) : arg));
  console.log(`== ${name}: bun test ${shown.join(" ")}`.trimEnd());
  const proc = Bun.spawn([process.execPath, "test", ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      HOOKD_TEST_DRIVER: driver,
      // Piped output loses bun's colours; keep them when a person is watching.
      ...(process.stdout.isTTY && !process.env.NO_COLOR ? { FORCE_COLOR: "1" } : {}),
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    tee(proc.stdout, process.stdout),
    tee(proc.stderr, process.stderr),
    proc.exited,
  ]);
  const counts = parseCounts(`${out}\n${err}`);
  if (counts === null) console.log(`!! ${name}: bun test printed no summary (exit ${code})`);
  return { name, code, counts };
}

const { flags, filters } = splitArgs(process.argv.slice(2));
const results: PassResult[] = [await runPass("sqlite", "sqlite", [...flags, ...filters])];

if (!process.env.HOOKD_TEST_POSTGRES_URL) {
  console.log("postgres: skipped (set HOOKD_TEST_POSTGRES_URL to run the PostgreSQL pass)");
} else {
  const files = postgresFiles(filters);
  if (files.length === 0) console.log("postgres: skipped (no file of the filter runs hookd)");
  else results.push(await runPass("postgres", "postgres", [...flags, ...files.map((file) => `./${file}`)]));
}

const total: Counts = { pass: 0, skip: 0, todo: 0, fail: 0 };
for (const { counts } of results) {
  for (const key of Object.keys(total) as (keyof Counts)[]) total[key] += counts?.[key] ?? 0;
}
const failed = results.filter((result) => result.code !== 0 || result.counts === null);
console.log("");
console.log(
  `== all passes: ${results
    .map(({ name, counts }) =>
      counts ? `${name} ${counts.pass} pass, ${counts.fail} fail` : `${name}: no summary`,
    )
    .join("; ")}`,
);
console.log(` ${total.pass} pass`);
if (total.skip > 0) console.log(` ${total.skip} skip`);
if (total.todo > 0) console.log(` ${total.todo} todo`);
console.log(` ${total.fail} fail`);
if (failed.length > 0) {
  console.log(`!! failed: ${failed.map((result) => `${result.name} (exit ${result.code})`).join(", ")}`);
  process.exit(1);
}
