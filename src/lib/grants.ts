// What an access key may do to which buckets. Pure: routers check these on every request, the
// SPM stores them, the CLI builds them from flags.
//
// A key holds grants, each a bucket pattern and the actions it allows there:
//   [{ "bucket": "photos", "allow": ["read", "list"] }, { "bucket": "logs-*", "allow": ["write"] }]
// A pattern is a bucket name (exactly that bucket), a prefix followed by `*` (every bucket whose
// name starts with it: `logs-*` is logs-2024, logs-, …), or `*` alone (every bucket). A `*`
// anywhere but at the end is refused, so a pattern means one thing (a bucket whose name holds
// a `*` is reached by a prefix pattern). A bucket is allowed an action when any grant's pattern
// matches it and allows the action; there is no "deny". `admin` (keys, drain, remove) is a
// flag of the key, not a grant.
import { z } from "zod";
import { UsageError } from "./errors.ts";
import { limits } from "./limits.ts";
import { newNameProblem } from "./names.ts";

/** In the order a key's grants are printed and stored. */
export const actions = ["read", "list", "write", "delete"] as const;
export type Action = (typeof actions)[number];
export type Grant = { bucket: string; allow: Action[] };

/** `--allow` omitted: a key may read and list, nothing more. */
export const defaultAllow: readonly Action[] = ["read", "list"];
/** `--bucket` omitted: every bucket. */
export const everyBucket = "*";

const utf8 = new TextEncoder();

/** Why `pattern` is not a bucket pattern, or undefined when it is one. */
export function bucketPatternProblem(pattern: string): string | undefined {
  if (pattern.length === 0) return "a bucket pattern must not be empty";
  const bytes = utf8.encode(pattern).byteLength;
  if (bytes > limits.grantBucketPatternBytesMax) return `a bucket pattern is at most ${limits.grantBucketPatternBytesMax} bytes; this one is ${bytes}`;
  if (pattern === everyBucket) return undefined;
  const prefix = pattern.endsWith("*") ? pattern.slice(0, -1) : pattern;
  if (prefix.includes("*")) return "a * may only end a bucket pattern";
  return newNameProblem("bucket", prefix);
}

export const actionSchema = z.enum(actions);
export const bucketPatternSchema = z.string().superRefine((pattern, context) => {
  const problem = bucketPatternProblem(pattern);
  if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
});
/** One grant as it travels and is stored. Repeated actions are accepted (and folded by normalizeGrants), an empty list is not. */
export const grantSchema = z.object({
  bucket: bucketPatternSchema,
  allow: z.array(actionSchema).min(1, "a grant must allow at least one action (read, list, write, delete)").max(actions.length * 2),
});
export const grantsSchema = z.array(grantSchema).max(limits.grantsPerKeyMax, `a key holds at most ${limits.grantsPerKeyMax} grants`);

/** Whether `pattern` covers `bucket`. */
export function patternMatches(pattern: string, bucket: string): boolean {
  if (pattern === everyBucket) return true;
  if (pattern.endsWith("*")) return bucket.startsWith(pattern.slice(0, -1));
  return bucket === pattern;
}

/** Whether the grants allow `action` on `bucket`. */
export function grantsAllow(grants: readonly Grant[], bucket: string, action: Action): boolean {
  return grants.some((grant) => grant.allow.includes(action) && patternMatches(grant.bucket, bucket));
}

/**
 * The same grants in one canonical form: one grant per pattern (in the order each pattern
 * first appears; the actions of repeats joined), actions once each, in `actions` order.
 */
export function normalizeGrants(grants: readonly Grant[]): Grant[] {
  const byPattern = new Map<string, Set<Action>>();
  for (const grant of grants) {
    const allowed = byPattern.get(grant.bucket) ?? new Set<Action>();
    for (const action of grant.allow) allowed.add(action);
    byPattern.set(grant.bucket, allowed);
  }
  return [...byPattern].map(([bucket, allowed]) => ({ bucket, allow: actions.filter((action) => allowed.has(action)) }));
}

/**
 * Grants from `key create`'s flags: one per `--bucket` (none: every bucket), each allowing the
 * actions of `--allow` (none: read,list). A bad pattern or an unknown action is a UsageError
 * that names it and says what is allowed.
 */
export function parseGrantFlags(buckets: readonly string[], allow?: string): Grant[] {
  const allowed = allow === undefined ? [...defaultAllow] : parseAllow(allow);
  const patterns = buckets.length === 0 ? [everyBucket] : buckets;
  if (patterns.length > limits.grantsPerKeyMax) throw new UsageError(`a key holds at most ${limits.grantsPerKeyMax} grants; ${patterns.length} --bucket flags given (a prefix such as logs-* covers many buckets)`);
  for (const pattern of patterns) {
    const problem = bucketPatternProblem(pattern);
    if (problem !== undefined) {
      throw new UsageError(`--bucket ${JSON.stringify(pattern)}: ${problem}; give a bucket name (photos), a prefix and * (logs-*), or * for every bucket`);
    }
  }
  return normalizeGrants(patterns.map((bucket) => ({ bucket, allow: allowed })));
}

function parseAllow(text: string): Action[] {
  const words = text.split(",").map((word) => word.trim());
  if (words.every((word) => word.length === 0)) throw new UsageError(`--allow is empty; give some of ${actions.join(",")}`);
  return words.map((word) => {
    const parsed = actionSchema.safeParse(word);
    if (!parsed.success) throw new UsageError(`--allow: "${word}" is not an action; the actions are ${actions.join(", ")} (comma-separated, e.g. --allow read,list,write)`);
    return parsed.data;
  });
}

/** "photos: read,list; logs-*: write", for a person. */
export function describeGrants(grants: readonly Grant[]): string {
  return grants.length === 0 ? "(none)" : grants.map((grant) => `${grant.bucket}: ${grant.allow.join(",")}`).join("; ");
}
