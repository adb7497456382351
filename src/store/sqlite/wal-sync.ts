// Durability without blocking the event loop. With synchronous=FULL, SQLite would fsync the
// write-ahead log inside every COMMIT, on the one JavaScript thread: no request is served while
// the disk syncs. Instead the connection commits with synchronous=NORMAL (still crash-consistent)
// and hookd fsyncs the WAL file itself on the I/O thread pool, waiting for that sync before it
// acknowledges a write. fsync flushes the file, whichever descriptor wrote it; concurrent
// requests share syncs (one in flight, at most one queued behind it), so this is group commit.
import { closeSync, fsync, openSync } from "node:fs";
import { dirname } from "node:path";

export interface WalSync {
  /** Resolves once everything committed before the call is on disk. */
  sync(): Promise<void>;
  close(): void;
}

export interface WalSyncOptions {
  /** node:fs `fsync` unless given: tests pass one that records which files are synced, and when. */
  fsync?: (fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => void;
}

export function createWalSync(databasePath: string, options: WalSyncOptions = {}): WalSync {
  const syncFile = options.fsync ?? fsync;
  const fsyncFd = (fd: number) =>
    new Promise<void>((resolve, reject) => syncFile(fd, (error) => (error ? reject(error) : resolve())));
  const fd = openWal(`${databasePath}-wal`);
  // The WAL file's directory entry must survive a power cut too: sync the directory once.
  const dir = openSync(dirname(databasePath), "r");
  // Best effort: a failure here is not fatal (the WAL syncs themselves still report theirs).
  fsyncFd(dir)
    .catch(() => {})
    .finally(() => closeSync(dir));
  let inFlight: Promise<void> | null = null;
  let queued: Promise<void> | null = null;

  const start = (): Promise<void> => {
    inFlight = fsyncFd(fd).finally(() => {
      inFlight = null;
    });
    return inFlight;
  };

  return {
    sync() {
      if (!inFlight) return start();
      // The running sync may have begun before this caller's commit: one more after it covers
      // every caller that arrives meanwhile.
      queued ??= inFlight.then(
        () => {
          queued = null;
          return start();
        },
        () => {
          queued = null;
          return start();
        },
      );
      return queued;
    },
    close() {
      closeSync(fd);
    },
  };
}

function openWal(path: string): number {
  try {
    return openSync(path, "r");
  } catch (error) {
    // SQLite creates the file with its first write; an empty one is a valid, empty log.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return openSync(path, "a");
    throw error;
  }
}

/** For synchronous=normal: nothing to wait for. */
export const noWalSync: WalSync = { sync: () => Promise.resolve(), close: () => {} };
