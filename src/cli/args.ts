// Command-line parsing: `hookd [command] [options]`.

export interface Command {
  name:
    | "serve"
    | "config-check"
    | "key-hash"
    | "version"
    | "help"
    | "verify"
    | "storage-copy"
    | "console-link";
  configPath?: string;
  /** `hookd verify`, `hookd storage copy` and `hookd console-link` options, by long name without dashes. */
  options: Record<string, string>;
}

export class UsageError extends Error {}

export const HELP = `hookd — self-hosted webhook delivery

Usage:
  hookd [serve] [--config FILE]      run the daemon (the default command)
  hookd config check [--config FILE] validate a config file; print every problem with its path
  hookd key hash                     read an API key on stdin, print its key_sha256 for the config
  hookd verify [options]             check a delivery's signature, and say why it fails
  hookd storage copy --from FILE --to URL
                                     copy a SQLite hookd's whole state into an empty PostgreSQL database
  hookd console-link [--config FILE] [--tenant T] [--ttl 1h]
                                     print a URL that signs its opener in: the console (admin), or
                                     with --tenant that tenant's portal; stored hashed, revocable
  hookd version                      print the version
  hookd --help                       this text

Options:
  -c, --config FILE   the YAML config (default: $HOOKD_CONFIG, else the embedded defaults)

hookd verify options (the body is read from --body-file, else stdin):
  --secret whsec_...      the webhook's secret (or set WEBHOOK_SECRET)
  --public-key whpk_...   a v1a webhook's public key (or set WEBHOOK_PUBLIC_KEY)
  --id ID                 the webhook-id header
  --timestamp SECONDS     the webhook-timestamp header
  --signature "v1,..."    the webhook-signature header ("v1a,..." for a v1a webhook)
  --body-file FILE        the raw request body
  --tolerance SECONDS     accepted clock difference (default 300)
  --now SECONDS           check as of this unix time (default: now)

hookd storage copy options (stop hookd first; after a failure, run the same command again):
  --from FILE             the SQLite database (storage.sqlite.path); it must exist
  --to postgres://...     an empty PostgreSQL database (it is migrated); its password is never printed

hookd console-link options:
  --tenant T              a portal session for tenant T (default: a console session, every scope)
  --ttl DURATION          how long the link works, 60s to 24h (default 1h)

With no config, hookd listens on 127.0.0.1:8080, keeps its database in ./data/hookd.db, and creates
an admin API key on first start, printed once.`;

const VERIFY_OPTIONS = new Set([
  "secret",
  "public-key",
  "id",
  "timestamp",
  "signature",
  "body-file",
  "tolerance",
  "now",
]);
const STORAGE_COPY_OPTIONS = new Set(["from", "to"]);
const CONSOLE_LINK_OPTIONS = new Set(["tenant", "ttl"]);
/** Which command each option belongs to. */
const OPTION_OWNERS: Record<string, { command: Command["name"]; phrase: string }> = {
  ...Object.fromEntries([...VERIFY_OPTIONS].map((o) => [o, { command: "verify", phrase: "hookd verify" }])),
  ...Object.fromEntries(
    [...STORAGE_COPY_OPTIONS].map((o) => [o, { command: "storage-copy", phrase: "hookd storage copy" }]),
  ),
  ...Object.fromEntries(
    [...CONSOLE_LINK_OPTIONS].map((o) => [o, { command: "console-link", phrase: "hookd console-link" }]),
  ),
};

export function parseArgs(argv: readonly string[]): Command {
  const words: string[] = [];
  const options: Record<string, string> = {};
  let configPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--help" || arg === "-h") return { name: "help", options };
    if (arg === "--version" || arg === "-v") return { name: "version", options };
    const [flag, inline] =
      arg.startsWith("--") && arg.includes("=")
        ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
        : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === "")
        throw new UsageError(
          `${flag} needs a ${flag === "--config" || flag === "-c" ? "file path" : "value"}`,
        );
      return v;
    };
    if (flag === "--config" || flag === "-c") configPath = value();
    else if (flag.startsWith("--") && OPTION_OWNERS[flag.slice(2)]) options[flag.slice(2)] = value();
    else if (flag.startsWith("-")) throw new UsageError(`unknown option ${flag}`);
    else words.push(arg);
  }
  const command = (name: Command["name"]): Command => ({
    name,
    options,
    ...(configPath !== undefined ? { configPath } : {}),
  });
  const phrase = words.join(" ");
  const name = (
    {
      "": "serve",
      serve: "serve",
      "config check": "config-check",
      "key hash": "key-hash",
      version: "version",
      help: "help",
      verify: "verify",
      "storage copy": "storage-copy",
      "console-link": "console-link",
    } as const
  )[phrase];
  if (!name) throw new UsageError(`unknown command '${phrase}'`);
  for (const option of Object.keys(options)) {
    const owner = OPTION_OWNERS[option] as { command: Command["name"]; phrase: string };
    if (owner.command !== name) throw new UsageError(`--${option} belongs to ${owner.phrase}`);
  }
  if (name === "storage-copy") {
    const missing = [...STORAGE_COPY_OPTIONS].filter((option) => options[option] === undefined);
    if (missing.length > 0) {
      throw new UsageError(
        `hookd storage copy needs ${missing.map((m) => `--${m}`).join(" and ")} (--from FILE --to URL)`,
      );
    }
  }
  return command(name);
}
