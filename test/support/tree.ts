// A seeded directory tree for put/get --recursive: nested directories, files of many sizes
// (a few empty), names with spaces and non-ASCII letters, and empty directories. Used by the
// integration tests (a few hundred files) and bench/tree.ts (50,000).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "./random.ts";

export interface TreeShape {
  files: number;
  /** Directories besides the root, each under a random earlier one (at most `depthMax` deep). */
  dirs: number;
  /** Directories left empty (they come back as folder markers). */
  emptyDirs: number;
  /** File sizes are skewed small: floor(random^4 × bytesMax), so the mean is bytesMax / 5. */
  bytesMax: number;
  depthMax?: number;
}

export interface BuiltTree {
  files: number;
  bytes: number;
  dirs: number;
}

const names = ["src", "docs", "with space", "ñandú", "data", "lib", "x", "日本"];
const extensions = ["txt", "json", "bin", "html", "", "py"];

export function buildTree(root: string, random: () => number, shape: TreeShape): BuiltTree {
  const depthMax = shape.depthMax ?? 6;
  const dirs: Array<{ path: string; depth: number }> = [{ path: root, depth: 0 }];
  mkdirSync(root, { recursive: true });
  for (let i = 0; dirs.length <= shape.dirs && i < shape.dirs * 4; i += 1) {
    const parent = dirs[Math.floor(random() * dirs.length)]!;
    if (parent.depth >= depthMax) continue;
    const path = join(parent.path, `${names[Math.floor(random() * names.length)]}-${dirs.length}`);
    mkdirSync(path);
    dirs.push({ path, depth: parent.depth + 1 });
  }
  let bytes = 0;
  for (let i = 0; i < shape.files; i += 1) {
    const dir = dirs[Math.floor(random() * dirs.length)]!;
    const extension = extensions[i % extensions.length];
    const size = Math.floor(random() ** 4 * shape.bytesMax);
    writeFileSync(join(dir.path, `f${i}${extension ? `.${extension}` : ""}`), randomBytes(random, size));
    bytes += size;
  }
  for (let i = 0; i < shape.emptyDirs; i += 1) mkdirSync(join(dirs[Math.floor(random() * dirs.length)]!.path, `empty-${i}`));
  return { files: shape.files, bytes, dirs: dirs.length - 1 + shape.emptyDirs };
}
