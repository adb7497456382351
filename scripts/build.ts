// Builds the single executable dist/hookd: first the console bundle (web/dist, embedded through its
// generated manifest), then the executable, minified, with a source map, and without the runtime's
// .env / bunfig.toml autoload (the binary reads only its own config).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { buildWeb } from "./build-web.ts";

const root = join(import.meta.dir, "..");
const outfile = join(root, "dist", "hookd");
mkdirSync(join(root, "dist"), { recursive: true });

const web = await buildWeb();
console.log(`built web/dist (${web.files.join(", ")})`);

const result = await Bun.build({
  entrypoints: [join(root, "src", "main.ts")],
  compile: { outfile, autoloadDotenv: false, autoloadBunfig: false },
  minify: true,
  bytecode: true,
  format: "esm",
  sourcemap: "linked",
  target: "bun",
});

if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile}`);
