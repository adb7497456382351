// The process logger: pino, JSON lines. A destination can be passed in (tests capture lines).
import pino, { type DestinationStream, type Logger } from "pino";

export type { Logger };

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "hookd" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Belt and braces: these field names never carry a value into a log line.
      redact: {
        paths: [
          "secret",
          "*.secret",
          "api_key",
          "*.api_key",
          "authorization",
          "*.authorization",
          "*.headers.authorization",
        ],
        censor: "[redacted]",
      },
    },
    destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
