// ceiling: what this machine does with no daemon in the way, in this run. A plain keep-alive POST
// loop from the runner to the same receiver hookd delivers to (node:http with a keep-alive Agent,
// as hookd's client; and Bun's fetch, as the ingest load generator), and raw bun:sqlite commit and
// batch-insert rates for both `synchronous` settings.
import { join } from "node:path";
import type { Context, Scenario } from "../context.ts";
import { closedLoop, deliveryLike, fetchPoster, nodeHttpPoster, type Poster } from "../load.ts";
import { createDatabase, HOOKD_POOL_SIZE, pgBatchInsertRate, pgCommitRate } from "../postgres.ts";
import { row } from "../report.ts";
import { batchInsertRate, commitRate } from "../sqlite-floor.ts";

export const POST_CONCURRENCY = [16, 64, 256] as const;

export const ceiling: Scenario = {
  name: "ceiling",
  needs: [],
  capMs: { quick: 45_000, full: 150_000 },
  postgresCapMs: { quick: 15_000, full: 30_000 },
  async run(ctx) {
    const [port] = await ctx.receiver.addOrigins(1, { kind: "fast" });
    const durationMs = ctx.quick ? 1000 : 4000;
    const warmupMs = ctx.quick ? 250 : 1000;
    const loops: { client: "node" | "fetch"; c: number }[] = [
      ...POST_CONCURRENCY.map((c) => ({ client: "node" as const, c })),
      { client: "fetch", c: 1 },
      ...POST_CONCURRENCY.map((c) => ({ client: "fetch" as const, c })),
    ];
    const measured: ({ client: string; c: number } & PostLoop)[] = [];
    for (const { client, c } of loops) {
      const result = await measurePost(ctx, port as number, client, c, durationMs, warmupMs);
      measured.push({ client, c, ...result });
      ctx.shared.set(`post.${client}.c${c}`, result.rate);
    }
    const best = Math.max(...measured.map((m) => m.rate));
    const bestNode = Math.max(...measured.filter((m) => m.client === "node").map((m) => m.rate));
    ctx.shared.set("post.best", best);
    ctx.shared.set("post.node.best", bestNode);
    for (const m of measured) {
      ctx.rows.push(
        row({
          scenario: "ceiling",
          figure: `POST loop, ${m.client === "node" ? "node:http Agent" : "Bun fetch"}, C=${m.c}`,
          value: m.rate,
          unit: "req/s",
          ceiling: best,
          ceilingOf: "the best POST loop of this run",
        }),
      );
    }

    const sqliteMs = ctx.quick ? 1000 : 3000;
    const sqlite: Record<string, number> = {};
    const withSqlite = ctx.drivers.includes("sqlite");
    for (const sync of withSqlite ? (["normal", "full"] as const) : []) {
      sqlite[`commit.${sync}`] = commitRate(
        join(ctx.newDir(`commit-${sync}`), "c.db"),
        sync,
        ctx.within(sqliteMs),
      );
      sqlite[`batch.${sync}`] = batchInsertRate(
        join(ctx.newDir(`batch-${sync}`), "b.db"),
        sync,
        ctx.within(sqliteMs),
      );
      ctx.shared.set(`sqlite.commit.${sync}`, sqlite[`commit.${sync}`] as number);
      ctx.shared.set(`sqlite.batch.${sync}`, sqlite[`batch.${sync}`] as number);
    }
    for (const kind of withSqlite ? (["commit", "batch"] as const) : []) {
      for (const sync of ["normal", "full"] as const) {
        ctx.rows.push(
          row({
            scenario: "ceiling",
            figure:
              kind === "commit"
                ? `bun:sqlite single-row commits, synchronous=${sync.toUpperCase()}`
                : `bun:sqlite batch insert (500 events + deliveries/tx), ${sync.toUpperCase()}`,
            value: sqlite[`${kind}.${sync}`] as number,
            unit: kind === "commit" ? "tx/s" : "ev/s",
            ceiling: sqlite[`${kind}.normal`] as number,
            ceilingOf: "the same loop under synchronous=NORMAL",
          }),
        );
      }
    }
    const pg = ctx.drivers.includes("postgres") ? await postgresCeilings(ctx, sqliteMs) : null;
    ctx.details.ceiling = { post: measured, sqlite, postgres: pg };
  },
};

