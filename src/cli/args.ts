// Command-line parsing: `hookd [command] [--config FILE]`.

export interface Command {
  name: "serve" | "config-check" | "key-hash" | "version" | "help";
  configPath?: string;
}

export class UsageError extends Error {}

export const HELP = `hookd — self-hosted webhook delivery

Usage:
  hookd [serve] [--config FILE]      run the daemon (the default command)
  hookd config check [--config FILE] validate a config file; print every problem with its path
  hookd key hash                     read an API key on stdin, print its key_sha256 for the config
  hookd version                      print the version
  hookd --help                       this text

Options:
  -c, --config FILE   the YAML config (default: $HOOKD_CONFIG, else the embedded defaults)

With no config, hookd listens on 127.0.0.1:8080, keeps its database in ./data/hookd.db, and creates
an admin API key on first start, printed once.`;

export function parseArgs(argv: readonly string[]): Command {
  const words: string[] = [];
  let configPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--help" || arg === "-h") return { name: "help" };
    if (arg === "--version" || arg === "-v") return { name: "version" };
    if (arg === "--config" || arg === "-c") {
      const value = argv[++i];
      if (value === undefined || value === "") throw new UsageError(`${arg} needs a file path`);
      configPath = value;
    } else if (arg.startsWith("--config=")) {
      configPath = arg.slice("--config=".length);
      if (configPath === "") throw new UsageError("--config needs a file path");
    } else if (arg.startsWith("-")) {
      throw new UsageError(`unknown option ${arg}`);
    } else {
      words.push(arg);
    }
  }
  const with_ = (name: Command["name"]): Command => ({
    name,
    ...(configPath !== undefined ? { configPath } : {}),
  });
  const phrase = words.join(" ");
  switch (phrase) {
    case "":
    case "serve":
      return with_("serve");
    case "config check":
      return with_("config-check");
    case "key hash":
      return with_("key-hash");
    case "version":
      return with_("version");
    case "help":
      return with_("help");
    default:
      throw new UsageError(`unknown command '${phrase}'`);
  }
}
