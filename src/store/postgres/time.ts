// The database's clock for leases and due times (SPEC §6). At open, the store measures how far the
// database's clock is from the clock it is given; every due time and lease end it writes is in
// database time (the given time plus that offset), and every one it answers is turned back. So
// instances whose clocks disagree by minutes still agree on when a lease ends, and tests that move
// a manual clock move the store's view of time with it.
import type { Clock } from "../../runtime/clock.ts";
import type { PgClient } from "./client.ts";

export interface DbTime {
  /** The database's time at the given time of this process's clock. */
  toDb(ms: number): number;
  fromDb(ms: number): number;
  fromDbOrNull(ms: number | null): number | null;
  readonly offsetMs: number;
}

export async function measureDbTime(client: PgClient, clock: Clock): Promise<DbTime> {
  const before = clock.now();
  const t0 = performance.now();
  const [row] = await client.query<{ ms: number }>(
    "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms",
  );
  const elapsed = performance.now() - t0;
  // The database read its clock about halfway through the round trip.
  const offsetMs = Math.round(Number(row?.ms ?? 0) - (before + elapsed / 2));
  return {
    offsetMs,
    toDb: (ms) => ms + offsetMs,
    fromDb: (ms) => ms - offsetMs,
    fromDbOrNull: (ms) => (ms === null ? null : ms - offsetMs),
  };
}
