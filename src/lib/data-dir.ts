// A role's --data directory, made ready before anything is started in it: created when missing,
// and proved writable by writing and removing a probe file. What goes wrong is a usage error
// (exit 2) that says what is in the way and what to do, not a raw EACCES / ENOENT / EEXIST.
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { UsageError } from "./errors.ts";

/**
 * The master key sealing the access keys' secrets, beside a sqlite catalog or in the SPM's data
 * dir for PostgreSQL (src/catalog/secrets.ts); every SPM sharing a catalog holds the same one.
 */
export const secretsKeyFile = "secrets.key";

/** Create `dir` if needed and check that this process can write in it; returns its absolute path. */
export function prepareDataDir(dir: string, flag = "--data"): string {
  if (dir.trim().length === 0) throw new UsageError(`${flag} is empty; give a directory (it is created if missing)`);
  const path = resolve(dir);
  try {
    mkdirSync(path, { recursive: true });
    const probe = join(path, `.mictlanx-write-probe-${process.pid}`);
    writeFileSync(probe, "");
    rmSync(probe);
  } catch (error) {
    throw dataDirError(flag, path, error);
  }
  return path;
}

/** An error from creating or writing in a data dir, as what to do about it. */
export function dataDirError(flag: string, path: string, error: unknown): UsageError {
  const code = (error as { code?: string } | null)?.code ?? "";
  const blocker = firstNonDirectory(path);
  if (code === "EEXIST" || code === "ENOTDIR" || blocker !== undefined) {
    const what = blocker ?? path;
    return new UsageError(`${flag} ${path}: ${what} is a file, not a directory; give a directory path (it is created if missing), or move that file away`);
  }
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    const why = code === "EROFS" ? "is on a read-only file system" : "is not writable by this user";
    return new UsageError(`${flag} ${path} ${why} (${code}); give a directory this user can write, e.g. under $HOME, or fix its permissions`);
  }
  if (code === "ENOENT") {
    return new UsageError(`${flag} ${path} cannot be created: ${dirname(path)} does not take new directories (ENOENT; a virtual file system such as /proc?); give a directory on a disk`);
  }
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new UsageError(`${flag} ${path}: no space left on that file system (${code}); free some space or give a directory on another disk`);
  }
  const text = error instanceof Error ? error.message : String(error);
  return new UsageError(`${flag} ${path} cannot be used: ${text}`);
}

/**
 * An error from writing a file the user named (`get -o FILE`, `get --recursive -o DIR`), as what
 * to do about it; errors that are not the file system's (a failed read, a checksum) come back
 * as they are.
 */
export function outputPathError(flag: string, path: string, error: unknown): unknown {
  const code = (error as { code?: string; syscall?: string } | null)?.code ?? "";
  if ((error as { syscall?: string } | null)?.syscall === undefined || !/^E[A-Z]+$/.test(code)) return error;
  const at = resolve(path);
  const blocker = firstNonDirectory(dirname(at));
  if (code === "ENOTDIR" || code === "EEXIST" || blocker !== undefined) {
    return new UsageError(`${flag} ${at}: ${blocker ?? dirname(at)} is a file, not a directory; give a path whose directories are directories (they are created if missing)`);
  }
  if (code === "EISDIR") return new UsageError(`${flag} ${at} is a directory where a file was to be written; give a file path, or remove that directory`);
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    const why = code === "EROFS" ? "is on a read-only file system" : "is not writable by this user";
    return new UsageError(`${flag} ${at}: ${dirname(at)} ${why} (${code}); write somewhere this user can, e.g. under $HOME, or fix its permissions`);
  }
  if (code === "ENOSPC" || code === "EDQUOT") return new UsageError(`${flag} ${at}: no space left on that file system (${code}); free some space or write to another disk`);
  if (code === "ENAMETOOLONG") return new UsageError(`${flag} ${at}: the path is too long for the file system (ENAMETOOLONG); give a shorter one`);
  return error;
}

/** The first existing path on the way to `path` (itself included) that is not a directory. */
function firstNonDirectory(path: string): string | undefined {
  const parts: string[] = [];
  for (let at = path; ; at = dirname(at)) {
    parts.unshift(at);
    if (dirname(at) === at) break;
  }
  for (const at of parts) {
    let info;
    try {
      info = statSync(at);
    } catch {
      return undefined; // nothing there: the rest would have been created
    }
    if (!info.isDirectory()) return at;
  }
  return undefined;
}
