// What is at a path, for code that decides whether to write there.
import { lstatSync, statSync, type Stats } from "node:fs";

/** stat (`follow`) or lstat of `path`; undefined when nothing is there, any other error thrown. */
export function statOrUndefined(path: string, options: { follow: boolean }): Stats | undefined {
  try {
    return options.follow ? statSync(path) : lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** "a directory", "a FIFO", … for messages. */
export function fileKind(info: Stats): string {
  if (info.isFile()) return "a regular file";
  if (info.isDirectory()) return "a directory";
  if (info.isSymbolicLink()) return "a symbolic link";
  if (info.isFIFO()) return "a FIFO";
  if (info.isCharacterDevice()) return "a character device";
  if (info.isBlockDevice()) return "a block device";
  if (info.isSocket()) return "a socket";
  return "not a regular file";
}
