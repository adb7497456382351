// Group commit: writes that arrive while the event loop is busy share one transaction, and their
// promises settle after COMMIT and the WAL sync (afterCommit), so with synchronous=full throughput
// is not one disk sync per request. Each write runs inside its own
// savepoint, so one failing write does not undo the others; every promise settles after COMMIT.
// A database locked by another process is waited for without blocking the event loop: each try
// waits at most the connection's (short) busy_timeout, and the batch is tried again on a timer
// until its oldest write has waited `busyWaitMs`; then those writes fail as unavailable (503). A
// connection whose busy_timeout is 0 asked never to wait, and is not waited for.
import type { Database } from "bun:sqlite";
import { guard, isBusy, isUnavailable } from "./errors.ts";

interface Pending<T> {
  run: () => T;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
  /** performance.now() when the write was queued. */
  since: number;
}

export interface WriteBatcher {
  write<T>(run: () => T): Promise<T>;
}

export interface WriteBatcherOptions {
  maxBatch?: number;
  /** How long a write may wait, in all, for a lock held by another connection. */
  busyWaitMs?: number;
  /** The pause between two tries while the database is locked. */
  busyRetryMs?: number;
  /** Awaited after each COMMIT before the batch's writes resolve (the WAL sync, for durability). */
  afterCommit?: () => Promise<void>;
  /** Told right after each COMMIT, before afterCommit (work is visible to this connection). */
  onCommit?: () => void;
  /** Run inside the transaction after its writes, before COMMIT (what the writes add up to). */
  beforeCommit?: () => void;
  /** Told when a batch's transaction was rolled back (what beforeCommit would have written is void). */
  onRollback?: () => void;
}

export function createWriteBatcher(db: Database, options: WriteBatcherOptions = {}): WriteBatcher {
  const maxBatch = options.maxBatch ?? 1000;
  const busyWaitMs = options.busyWaitMs ?? 5000;
  const busyRetryMs = options.busyRetryMs ?? 100;
  let queue: Pending<unknown>[] = [];
  let scheduled = false;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  const flush = () => {
    scheduled = false;
    const batch = queue.splice(0, maxBatch);
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      guard(() => {
        db.run("BEGIN IMMEDIATE");
        try {
          for (const item of batch) {
            db.run("SAVEPOINT write");
            try {
              outcomes.push({ ok: true, value: item.run() });
              db.run("RELEASE write");
            } catch (error) {
              // A full disk, an I/O error or a lock fails the whole transaction (SQLite may
              // already have rolled it back): none of the batch is committed.
              if (isUnavailable(error) || !db.inTransaction) throw error;
              db.run("ROLLBACK TO write");
              db.run("RELEASE write");
              outcomes.push({ ok: false, error });
            }
          }
          options.beforeCommit?.();
          db.run("COMMIT");
        } catch (error) {
          if (db.inTransaction) db.run("ROLLBACK");
          options.onRollback?.();
          throw error;
        }
      });
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      const now = performance.now();
      const patience = isBusy(cause) && busyTimeout(db) > 0 ? busyWaitMs : 0;
      const waiting = batch.filter((item) => now - item.since < patience);
      for (const item of batch) if (!waiting.includes(item)) item.reject(error);
      if (waiting.length > 0) {
        queue = [...waiting, ...queue];
        retryTimer ??= setTimeout(() => {
          retryTimer = undefined;
          schedule();
        }, busyRetryMs);
      } else if (queue.length > 0) schedule();
      return;
    }
    if (queue.length > 0) schedule();
    options.onCommit?.();
    const settle = () =>
      batch.forEach((item, i) => {
        const outcome = outcomes[i];
        if (outcome?.ok) item.resolve(outcome.value);
        else item.reject(outcome?.error);
      });
    // The next batch may commit while this one's sync runs: the event loop is never held.
    if (options.afterCommit) {
      options.afterCommit().then(settle, (error) => {
        for (const item of batch) item.reject(error);
      });
    } else settle();
  };

  const schedule = () => {
    // While a locked batch waits for its next try, new writes wait with it.
    if (scheduled || retryTimer !== undefined) return;
    scheduled = true;
    setImmediate(flush);
  };

  return {
    write<T>(run: () => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ run, resolve, reject, since: performance.now() } as Pending<unknown>);
        schedule();
      });
    },
  };
}

function busyTimeout(db: Database): number {
  return db.query<{ timeout: number }, []>("PRAGMA busy_timeout").get()?.timeout ?? 0;
}
