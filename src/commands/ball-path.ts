// "bucket/key" as typed on the command line: the bucket is everything before the first slash;
// the key is the rest and may contain slashes. Also: where a key lands in a directory.
import { realpathSync, statSync, type Stats } from "node:fs";
import { isAbsolute, join, relative, sep } from "node:path";
import { UsageError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { newNameProblem, printable } from "../lib/names.ts";
import { fileKind, statOrUndefined } from "../lib/file-info.ts";

/** "bucket/key" (or a bucket alone) for people: never raw to a terminal (src/lib/names.ts). */
export function shown(bucket: string, key?: string): string {
  return printable(key === undefined ? bucket : `${bucket}/${key}`);
}

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

/**
 * "bucket" or "bucket/prefix" for a whole tree (put, get and del --recursive): the prefix as a
 * directory, ending in "/" ("" for the bucket's root), as `aws s3 cp --recursive` takes it, so
 * `photos/2024` means the keys under "2024/" and not "2024-old/x".
 */
export function parseTreeTarget(text: string): { bucket: string; prefix: string } {
  const { bucket, prefix } = parseBucketPrefix(text);
  if (prefix === undefined) return { bucket, prefix: "" };
  return { bucket, prefix: prefix.endsWith("/") ? prefix : `${prefix}/` };
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
  const end = walkKey(root, key);
  if ("skip" in end || end.info === undefined) return end;
  return end.info.isFile() || end.info.isSymbolicLink() ? { path: end.path } : { skip: `${end.path} is ${fileKind(end.info)}; not replacing it` };
}

/**
 * Where the folder marker `key` (a zero-byte ball whose key ends in "/", given here without
 * that "/") becomes a directory under `root`, by the same rule as fileForKey: a directory may
 * already be there (or a symbolic link to one inside `root`); anything else there is skipped.
 */
export function directoryForKey(root: string, key: string): { path: string } | { skip: string } {
  const end = walkKey(root, key);
  if ("skip" in end || end.info === undefined) return end;
  if (end.info.isDirectory()) return { path: end.path };
  if (end.info.isSymbolicLink()) return throughLink(root, end.path);
  return { skip: `${end.path} is ${fileKind(end.info)}, not a directory` };
}

/**
 * Down `key`'s parts from `root`: what is at its last part (`info` undefined when nothing is,
 * or when a part on the way is missing, so the rest is made fresh), every link on the way
 * resolved; or why the key may not be written at all.
 */
function walkKey(root: string, key: string): { path: string; info?: Stats } | { skip: string } {
  if (key.startsWith("/")) return { skip: `its key starts with "/"` };
  const parts = key.split("/");
  const odd = parts.find((part) => part === "" || part === "." || part === "..");
  if (odd !== undefined) return { skip: odd === "" ? `its key has an empty part ("//", or a "/" at the end)` : `its key has a "${odd}" part` };
  let at = root;
  for (const [index, part] of parts.entries()) {
    const next = join(at, part);
    const info = statOrUndefined(next, { follow: false });
    if (info === undefined) return { path: join(next, ...parts.slice(index + 1)) }; // the rest is made fresh
    if (index === parts.length - 1) return { path: next, info };
    if (info.isSymbolicLink()) {
      const real = throughLink(root, next);
      if ("skip" in real) return real;
      at = real.path;
    } else if (info.isDirectory()) {
      at = next;
    } else {
      return { skip: `${next} is ${fileKind(info)}, not a directory` };
    }
  }
  throw new Error("unreachable: a key has at least one part");
}

/** The directory the link `link` leads to, when it is one inside `root`. */
function throughLink(root: string, link: string): { path: string } | { skip: string } {
  let real: string;
  try {
    real = realpathSync(link);
  } catch (error) {
    return { skip: `${link} is a symbolic link that leads nowhere (${(error as NodeJS.ErrnoException).code ?? "unreadable"})` };
  }
  if (!within(root, real)) return { skip: `${link} is a symbolic link to ${real}, outside ${root}` };
  if (!statSync(real).isDirectory()) return { skip: `${link} leads to ${real}, which is not a directory` };
  return { path: real };
}

function within(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}
