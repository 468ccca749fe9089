// fileForKey and directoryForKey: where a ball's key lands under a directory, or why it may not (nothing is ever
// written outside the directory named), against a real directory tree with links in it.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { directoryForKey, fileForKey } from "../../src/commands/ball-path.ts";
import { tempDir } from "../support/vss.ts";

const base = realpathSync(tempDir("key-path"));
const root = join(base, "root");
const outside = join(base, "outside");
mkdirSync(join(root, "real", "deeper"), { recursive: true });
mkdirSync(outside);
writeFileSync(join(root, "file.txt"), "x");
writeFileSync(join(outside, "target.txt"), "x");
symlinkSync(join(root, "real"), join(root, "in")); // stays inside
symlinkSync(outside, join(root, "out")); // leads out
symlinkSync(join(root, "in"), join(root, "in-twice")); // a link to a link that stays inside
symlinkSync("../outside", join(root, "relative-out")); // a relative link leading out
symlinkSync(join(root, "file.txt"), join(root, "to-file")); // a link to a file, used as a directory
symlinkSync(join(outside, "target.txt"), join(root, "last")); // the last part: replaced, not followed
Bun.spawnSync(["mkfifo", join(root, "fifo")]);
afterAll(() => rmSync(base, { recursive: true, force: true }));

const skipOf = (key: string) => {
  const place = fileForKey(root, key);
  return "skip" in place ? place.skip : `written to ${place.path}`;
};

describe("fileForKey", () => {
  test("plain keys land at root/key, through links that stay inside", () => {
    expect(fileForKey(root, "a.txt")).toEqual({ path: join(root, "a.txt") });
    expect(fileForKey(root, "new/dirs/b.bin")).toEqual({ path: join(root, "new/dirs/b.bin") });
    expect(fileForKey(root, "file.txt")).toEqual({ path: join(root, "file.txt") });
    expect(fileForKey(root, "real/deeper/c")).toEqual({ path: join(root, "real/deeper/c") });
    expect(fileForKey(root, "in/deeper/c")).toEqual({ path: join(root, "real/deeper/c") }); // resolved: the write follows no link
    expect(fileForKey(root, "in-twice/new/d")).toEqual({ path: join(root, "real/new/d") });
    expect(fileForKey(root, "last")).toEqual({ path: join(root, "last") }); // the link itself is replaced
    expect(fileForKey(root, "..hidden/…/日本.txt")).toEqual({ path: join(root, "..hidden/…/日本.txt") }); // dots inside a name are fine
  });

  test("keys that are not plain relative paths are skipped, whatever is on disk", () => {
    expect(skipOf("../x")).toBe('its key has a ".." part');
    expect(skipOf("a/../../x")).toBe('its key has a ".." part');
    expect(skipOf("..")).toBe('its key has a ".." part');
    expect(skipOf(".")).toBe('its key has a "." part');
    expect(skipOf("a/./b")).toBe('its key has a "." part');
    expect(skipOf("/etc/passwd")).toBe('its key starts with "/"');
    expect(skipOf("a//b")).toBe('its key has an empty part ("//", or a "/" at the end)');
    expect(skipOf("folder/")).toBe('its key has an empty part ("//", or a "/" at the end)');
  });

  test("links leading out, files used as directories, and directories or FIFOs at the end are skipped", () => {
    expect(skipOf("out/target.txt")).toBe(`${join(root, "out")} is a symbolic link to ${outside}, outside ${root}`);
    expect(skipOf("relative-out/new.txt")).toBe(`${join(root, "relative-out")} is a symbolic link to ${outside}, outside ${root}`);
    expect(skipOf("to-file/x")).toBe(`${join(root, "to-file")} leads to ${join(root, "file.txt")}, which is not a directory`);
    expect(skipOf("file.txt/x")).toBe(`${join(root, "file.txt")} is a regular file, not a directory`);
    expect(skipOf("real")).toBe(`${join(root, "real")} is a directory; not replacing it`);
    expect(skipOf("in")).toBe(`written to ${join(root, "in")}`); // a link at the end is replaced, even one to a directory
    expect(skipOf("fifo")).toBe(`${join(root, "fifo")} is a FIFO; not replacing it`);
  });
});

describe("directoryForKey (a folder marker, its key given without the trailing slash)", () => {
  const dirOf = (key: string) => {
    const place = directoryForKey(root, key);
    return "skip" in place ? `skipped: ${place.skip}` : place.path;
  };

  test("a new or existing directory, through links that stay inside", () => {
    expect(dirOf("new/empty")).toBe(join(root, "new/empty"));
    expect(dirOf("real")).toBe(join(root, "real"));
    expect(dirOf("real/deeper")).toBe(join(root, "real/deeper"));
    expect(dirOf("in")).toBe(join(root, "real")); // a link to a directory inside: that directory
    expect(dirOf("in/deeper")).toBe(join(root, "real/deeper"));
  });

  test("by the same rule as files: nothing outside root, and nothing but a directory where one must be", () => {
    expect(dirOf("../x")).toBe('skipped: its key has a ".." part');
    expect(dirOf("a//b")).toBe('skipped: its key has an empty part ("//", or a "/" at the end)');
    expect(dirOf("out")).toBe(`skipped: ${join(root, "out")} is a symbolic link to ${outside}, outside ${root}`);
    expect(dirOf("out/x")).toBe(`skipped: ${join(root, "out")} is a symbolic link to ${outside}, outside ${root}`);
    expect(dirOf("file.txt")).toBe(`skipped: ${join(root, "file.txt")} is a regular file, not a directory`);
    expect(dirOf("to-file")).toBe(`skipped: ${join(root, "to-file")} leads to ${join(root, "file.txt")}, which is not a directory`);
    expect(dirOf("fifo")).toBe(`skipped: ${join(root, "fifo")} is a FIFO, not a directory`);
    expect(dirOf("last")).toBe(`skipped: ${join(root, "last")} is a symbolic link to ${outside}/target.txt, outside ${root}`);
  });
});

