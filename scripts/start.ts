// `npm start`: build dist/mictlanx if it is missing or older than the sources, then run
// `mictlanx up` with any extra arguments (npm start -- --peers 5).
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const binary = join(root, "dist", "mictlanx");

function newestSourceMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSourceMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

if (!existsSync(binary) || statSync(binary).mtimeMs < newestSourceMs(join(root, "src"))) {
  const build = Bun.spawnSync([process.execPath, join(root, "scripts", "build.ts")], { stdout: "inherit", stderr: "inherit" });
  if (build.exitCode !== 0) process.exit(build.exitCode ?? 1);
}
const up = Bun.spawn([binary, "up", ...process.argv.slice(2)], { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => up.kill(signal));
process.exit(await up.exited);
