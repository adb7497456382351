// What every scenario receives: the mode, the receiver, a temp directory, the figures earlier
// scenarios measured (ceilings), a deadline, and where to put rows and raw details.
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import type { Receiver } from "./receiver.ts";
import type { Row } from "./report.ts";

export interface Context {
  quick: boolean;
  /** The storage drivers this run benches (--driver), SQLite first when both. */
  drivers: ("sqlite" | "postgres")[];
  /** The PostgreSQL server (a database is created on it per scenario run), or null. */
  postgresUrl: string | null;
  /** Instance counts for the PostgreSQL rows (--instances; default 1 and 3). */
  pgInstances: number[];
  receiver: Receiver;
  /** This run's temp directory. */
  tmp: string;
  /** Unique per run, used in ids the load generator makes. */
  runId: string;
  /** Figures shared between scenarios (ceilings, baselines), by key. */
  shared: Map<string, number>;
  rows: Row[];
  details: Record<string, unknown>;
  log(line: string): void;
  /** performance.now() at which this scenario's hard cap ends. */
  deadline: number;
  /** `ms`, shortened to what is left of the cap (minus a margin for clean-up). */
  within(ms: number): number;
  /** A fresh directory for one daemon's database and config. */
  newDir(name: string): string;
}

export interface Scenario {
  name: string;
  /** Scenarios whose shared figures this one compares against (run first under --only). */
  needs: string[];
  /** Hard time caps in ms (SQLite alone). */
  capMs: { quick: number; full: number };
  /** Added to the cap when PostgreSQL is benched too. */
  postgresCapMs?: { quick: number; full: number };
  run(ctx: Context): Promise<void>;
}

export function makeContext(base: Omit<Context, "deadline" | "within" | "newDir">, capMs: number): Context {
  const deadline = performance.now() + capMs;
  return {
    ...base,
    deadline,
    within: (ms) => Math.max(0, Math.min(ms, deadline - performance.now() - 3000)),
    newDir: (name) => mkdtempSync(join(base.tmp, `${name}-`)),
  };
}

/** Throws once the scenario's cap is reached, so every loop and poll stays bounded. */
export function checkDeadline(ctx: Context, what: string): void {
  if (performance.now() > ctx.deadline) throw new Error(`time cap reached during ${what}`);
}
