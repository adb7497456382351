// SPEC §2 Errors (`unavailable`, 503) and §5 /readyz under storage faults, against hookd as a child
// process: the database's filesystem full (a small tmpfs), the filesystem turned read-only under the
// running daemon (ext4 on a loop device, errors=remount-ro), and the database locked by another
// process (BEGIN EXCLUSIVE). In each: ingest answers 503 in the API's error shape (never a 500,
// never a hang), /readyz answers 503, /healthz keeps answering at once, nothing accepted before the
// fault is lost, and once the fault clears hookd recovers (by itself for a full disk and a lock).
//
// Mounting needs root: without it the disk tests are skipped with a message; the lock tests always
// run. Everything mounted here is unmounted in `finally`. Every fault here is one of the SQLite file,
// so the PostgreSQL pass (onSqliteOnly) skips every test here.
import { afterEach, expect, test } from "bun:test";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { Server, Subprocess } from "bun";
import { createWebhook, fetchApi, writeChildConfig } from "../support/child-api.ts";
import { onSqliteOnly } from "../support/driver.ts";
import { integrityCheck } from "../support/hookd-db.ts";
import { type HookdProcess, killStarted, serveFromSource } from "../support/hookd-process.ts";
import { tempDir } from "../support/temp.ts";
import { waitFor } from "../support/wait-for.ts";

/** How long ingest waits for a lock held elsewhere before its 503 (src/store/sqlite/write-batch.ts). */
const LOCK_PATIENCE_MS = 5_000;
/** Slack for a loaded machine: bounds catch a hang or a frozen event loop, not a slow machine. */
const MARGIN_MS = 2_000;
/** /healthz and reads never wait for the database's write lock. */
const QUICK_MS = 1_000;
/** Retrying long enough that nothing is exhausted while a fault lasts. */
const RETRY_SCHEDULE = Array(100).fill("300ms");

// ---- the daemon, a receiver that refuses until told otherwise, and bounded calls ----

interface Gate {
  url: string;
  /** Event ids answered with a 2xx. */
  delivered: Set<string>;
  accept(yes: boolean): void;
  close(): Promise<void>;
}

