// The hookd executable: argv → config → daemon; signals.
import { HELP, parseArgs, UsageError } from "./cli/args.ts";
import { consoleLink } from "./cli/console-link.ts";
import { storageCopy } from "./cli/storage-copy.ts";
import { ConfigError, loadConfig } from "./config/load.ts";
import { createDaemon, type Daemon } from "./daemon.ts";
import { DatabaseTooNewError, StorageUnavailableError } from "./domain/errors.ts";
import { sha256Hex } from "./domain/secrets.ts";
import { verifySignature } from "./domain/verify.ts";
import { createLogger } from "./runtime/logger.ts";
import { VERSION } from "./version.ts";

async function main(argv: string[]): Promise<number> {
  let command: ReturnType<typeof parseArgs>;
  try {
    command = parseArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`hookd: ${error.message}\n\n${HELP}\n`);
    return 2;
  }

  switch (command.name) {
    case "help":
      process.stdout.write(`${HELP}\n`);
      return 0;
    case "version":
      process.stdout.write(`hookd ${VERSION}\n`);
      return 0;
    case "key-hash": {
      const input = await new Response(Bun.stdin.stream()).text();
      const key = input.replace(/\r?\n$/, "");
      if (key === "") {
        process.stderr.write('hookd: no key on stdin (try: printf %s "$KEY" | hookd key hash)\n');
        return 1;
      }
      process.stdout.write(`${sha256Hex(key)}\n`);
      return 0;
    }
    case "config-check": {
      try {
        const { source } = loadConfig({ path: command.configPath, env: process.env });
        process.stdout.write(`${source}: ok\n`);
        return 0;
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        process.stderr.write(`${error.describe()}\n`);
        return 1;
      }
    }
    case "verify":
      return verify(command.options);
    case "storage-copy":
      return storageCopy({ from: command.options.from as string, to: command.options.to as string });
    case "console-link":
      return consoleLink({
        ...(command.configPath !== undefined ? { configPath: command.configPath } : {}),
        ...(command.options.tenant !== undefined ? { tenant: command.options.tenant } : {}),
        ...(command.options.ttl !== undefined ? { ttl: command.options.ttl } : {}),
      });
    case "serve":
      return serve(command.configPath);
  }
}

async function verify(options: Record<string, string>): Promise<number> {
  const publicKey = options["public-key"] ?? process.env.WEBHOOK_PUBLIC_KEY;
  if (options.secret !== undefined && options["public-key"] !== undefined) {
    process.stderr.write("hookd verify: give --secret (v1) or --public-key (v1a), not both\n");
    return 2;
  }
  // An explicit option wins over the environment; of the two variables, the secret.
  const secret =
    options["public-key"] !== undefined ? undefined : (options.secret ?? process.env.WEBHOOK_SECRET);
  const missing = ["id", "timestamp", "signature"].filter((name) => options[name] === undefined);
  if (!secret && !publicKey) missing.unshift("secret (or --public-key)");
  if (missing.length > 0) {
    process.stderr.write(
      `hookd verify: missing ${missing.map((m) => `--${m}`).join(", ")} (see hookd --help)\n`,
    );
    return 2;
  }
  const body = options["body-file"]
    ? await Bun.file(options["body-file"]).text()
    : await new Response(Bun.stdin.stream()).text();
  const result = verifySignature({
    ...(secret ? { secret } : { publicKey: publicKey as string }),
    id: options.id as string,
    timestamp: options.timestamp as string,
    signature: options.signature as string,
    body,
    now: options.now !== undefined ? Number(options.now) : Math.floor(Date.now() / 1000),
    toleranceSeconds: options.tolerance !== undefined ? Number(options.tolerance) : 300,
  });
  process.stdout.write(`${result.valid ? "valid" : "invalid"}: ${result.reason}\n`);
  return result.valid ? 0 : 1;
}

async function serve(configPath: string | undefined): Promise<number> {
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig({ path: configPath, env: process.env });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.describe()}\n`);
    return 1;
  }
  const logger = createLogger(loaded.config.log.level);
  let daemon: Daemon;
  try {
    daemon = await createDaemon({ config: loaded.config, logger });
    await daemon.start();
  } catch (error) {
    if (error instanceof DatabaseTooNewError) {
      process.stderr.write(`hookd: ${error.message}\n`);
      return 1;
    }
    if (error instanceof StorageUnavailableError) {
      process.stderr.write(`hookd: cannot start: ${error.message}\n`);
      return 1;
    }
    const code = (error as { code?: string }).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code?.startsWith("SQLITE_")) {
      process.stderr.write(`hookd: cannot start: ${(error as Error).message}\n`);
      return 1;
    }
    throw error;
  }
  logger.info({ config: loaded.source }, "configuration loaded");

  return new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        logger.warn({ signal }, "second signal: exiting at once");
        process.exit(130);
      }
      signalled = true;
      logger.info({ signal }, "shutting down");
      daemon.stop().then(
        () => resolve(0),
        (error) => {
          logger.error({ err: error }, "error during shutdown");
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`hookd: fatal: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
