// "bucket/key" as typed on the command line: the bucket is everything before the first slash;
// the key is the rest and may contain slashes.
import { UsageError } from "../lib/errors.ts";

export function parseBallPath(text: string): { bucket: string; key: string } {
  const slash = text.indexOf("/");
  if (slash <= 0 || slash === text.length - 1) {
    throw new UsageError(`"${text}" is not bucket/key; write e.g. photos/2024/cat.jpg`);
  }
  return { bucket: text.slice(0, slash), key: text.slice(slash + 1) };
}

/** "bucket" or "bucket/prefix" (ls). */
export function parseBucketPrefix(text: string): { bucket: string; prefix?: string } {
  const slash = text.indexOf("/");
  if (slash === 0) throw new UsageError(`"${text}" has no bucket; write bucket or bucket/prefix`);
  if (slash < 0) return { bucket: text };
  const prefix = text.slice(slash + 1);
  return prefix.length > 0 ? { bucket: text.slice(0, slash), prefix } : { bucket: text.slice(0, slash) };
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
