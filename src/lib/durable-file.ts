// Whole files are written to a temporary name, fsynced, renamed over the old one, and the
// directory fsynced: a crash at any line leaves the old file or the new one, never half of one.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/** `mode` applies from the first byte (a secret is never readable by others, not even half-written). */
export function writeFileDurable(path: string, text: string, mode = 0o644): void {
  const temporary = `${path}.tmp`;
  rmSync(temporary, { force: true }); // a leftover of a crash would keep its own mode
  const fd = openSync(temporary, "w", mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  const dirFd = openSync(dirname(path), "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