/** A receiver on 127.0.0.1 that answers 503 until `accept(true)`, so deliveries wait as `retrying`. */
function startGate(): Gate {
  let accepting = false;
  const delivered = new Set<string>();
  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      await request.text();
      if (!accepting) return new Response("not yet", { status: 503 });
      delivered.add(request.headers.get("webhook-id") ?? "");
      return new Response("ok");
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/hook`,
    delivered,
    accept: (yes) => {
      accepting = yes;
    },
    close: () => server.stop(true),
  };
}

interface Timed {
  status: number;
  ms: number;
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected freely
  body: any;
  headers: Headers;
}

/** One request, timed; the client gives up well after any bound asserted here. */
async function timed(url: string, method: string, path: string, body?: unknown): Promise<Timed> {
  const started = performance.now();
  const response = await fetchApi(url, method, path, body, 30_000);
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return {
    status: response.status,
    ms: performance.now() - started,
    body: parsed,
    headers: response.headers,
  };
}

const publish = (url: string, n: number, size = 0) =>
  timed(url, "POST", "/v1/events", { type: "order.created", data: { n, pad: "x".repeat(size) } });

/** A 503 in the API's error shape, with Retry-After. */
function expectUnavailable(res: Timed, what: string): void {
  expect({ what, status: res.status, body: res.body }).toEqual({
    what,
    status: 503,
    body: { error: { code: "unavailable", message: expect.any(String) } },
  });
  expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
}

function expectNotReady(res: Timed): void {
  expect(res.status).toBe(503);
  expect(res.body.error.code).toBe("unavailable");
  expect(res.body.checks.database).not.toBe("ok");
}

/** Publishes `n` events one by one; returns the ids that got a 202. */
async function publishAccepted(url: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await publish(url, i);
    expect(res.status).toBe(202);
    ids.push(res.body.id);
  }
  return ids;
}

/** No response was a 500 or an unhandled error in the daemon's own log. */
function expectNoInternalErrors(child: HookdProcess): void {
  const bad = child.lines.filter((line) => line.includes('"status":500') || line.includes("unhandled"));
  expect(bad).toEqual([]);
}

// ---- mounts ----

function run(cmd: string[]): { code: number; out: string } {
  const result = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
  return { code: result.exitCode ?? -1, out: `${result.stdout}${result.stderr}`.trim() };
}

function unmount(dir: string): void {
  if (run(["umount", dir]).code === 0) return;
  // Still busy (a child not yet reaped): detach it now, so the temp dir removal cannot reach into it.
  const lazy = run(["umount", "-l", dir]);
  if (lazy.code !== 0) throw new Error(`cannot unmount ${dir}: ${lazy.out}`);
}

/** Writing a file there fails with EROFS. */
function isReadOnly(dir: string): boolean {
  try {
    writeFileSync(join(dir, "probe"), "");
    rmSync(join(dir, "probe"));
    return false;
  } catch (error) {
    return (error as { code?: string }).code === "EROFS";
  }
}

/** Why mounting is not possible here, or null when it is (probed once, with a tiny tmpfs). */
function probeTmpfs(): string | null {
  const dir = tempDir("hookd-probe-");
  const mounted = run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir]);
  if (mounted.code !== 0) return `mount -t tmpfs is not permitted here (${mounted.out})`;
  unmount(dir);
  return null;
}

function probeExt4(): string | null {
  for (const tool of ["mkfs.ext4", "losetup", "e2fsck", "findmnt"]) {
    if (!Bun.which(tool)) return `${tool} is not installed`;
  }
  if (!existsSync("/dev/loop-control")) return "no loop devices (/dev/loop-control)";
  return null;
}

// The PostgreSQL pass mounts nothing: every test here is skipped there.
const TMPFS_SKIP = onSqliteOnly ? null : probeTmpfs();
const EXT4_SKIP = onSqliteOnly ? null : (TMPFS_SKIP ?? probeExt4());
if (TMPFS_SKIP) console.warn(`storage-faults: skipping the full-disk test: ${TMPFS_SKIP}`);
if (EXT4_SKIP) console.warn(`storage-faults: skipping the read-only test: ${EXT4_SKIP}`);

// ---- cleanup ----

let gate: Gate | undefined;
const lockers = new Set<Subprocess>();
afterEach(async () => {
  await killStarted();
  for (const locker of lockers) {
    locker.kill("SIGKILL");
    await locker.exited;
  }
  lockers.clear();
  await gate?.close();
  gate = undefined;
});

/**
 * A config in `cwd` (off the faulty filesystem, which may lose a file not yet synced) for a database
 * in `dir`.
 */
async function configFor(dir: string, cwd: string): Promise<string> {
  const path = await writeChildConfig(cwd, { retrySchedule: RETRY_SCHEDULE, driver: "sqlite" });
  const text = readFileSync(path, "utf8");
  writeFileSync(path, text.replace(`path: ${join(cwd, "hookd.db")}`, `path: ${join(dir, "hookd.db")}`));
  return path;
}

/** Starts hookd on a database in `dir` with a webhook to the gate; returns its URL. */
async function startDaemon(
  dir: string,
  cwd: string,
): Promise<{ child: HookdProcess; url: string; gate: Gate }> {
  gate ??= startGate();
  const child = serveFromSource(await configFor(dir, cwd), cwd);
  const url = await child.listening();
  await createWebhook(url, gate.url, ["order.created"]);
  return { child, url, gate };
}

/** After the fault: ready again, ingest accepted, and every event accepted so far delivered. */
async function expectRecovered(url: string, rx: Gate, accepted: string[]): Promise<void> {
  await waitFor(async () => (await timed(url, "GET", "/readyz")).status === 200, {
    timeoutMs: 15_000,
    intervalMs: 100,
    what: "/readyz to answer 200 again",
  });
  const after = await publish(url, -1);
  expect(after.status).toBe(202);
  accepted.push(after.body.id);
  rx.accept(true);
  await waitFor(() => accepted.every((id) => rx.delivered.has(id)), {
    timeoutMs: 20_000,
    intervalMs: 50,
    what: `every accepted event to be delivered (${accepted.filter((id) => !rx.delivered.has(id)).length} of ${accepted.length} missing)`,
  });
}

/** How each fault ends: recovered, no internal error, a clean exit on SIGTERM, a sound database. */
async function expectRecoveredAndStops(
  child: HookdProcess,
  url: string,
  rx: Gate,
  accepted: string[],
  dbPath: string,
): Promise<void> {
  await expectRecovered(url, rx, accepted);
  expectNoInternalErrors(child);
  expect(await child.stop("SIGTERM")).toBe(0);
  expect(integrityCheck(dbPath)).toEqual(["ok"]);
}

// ---- the faults ----

test.skipIf(onSqliteOnly || TMPFS_SKIP !== null)(
  "a full disk: 503 (even for a group commit too big for the cache), /readyz 503, recovery once space is freed",
  async () => {
    const dir = join(tempDir("hookd-full-"), "mnt");
    mkdirSync(dir);
    const mounted = run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir]);
    expect(mounted).toEqual({ code: 0, out: "" });
    const filler = join(dir, "filler");
    try {
      const { child, url, gate: rx } = await startDaemon(dir, tempDir());
      const accepted = await publishAccepted(url, 20);

      // Fill what is left, then publish until the write-ahead log needs space it cannot get (a
      // log reset by a checkpoint is rewritten in place, so the first writes may still succeed).
      const fd = openSync(filler, "w");
      try {
        const chunk = Buffer.alloc(64 * 1024, 1);
        for (let i = 0; i < 1024; i++) writeSync(fd, chunk);
        throw new Error("the 8 MiB tmpfs did not fill up");
      } catch (error) {
        if ((error as { code?: string }).code !== "ENOSPC") throw error;
      } finally {
        closeSync(fd);
      }
      let refused: Timed | undefined;
      for (let i = 0; i < 500 && !refused; i++) {
        const res = await publish(url, i, 4096);
        if (res.status === 202) accepted.push(res.body.id);
        else refused = res;
      }
      expect(refused).toBeDefined();
      expectUnavailable(refused as Timed, "the first refused ingest");

      // While full: single, batch, and a group commit of ~4 MiB (more than SQLite's page cache, so
      // pages spill to the log in the middle of the transaction) are all 503.
      const bigPad = "y".repeat(200_000);
      const [single, batch, ...group] = await Promise.all([
        publish(url, 0),
        timed(url, "POST", "/v1/events/batch", {
          events: [1, 2, 3].map((n) => ({ type: "order.created", data: { n } })),
        }),
        ...Array.from({ length: 20 }, (_, n) =>
          timed(url, "POST", "/v1/events", { type: "order.created", data: { n, bigPad } }),
        ),
      ]);
      expectUnavailable(single as Timed, "a single event");
      expectUnavailable(batch as Timed, "a batch");
      for (const [i, res] of group.entries()) expectUnavailable(res, `concurrent event ${i}`);
      for (const res of [single, batch, ...group]) expect(res?.ms).toBeLessThan(MARGIN_MS);
      expectNotReady(await timed(url, "GET", "/readyz"));
      const health = await timed(url, "GET", "/healthz");
      expect([health.status, health.ms < QUICK_MS]).toEqual([200, true]);
      expect((await timed(url, "GET", "/v1/events?limit=1")).status).toBe(200);

      rmSync(filler);
      await expectRecoveredAndStops(child, url, rx, accepted, join(dir, "hookd.db"));
    } finally {
      await killStarted();
      unmount(dir);
    }
  },
  90_000,
);

test.skipIf(onSqliteOnly || EXT4_SKIP !== null)(
  "a filesystem turned read-only under the daemon: 503 and /readyz 503; after remounting, nothing accepted is lost",
  async () => {
    // `mount -o remount,ro` is refused (EBUSY) while hookd holds the database open for writing;
    // a filesystem goes read-only under a running process when the kernel does it after an error
    // (errors=remount-ro), which trigger_fs_error provokes here. Such a filesystem is only writable
    // again after an unmount and a check, so recovery is: stop hookd, fsck, mount, start hookd.
    const base = tempDir("hookd-ro-");
    const image = join(base, "fs.img");
    const dir = join(base, "mnt");
    mkdirSync(dir);
    expect(run(["truncate", "-s", "32M", image]).code).toBe(0);
    expect(run(["mkfs.ext4", "-q", "-F", image]).code).toBe(0);
    const mounted = run(["mount", "-o", "loop,errors=remount-ro", image, dir]);
    expect(mounted).toEqual({ code: 0, out: "" });
    let isMounted = true;
    try {
      const device = run(["findmnt", "-no", "SOURCE", dir]).out.replace(/^\/dev\//, "");
      const trigger = `/sys/fs/ext4/${device}/trigger_fs_error`;
      if (!existsSync(trigger)) {
        console.warn(`storage-faults: skipping the read-only test: no ${trigger} in this kernel`);
        return;
      }
      const cwd = tempDir();
      let { child, url, gate: rx } = await startDaemon(dir, cwd);
      const accepted = await publishAccepted(url, 20);

      await Bun.write(trigger, "hookd storage-faults test\n");
      await waitFor(() => isReadOnly(dir), {
        timeoutMs: 5_000,
        what: "the kernel to remount the filesystem read-only",
      });
      const [single, batch, webhook] = await Promise.all([
        publish(url, 0),
        timed(url, "POST", "/v1/events/batch", { events: [{ type: "order.created", data: {} }] }),
        timed(url, "POST", "/v1/webhooks", { name: "w", url: rx.url, events: ["*"] }),
      ]);
      expectUnavailable(single, "a single event");
      expectUnavailable(batch, "a batch");
      expectUnavailable(webhook, "a webhook");
      for (const res of [single, batch, webhook]) expect(res.ms).toBeLessThan(MARGIN_MS);
      expectNotReady(await timed(url, "GET", "/readyz"));
      const health = await timed(url, "GET", "/healthz");
      expect([health.status, health.ms < QUICK_MS]).toEqual([200, true]);
      expectNoInternalErrors(child);

      // Stopping must not hang on a database it cannot write (the exit code may say it failed).
      child.proc.kill("SIGTERM");
      await child.exited();
      unmount(dir);
      isMounted = false;
      expect([0, 1]).toContain(run(["e2fsck", "-f", "-y", image]).code);

      // Read-only at start: hookd refuses to start, saying why, rather than serving 503s forever.
      expect(run(["mount", "-o", "loop,ro", image, dir])).toEqual({ code: 0, out: "" });
      isMounted = true;
      const refused = serveFromSource(join(cwd, "hookd.yaml"), cwd);
      expect(await refused.exited()).toBe(1);
      expect(refused.stderr()).toContain("cannot start");

      // (A loop device attached read-only stays so: mount it again rather than remount it.)
      unmount(dir);
      isMounted = false;
      expect(run(["mount", "-o", "loop,errors=remount-ro", image, dir])).toEqual({ code: 0, out: "" });
      isMounted = true;
      child = serveFromSource(join(cwd, "hookd.yaml"), cwd);
      url = await child.listening();
      await expectRecoveredAndStops(child, url, rx, accepted, join(dir, "hookd.db"));
    } finally {
      await killStarted();
      if (isMounted) unmount(dir);
    }
  },
  90_000,
);

/** Another process holding the write lock (BEGIN EXCLUSIVE) until it reads a line, or `holdMs`. */
async function lockDatabase(path: string, holdMs = 60_000): Promise<{ release(): Promise<void> }> {
  const locker = Bun.spawn(
    [
      process.execPath,
      "-e",
      `import { Database } from "bun:sqlite";
       const db = new Database(${JSON.stringify(path)});
       db.run("PRAGMA busy_timeout = 10000");
       db.run("BEGIN EXCLUSIVE");
       console.log("locked");
       const reader = Bun.stdin.stream().getReader();
       await Promise.race([reader.read(), Bun.sleep(${holdMs})]);
       db.run("COMMIT");
       db.close();
       process.exit(0);`,
    ],
    { stdin: "pipe", stdout: "pipe", stderr: "pipe" },
  );
  lockers.add(locker);
  const first = await Promise.race([
    locker.stdout.getReader().read(),
    Bun.sleep(10_000).then(() => ({ value: undefined })),
  ]);
  if (!new TextDecoder().decode(first.value).includes("locked"))
    throw new Error(`the locker did not lock: ${await new Response(locker.stderr).text()}`);
  return {
    async release() {
      locker.stdin.write("release\n");
      await locker.stdin.flush();
      await Promise.race([locker.exited, Bun.sleep(10_000)]);
      expect(locker.exitCode).toBe(0);
      lockers.delete(locker);
    },
  };
}

test.skipIf(onSqliteOnly)(
  "a database locked by another process: ingest 503 after its patience, the event loop never frozen, recovery on release",
  async () => {
    const dir = tempDir("hookd-lock-");
    const { child, url, gate: rx } = await startDaemon(dir, dir);
    const accepted = await publishAccepted(url, 20);
    const lock = await lockDatabase(join(dir, "hookd.db"));

    // Ingest waits for the lock (asynchronously), then gives up with a 503. Meanwhile /healthz,
    // /readyz and reads answer at once: a lock held elsewhere must not freeze the whole process.
    const ingest = publish(url, 0);
    const batch = timed(url, "POST", "/v1/events/batch", { events: [{ type: "order.created", data: {} }] });
    await Bun.sleep(500);
    const [health, ready, list] = await Promise.all([
      timed(url, "GET", "/healthz"),
      timed(url, "GET", "/readyz"),
      timed(url, "GET", "/v1/events?limit=5"),
    ]);
    expect({ health: health.status, fast: health.ms < QUICK_MS }).toEqual({ health: 200, fast: true });
    expectNotReady(ready);
    expect(ready.ms).toBeLessThan(QUICK_MS);
    expect({ list: list.status, fast: list.ms < QUICK_MS }).toEqual({ list: 200, fast: true });
    for (const [what, res] of [
      ["a single event", await ingest],
      ["a batch", await batch],
    ] as const) {
      expectUnavailable(res, what);
      expect(res.ms).toBeGreaterThan(LOCK_PATIENCE_MS * 0.8);
      expect(res.ms).toBeLessThan(LOCK_PATIENCE_MS + MARGIN_MS);
    }
    // Other writes do not wait: 503 at once.
    const webhook = await timed(url, "POST", "/v1/webhooks", { name: "w", url: rx.url, events: ["*"] });
    expectUnavailable(webhook, "a webhook");
    expect(webhook.ms).toBeLessThan(QUICK_MS);

    await lock.release();
    await expectRecoveredAndStops(child, url, rx, accepted, join(dir, "hookd.db"));
  },
  60_000,
);

test.skipIf(onSqliteOnly)(
  "a lock shorter than ingest's patience is waited out: 202, not 503",
  async () => {
    const dir = tempDir("hookd-lock-");
    const { child, url, gate: rx } = await startDaemon(dir, dir);
    await lockDatabase(join(dir, "hookd.db"), 1_500);
    const during = await Promise.all([
      publish(url, 1),
      publish(url, 2),
      Bun.sleep(300).then(() => timed(url, "GET", "/healthz")),
    ]);
    expect(during.map((res) => res.status)).toEqual([202, 202, 200]);
    expect(during[2]?.ms).toBeLessThan(QUICK_MS);
    expect(Math.max(...during.map((res) => res.ms))).toBeLessThan(LOCK_PATIENCE_MS + MARGIN_MS);
    await expectRecovered(
      url,
      rx,
      during.slice(0, 2).map((res) => res.body.id as string),
    );
    expectNoInternalErrors(child);
  },
  30_000,
);
