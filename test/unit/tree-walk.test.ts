// walkTree: what put --recursive takes from a directory, by the rule in src/commands/tree.ts,
// against a real tree with every kind of entry in it.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { walkTree, type SkipKind, type TreeEntry } from "../../src/commands/tree.ts";
import { tempDir } from "../support/vss.ts";

const root = join(realpathSync(tempDir("tree-walk")), "root");
mkdirSync(join(root, "b", "c"), { recursive: true });
mkdirSync(join(root, "empty"));
writeFileSync(join(root, "a.txt"), "a");
writeFileSync(join(root, "b", "c", "d.txt"), "d");
writeFileSync(join(root, "Z-upper.txt"), "z"); // byte order: "Z" before "a"
symlinkSync(join(root, "a.txt"), join(root, "link-file"));
symlinkSync(join(root, "b"), join(root, "link-dir"));
symlinkSync(join(root, "gone"), join(root, "link-dangling"));
symlinkSync(root, join(root, "b", "c", "link-up")); // back to the root: a loop when followed
symlinkSync(join(root, "self-loop"), join(root, "self-loop")); // a link to itself: ELOOP
Bun.spawnSync(["mkfifo", join(root, "fifo")]);
afterAll(() => rmSync(join(root, ".."), { recursive: true, force: true }));

function walk(followSymlinks: boolean): { entries: string[]; skipped: Array<[string, SkipKind]> } {
  const skipped: Array<[string, SkipKind]> = [];
  const entries = [...walkTree(root, { followSymlinks }, (path, kind) => skipped.push([path.slice(root.length + 1), kind]))].map((entry: TreeEntry) =>
    entry.kind === "folder" ? `${entry.rel}/` : entry.kind === "file" ? entry.rel : `unreadable ${entry.rel}`,
  );
  return { entries, skipped };
}

describe("walkTree", () => {
  test("files and links to files, in byte order; an empty directory as a folder; links to directories, dangling links, loops and FIFOs skipped", () => {
    const { entries, skipped } = walk(false);
    expect(entries).toEqual(["Z-upper.txt", "a.txt", "b/c/d.txt", "empty/", "link-file"]);
    expect(skipped).toEqual([
      ["b/c/link-up", "symbolic link to a directory"],
      ["fifo", "not a regular file"],
      ["link-dangling", "dangling symbolic link"],
      ["link-dir", "symbolic link to a directory"],
      ["self-loop", "symbolic link loop"],
    ]);
  });

  test("--follow-symlinks walks into links to directories, but never into one it is inside of", () => {
    const { entries, skipped } = walk(true);
    expect(entries).toEqual(["Z-upper.txt", "a.txt", "b/c/d.txt", "empty/", "link-dir/c/d.txt", "link-file"]);
    expect(skipped).toEqual([
      ["b/c/link-up", "symbolic link loop"],
      ["fifo", "not a regular file"],
      ["link-dangling", "dangling symbolic link"],
      ["link-dir/c/link-up", "symbolic link loop"],
      ["self-loop", "symbolic link loop"],
    ]);
  });
});
