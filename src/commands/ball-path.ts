// "bucket/key" as typed on the command line: the bucket is everything before the first slash;
// the key is the rest and may contain slashes. Also: where a key lands in a directory.
import { realpathSync, statSync } from "node:fs";
import { isAbsolute, join, relative, sep } from "node:path";
import { UsageError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { newNameProblem } from "../lib/names.ts";
import { fileKind, statOrUndefined } from "../lib/file-info.ts";

export function parseBallPath(text: string): { bucket: string; key: string } {
  const slash = text.indexOf("/");
  if (slash <= 0 || slash === text.length - 1) {
    throw new UsageError(`"${text}" is not bucket/key; write e.g. photos/2024/cat.jpg`);
  }
  const bucket = text.slice(0, slash);
  const key = text.slice(slash + 1);
  checkLength("bucket name", bucket, limits.bucketNameBytesMax);
  checkLength("key", key, limits.keyBytesMax);
  return { bucket, key };
}

/** "bucket" or "bucket/prefix" (ls). */
export function parseBucketPrefix(text: string): { bucket: string; prefix?: string } {
  const slash = text.indexOf("/");
  if (slash === 0) throw new UsageError(`"${text}" has no bucket; write bucket or bucket/prefix`);
  const bucket = slash < 0 ? text : text.slice(0, slash);
  checkLength("bucket name", bucket, limits.bucketNameBytesMax);
  if (slash < 0) return { bucket };
  const prefix = text.slice(slash + 1);
  checkLength("prefix", prefix, limits.keyBytesMax);
  return prefix.length > 0 ? { bucket, prefix } : { bucket };
}

/**
 * Names past their limit are a usage error here, before anything is sent (the router would
 * answer a zod message about the key and the `fullname` tag made from it, and exit 1).
 */
function checkLength(what: string, text: string, bytesMax: number): void {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > bytesMax) throw new UsageError(`the ${what} is ${bytes} bytes long; a ${what} may be at most ${bytesMax} bytes (UTF-8)`);
}

export function parseTags(pairs: string[] | undefined): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`tag "${pair}" is not k=v`);
    tags[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return tags;
}

/** A put's names, checked before anything is sent: the rule for new names, as a usage error (exit 2). */
export function checkNewNames(names: { bucket: string; key?: string; ballId?: string; tags?: Record<string, string>; contentType?: string }): void {
  const problems = [
    newNameProblem("bucket", names.bucket),
    names.key === undefined ? undefined : newNameProblem("key", names.key),
    names.ballId === undefined ? undefined : newNameProblem("--ball-id", names.ballId),
    names.contentType === undefined ? undefined : newNameProblem("--content-type", names.contentType),
    ...Object.entries(names.tags ?? {}).flatMap(([name, value]) => [newNameProblem("--tag name", name), newNameProblem(`--tag ${name} value`, value)]),
  ];
  const problem = problems.find((each) => each !== undefined);
  if (problem !== undefined) throw new UsageError(problem);
  if (names.ballId !== undefined) checkLength("--ball-id", names.ballId, limits.ballIdBytesMax);
  const tags = Object.entries(names.tags ?? {});
  // The wire counts a tag's characters (UTF-16 code units), not its bytes.
  const long = tags.find(([name, value]) => name.length > limits.tagBytesMax || value.length > limits.tagBytesMax);
  if (long) throw new UsageError(`--tag ${long[0].slice(0, 40)}…: tag names and values may be at most ${limits.tagBytesMax} characters`);
}

/**
 * Where the ball `key` goes when balls are written into the directory `root` (a real path, as
 * realpathSync gives it): `root/key`, or why nothing may be written for it. Keys may hold
 * anything S3 allows, `../` included; the rule is that nothing lands outside `root`:
 * - the key must be a plain relative path: no leading "/", no empty part ("a//b", "a/"), no "."
 *   or ".." part (which would leave `root`, or name the same file as another key);
 * - a directory on the way that is a symbolic link must lead inside `root`;
 * - what is at the end is replaced only when it is a regular file or a symbolic link (the link
 *   itself is replaced, never followed), not a directory, FIFO or device.
 * The path returned has every link on the way resolved, so the write follows none.
 * (This guards against what is in `root`, not against someone changing it meanwhile.)
 */
export function fileForKey(root: string, key: string): { path: string } | { skip: string } {
  if (key.startsWith("/")) return { skip: `its key starts with "/"` };
  const parts = key.split("/");
  const odd = parts.find((part) => part === "" || part === "." || part === "..");
  if (odd !== undefined) return { skip: odd === "" ? `its key has an empty part ("//", or a "/" at the end)` : `its key has a "${odd}" part` };
  let at = root;
  for (const [index, part] of parts.entries()) {
    const next = join(at, part);
    const info = statOrUndefined(next, { follow: false });
    if (info === undefined) return { path: join(next, ...parts.slice(index + 1)) }; // the rest is made fresh
    const last = index === parts.length - 1;
    if (last) return info.isFile() || info.isSymbolicLink() ? { path: next } : { skip: `${next} is ${fileKind(info)}; not replacing it` };
    if (info.isSymbolicLink()) {
      const real = realpathSync(next);
      if (!within(root, real)) return { skip: `${next} is a symbolic link to ${real}, outside ${root}` };
      if (!statSync(real).isDirectory()) return { skip: `${next} leads to ${real}, which is not a directory` };
      at = real;
    } else if (info.isDirectory()) {
      at = next;
    } else {
      return { skip: `${next} is ${fileKind(info)}, not a directory` };
    }
  }
  throw new Error("unreachable: a key has at least one part");
}

function within(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}
