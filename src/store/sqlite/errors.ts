// Turns SQLite's "cannot write now" failures into StorageUnavailableError (503), so a full disk,
// a read-only file or a lock held too long never looks like a bug (500).
import { StorageUnavailableError } from "../../domain/errors.ts";

const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|READONLY|FULL|IOERR|CANTOPEN|PROTOCOL|NOMEM)/;

export function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && UNAVAILABLE.test(code);
}

/** Another connection holds the lock: worth trying again shortly. */
export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^SQLITE_(BUSY|LOCKED)/.test(code);
}

/** Runs `fn`, translating unavailability errors. */
export function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (isUnavailable(error)) {
      throw new StorageUnavailableError(`database unavailable: ${(error as { code: string }).code}`, {
        cause: error,
      });
    }
    throw error;
  }
}
