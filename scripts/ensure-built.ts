// dist/mictlanx, built first when it is missing or older than the sources: `npm start` and
// `npm run soak` run what the sources say, not a binary left over from an older checkout.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

export const root = join(import.meta.dir, "..");
export const binary = join(root, "dist", "mictlanx");

function newestSourceMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSourceMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** The path of dist/mictlanx after building it if needed; exits with the build's code if it fails. */
export function ensureBuilt(): string {
  if (!existsSync(binary) || statSync(binary).mtimeMs < newestSourceMs(join(root, "src"))) {
    const build = Bun.spawnSync([process.execPath, join(root, "scripts", "build.ts")], { stdout: "inherit", stderr: "inherit" });
    if (build.exitCode !== 0) process.exit(build.exitCode ?? 1);
  }
  return binary;
}
