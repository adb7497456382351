// The fault-injecting TCP proxy, proven mode by mode with a real PostgreSQL client (Bun's SQL) so
// that the reliability tests built on it can trust what each mode does to a driver.
import { afterEach, expect, test } from "bun:test";
import { SQL } from "bun";
import { createTcpProxy, type TcpProxy } from "./tcp-proxy.ts";
import { waitFor } from "./wait-for.ts";

const PG_URL = process.env.HOOKD_TEST_POSTGRES_URL;
if (!PG_URL) console.warn("tcp-proxy: skipping: HOOKD_TEST_POSTGRES_URL is not set (no PostgreSQL to proxy)");
const pgTest = test.skipIf(!PG_URL);

// Everything a test opens, closed in afterEach even when the test failed halfway.
let proxy: TcpProxy | undefined;
let clients: SQL[] = [];

afterEach(async () => {
  await Promise.all(clients.map((sql) => sql.close({ timeout: 0 }).catch(() => {})));
  clients = [];
  await proxy?.close();
  proxy = undefined;
});

async function startProxy(): Promise<TcpProxy> {
  const target = new URL(PG_URL!);
  proxy = await createTcpProxy({ target: { host: target.hostname, port: Number(target.port || 5432) } });
  return proxy;
}

function connect(p: TcpProxy): SQL {
  const sql = new SQL({ url: p.url(PG_URL!), max: 1, connectionTimeout: 2 });
  clients.push(sql);
  return sql;
}

/** Settles with "pending" if `promise` has not settled within `ms`: proof of a hang, bounded. */
async function stillPendingAfter(promise: Promise<unknown>, ms: number): Promise<"pending" | "settled"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = new Promise<"pending">((resolve) => {
    timer = setTimeout(() => resolve("pending"), ms);
  });
  const settled = promise.then(
    () => "settled" as const,
    () => "settled" as const,
  );
  try {
    return await Promise.race([settled, pending]);
  } finally {
    clearTimeout(timer);
  }
}

/** Awaits a rejection and returns how long it took from `start`. */
async function rejectionAfter(promise: Promise<unknown>, start: number): Promise<number> {
  await expect(promise).rejects.toThrow();
  return performance.now() - start;
}

pgTest("pass: queries flow through the proxy", async () => {
  const p = await startProxy();
  const sql = connect(p);
  const rows = await sql`select 1 as one`;
  expect(rows[0].one).toBe(1);
  expect(p.connections()).toBe(1);
  const bytes = p.bytes();
  expect(bytes.toServer).toBeGreaterThan(0);
  expect(bytes.toClient).toBeGreaterThan(0);
  expect(bytes.dropped).toBe(0);
  await sql.close({ timeout: 0 });
  await waitFor(() => p.connections() === 0, { timeoutMs: 2_000, what: "the proxy to see the client go" });
});

pgTest("blackhole: a query on an open connection hangs, the connection stays open", async () => {
  const p = await startProxy();
  const sql = connect(p);
  await sql`select 1`;
  await p.mode("blackhole");
  const hung = sql`select 1`.execute();
  hung.catch(() => {}); // it rejects when the client is closed below
  expect(await stillPendingAfter(hung, 300)).toBe("pending");
  expect(p.connections()).toBe(1);
  expect(p.bytes().dropped).toBeGreaterThan(0);
  await sql.close({ timeout: 0 });
  await waitFor(() => p.connections() === 0, { timeoutMs: 2_000, what: "the blackholed client to go" });
});

pgTest("blackhole: a new connection is accepted and then hears nothing", async () => {
  const p = await startProxy();
  await p.mode("blackhole");
  const sql = connect(p);
  const hung = sql`select 1`.execute();
  hung.catch(() => {}); // it rejects at connectionTimeout or when the client is closed below
  await waitFor(() => p.connections() === 1, { timeoutMs: 2_000, what: "the connection to be accepted" });
  expect(await stillPendingAfter(hung, 300)).toBe("pending");
  await sql.close({ timeout: 0 });
  await waitFor(() => p.connections() === 0, { timeoutMs: 2_000, what: "the blackholed client to go" });
});

pgTest("refuse: an open connection is reset, a new client fails fast, pass reopens the port", async () => {
  const p = await startProxy();
  const open = connect(p);
  await open`select 1`;
  await p.mode("refuse");
  expect(p.connections()).toBe(0);
  // Faster than connectionTimeout (2 s): the failures come from the reset and the refusal, not a timer.
  expect(await rejectionAfter(open`select 1`.execute(), performance.now())).toBeLessThan(1_500);
  const fresh = connect(p);
  expect(await rejectionAfter(fresh`select 1`.execute(), performance.now())).toBeLessThan(1_500);

  await p.mode("pass");
  const again = connect(p);
  const rows = await again`select 3 as three`;
  expect(rows[0].three).toBe(3);
});

pgTest("reset: an in-flight query rejects at once, and a fresh client works afterwards", async () => {
  const p = await startProxy();
  const sql = connect(p);
  await sql`select 1`;
  const sent = p.bytes().toServer;
  const sleeping = sql`select pg_sleep(5)`.execute();
  sleeping.catch(() => {}); // awaited below; keeps a failure before then from going unhandled
  await waitFor(() => p.bytes().toServer > sent, { timeoutMs: 2_000, what: "the query to reach the server" });
  const start = performance.now();
  p.reset();
  expect(await rejectionAfter(sleeping, start)).toBeLessThan(1_500);
  expect(p.connections()).toBe(0);

  await p.mode("pass");
  const fresh = connect(p);
  const rows = await fresh`select 2 as two`;
  expect(rows[0].two).toBe(2);
});

test("close() is safe to call twice", async () => {
  const p = await createTcpProxy({ target: { host: "127.0.0.1", port: 1 } });
  await p.close();
  await p.close();
});
