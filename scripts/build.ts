// Compiles dist/mictlanx, the single executable. Ink imports `react-devtools-core` lazily (only
// under DEV); the bundler cannot resolve it and `--external` yields a binary that crashes at
// start-up, so a plugin points it at an empty module instead.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const outfile = join(root, "dist", "mictlanx");
// The build writes one source map per chunk: start from an empty dist so none is stale.
rmSync(join(root, "dist"), { recursive: true, force: true });
mkdirSync(join(root, "dist"), { recursive: true });

const stubDevtools: Bun.BunPlugin = {
  name: "stub-react-devtools-core",
  setup(build) {
    build.onResolve({ filter: /^react-devtools-core$/ }, () => ({ path: join(root, "src/lib/empty-module.ts") }));
  },
};

const started = performance.now();
const result = await Bun.build({
  entrypoints: [join(root, "src/main.ts")],
  compile: { outfile, autoloadDotenv: false, autoloadBunfig: false },
  minify: true,
  // Chunks per lazily imported command (all inside the one executable): the entry evaluates only
  // what a command needs, so "mictlanx --version" starts in ~15 ms instead of ~190 ms.
  splitting: true,
  sourcemap: "linked",
  plugins: [stubDevtools],
  define: { "process.env.DEV": JSON.stringify("false") },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
