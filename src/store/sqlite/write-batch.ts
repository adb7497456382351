// Group commit: writes that arrive while the event loop is busy share one transaction, so with
// synchronous=FULL throughput is not one disk sync per request. Each write runs inside its own
// savepoint, so one failing write does not undo the others; every promise settles after COMMIT.
import type { Database } from "bun:sqlite";
import { guard } from "./errors.ts";

interface Pending<T> {
  run: () => T;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

export interface WriteBatcher {
  write<T>(run: () => T): Promise<T>;
}

export function createWriteBatcher(db: Database, options: { maxBatch?: number } = {}): WriteBatcher {
  const maxBatch = options.maxBatch ?? 1000;
  const queue: Pending<unknown>[] = [];
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    const batch = queue.splice(0, maxBatch);
    if (queue.length > 0) schedule();
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
              db.run("ROLLBACK TO write");
              db.run("RELEASE write");
              outcomes.push({ ok: false, error });
            }
          }
          db.run("COMMIT");
        } catch (error) {
          if (db.inTransaction) db.run("ROLLBACK");
          throw error;
        }
      });
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    batch.forEach((item, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok) item.resolve(outcome.value);
      else item.reject(outcome?.error);
    });
  };

  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };

  return {
    write<T>(run: () => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ run, resolve, reject } as Pending<unknown>);
        schedule();
      });
    },
  };
}
