// Whole files are written to a temporary name, fsynced, renamed over the old one, and the
// directory fsynced: a crash at any line leaves the old file or the new one, never half of one.
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/**
 * `mode` (e.g. 0o600 for a file holding secrets) is set on the temporary file before a byte is
 * written to it, whatever the umask and whatever a crashed earlier attempt left there.
 */
export function writeFileDurable(path: string, content: string | Uint8Array, options: { mode?: number } = {}): void {
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, "w", options.mode ?? 0o666);
  try {
    if (options.mode !== undefined) fchmodSync(fd, options.mode);
    const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : content;
    for (let written = 0; written < bytes.byteLength; ) written += writeSync(fd, bytes, written);
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
