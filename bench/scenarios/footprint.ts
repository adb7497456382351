// footprint: the size of dist/hookd, start-to-ready (spawn until /readyz answers 200) on a new
// database and on an existing one, and idle RSS one second after ready. The floor is a minimal Bun
// server compiled the same way in this run (Bun.serve answering 200 to everything): the runtime's
// own size, start and memory, which hookd cannot go below.
import { statSync } from "node:fs";
import { join } from "node:path";
import type { Context, Scenario } from "../context.ts";
import { BINARY, type SpawnedServer, spawnServer, startHookd } from "../hookd.ts";
import { row } from "../report.ts";
import { median, sleep } from "../stats.ts";

const MB = 1024 * 1024;

export const footprint: Scenario = {
  name: "footprint",
  needs: [],
  capMs: { quick: 40_000, full: 60_000 },
  async run(ctx) {
    if (!ctx.drivers.includes("sqlite")) {
      ctx.log("skipped: this scenario runs on SQLite, not benched in this run (--driver postgres)");
      return;
    }
    const runs = ctx.quick ? 3 : 5;
    const floorBinary = await compileFloor(ctx);

    const floorStarts: number[] = [];
    let floorRss = Number.NaN;
    for (let i = 0; i < runs; i++) {
      const server = await spawnServer([floorBinary], ctx.tmp, 30_000);
      floorStarts.push(server.startToReadyMs);
      if (i === 0) floorRss = await idleRss(server);
      await server.stop();
    }

    const fresh: number[] = [];
    const restart: number[] = [];
    let rss = Number.NaN;
    for (let i = 0; i < runs; i++) {
      const dir = ctx.newDir("footprint");
      for (const list of [fresh, restart]) {
        const hookd = await startHookd({ dir, synchronous: "full" });
        list.push(hookd.startToReadyMs);
        if (i === 0 && list === restart) rss = await idleRss(hookd);
        await hookd.stop();
      }
    }

    const size = statSync(BINARY).size;
    const floorSize = statSync(floorBinary).size;
    const floorStart = median(floorStarts);
    ctx.rows.push(
      row({
        scenario: "footprint",
        figure: "binary size",
        value: size / MB,
        unit: "MB",
        ceiling: floorSize / MB,
        ceilingOf: "a minimal Bun.serve executable compiled the same way",
      }),
      row({
        scenario: "footprint",
        figure: `start-to-ready, new database (median of ${runs})`,
        value: median(fresh),
        unit: "ms",
        ceiling: floorStart,
        ceilingOf: "the minimal executable's spawn-to-200",
        target: { on: "value", op: "<=", bound: 100 },
      }),
      row({
        scenario: "footprint",
        figure: `start-to-ready, existing database (median of ${runs})`,
        value: median(restart),
        unit: "ms",
        ceiling: floorStart,
        ceilingOf: "the minimal executable's spawn-to-200",
        target: { on: "value", op: "<=", bound: 100 },
      }),
      row({
        scenario: "footprint",
        figure: "idle RSS, 1 s after ready",
        value: rss / MB,
        unit: "MB",
        ceiling: floorRss / MB,
        ceilingOf: "the minimal executable's idle RSS",
      }),
    );
    ctx.details.footprint = {
      binary_bytes: size,
      floor_binary_bytes: floorSize,
      start_new_ms: fresh,
      start_existing_ms: restart,
      floor_start_ms: floorStarts,
      idle_rss: rss,
      floor_idle_rss: floorRss,
    };
  },
};

async function idleRss(server: SpawnedServer): Promise<number> {
  await sleep(1000);
  return server.memory().rss;
}

/** Compiles a minimal Bun.serve program into an executable, with the options scripts/build.ts uses. */
async function compileFloor(ctx: Context): Promise<string> {
  const dir = ctx.newDir("floor");
  const source = join(dir, "floor.ts");
  const outfile = join(dir, "floor");
  await Bun.write(
    source,
    'Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("ok") });\n' +
      'process.on("SIGTERM", () => process.exit(0));\n',
  );
  const result = await Bun.build({
    entrypoints: [source],
    compile: { outfile, autoloadDotenv: false, autoloadBunfig: false },
    minify: true,
    target: "bun",
  });
  if (!result.success) throw new Error(`compiling the floor executable failed: ${result.logs.join("\n")}`);
  return outfile;
}