/**
 * Raw PostgreSQL on this run's server, in a database of its own: single-row INSERT commits
 * (synchronous_commit as the server has it: on) from 1 connection and from hookd's pool size, and
 * 500 events + their deliveries per transaction into hookd's schema at C=4.
 */
async function postgresCeilings(ctx: Context, ms: number): Promise<Record<string, number>> {
  const db = await createDatabase(ctx.postgresUrl as string, ctx.runId, "ceiling");
  try {
    const out: Record<string, number> = {
      "commit.c1": await pgCommitRate(db.url, 1, ctx.within(ms)),
      [`commit.c${HOOKD_POOL_SIZE}`]: await pgCommitRate(db.url, HOOKD_POOL_SIZE, ctx.within(ms)),
      [`commit.hot.c${HOOKD_POOL_SIZE}`]: await pgCommitRate(db.url, HOOKD_POOL_SIZE, ctx.within(ms), true),
      "batch.c4": await pgBatchInsertRate(db.url, 4, ctx.within(ms)),
    };
    for (const [key, value] of Object.entries(out)) ctx.shared.set(`pg.${key}`, value);
    const best = out[`commit.c${HOOKD_POOL_SIZE}`] as number;
    ctx.rows.push(
      row({
        scenario: "ceiling",
        figure: "PostgreSQL single-row commits, 1 connection, synchronous_commit=on",
        value: out["commit.c1"] as number,
        unit: "tx/s",
        ceiling: best,
        ceilingOf: `the same loop on ${HOOKD_POOL_SIZE} connections`,
      }),
      row({
        scenario: "ceiling",
        figure: `PostgreSQL single-row commits, ${HOOKD_POOL_SIZE} connections (hookd's pool), synchronous_commit=on`,
        value: best,
        unit: "tx/s",
        ceiling: ctx.shared.get("sqlite.commit.full") ?? null,
        ceilingOf: "bun:sqlite single-row commits, FULL (measured just before, when SQLite is benched)",
      }),
      row({
        scenario: "ceiling",
        figure: `PostgreSQL commits that also update one shared row, ${HOOKD_POOL_SIZE} connections`,
        value: out[`commit.hot.c${HOOKD_POOL_SIZE}`] as number,
        unit: "tx/s",
        ceiling: out["commit.c1"] as number,
        ceilingOf: "single-row commits from 1 connection (one commit flush at a time)",
      }),
      row({
        scenario: "ceiling",
        figure: "PostgreSQL batch insert (500 events + deliveries/tx), C=4",
        value: out["batch.c4"] as number,
        unit: "ev/s",
        ceiling: ctx.shared.get("sqlite.batch.full") ?? null,
        ceilingOf: "bun:sqlite batch insert, FULL",
      }),
    );
    return out;
  } finally {
    await db.drop();
  }
}

export interface PostLoop {
  rate: number;
  p99: number;
  duplicates: number;
}

/**
 * One keep-alive POST loop to `port` at concurrency `c`: requests per second answered 2xx. Also
 * used by other scenarios to measure their ceiling right next to their own figure, so a burst of
 * load from elsewhere on the machine hits both alike.
 */
export async function measurePost(
  ctx: Context,
  port: number,
  client: "node" | "fetch",
  c: number,
  durationMs: number,
  warmupMs: number,
): Promise<PostLoop> {
  const base = `http://127.0.0.1:${port}`;
  await ctx.receiver.reset([port]);
  const node = client === "node" ? nodeHttpPoster(base, c) : null;
  const post: Poster = node ?? fetchPoster(base);
  const tag = `${ctx.runId}${client}${c}${Math.floor(performance.now())}`;
  try {
    const result = await closedLoop({
      concurrency: c,
      durationMs: ctx.within(durationMs),
      warmupMs,
      maxOps: 5_000_000,
      send: async (seq) => {
        const { body, headers } = deliveryLike(seq, tag);
        return (await post("/w/0", body, headers)) < 300 ? 1 : 0;
      },
    });
    const stats = await ctx.receiver.stats([port]);
    return { rate: result.unitsPerSecond, p99: result.opLatency.p99, duplicates: stats.duplicates };
  } finally {
    node?.close();
  }
}
