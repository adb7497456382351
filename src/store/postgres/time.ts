// The database's clock for leases and due times (SPEC §6). Every due time and lease end the store
// writes is in database time, and every one it answers is turned back into the caller's time, so
// instances whose clocks disagree by minutes still agree on when a lease ends.
//
// At open the store reads the database's clock once. From then on "database now" is either
// - `monotonic` (the daemon on the system clock): that reading plus the process's monotonic time
//   since, re-read at every heartbeat. A step of the wall clock (an NTP step, a VM resumed) moves
//   nothing: the instance still sees another's lease as live. The caller's times are turned into
//   database time by the current difference between the two clocks, so relative times (a retry in
//   5 minutes) stay what they were.
// - `clock`: the clock it is given plus the offset measured at open. Tests that move a manual
//   clock move the store's view of time with it.
import type { Clock } from "../../runtime/clock.ts";
import type { PgClient } from "./client.ts";

export type TimeBase = "monotonic" | "clock";

/** A difference between the clocks below this is jitter, not a step. */
const STEP_MS = 50;

export interface DbTime {
  /** The database's time for a time of the caller's clock. */
  toDb(ms: number): number;
  fromDb(ms: number): number;
  fromDbOrNull(ms: number | null): number | null;
  /** The database's clock minus the caller's, now. */
  offsetMs(): number;
  /** Reads the database's clock again (monotonic base; a no-op on the clock base). */
  resync(client: PgClient): Promise<void>;
}

async function readDbClock(client: PgClient): Promise<{ dbMs: number; mono: number }> {
  const t0 = performance.now();
  const [row] = await client.query<{ ms: number }>(
    "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms",
  );
  const t1 = performance.now();
  // The database read its clock about halfway through the round trip.
  return { dbMs: Number(row?.ms ?? 0), mono: (t0 + t1) / 2 };
}

export async function measureDbTime(client: PgClient, clock: Clock, base: TimeBase): Promise<DbTime> {
  let sample = await readDbClock(client);
  const clockOffset = Math.round(sample.dbMs - (clock.now() + (performance.now() - sample.mono)));
  const dbNow = () => sample.dbMs + (performance.now() - sample.mono);
  // On the monotonic base the offset follows the wall clock only when it moved by more than a
  // little: a step of seconds or minutes is followed at once, the sub-millisecond jitter between
  // the two clocks is not, so a time written and read back is the same.
  let current = clockOffset;
  const offset =
    base === "clock"
      ? () => clockOffset
      : () => {
          const fresh = dbNow() - clock.now();
          if (Math.abs(fresh - current) > STEP_MS) current = Math.round(fresh);
          return current;
        };
  return {
    toDb: (ms) => ms + offset(),
    fromDb: (ms) => ms - offset(),
    fromDbOrNull: (ms) => (ms === null ? null : ms - offset()),
    offsetMs: offset,
    async resync(c) {
      if (base === "monotonic") sample = await readDbClock(c);
    },
  };
}
