// Buckets and bulk deletes from the shell: `mb`, `rb [--force]` and `del BUCKET[/PREFIX]
// --recursive`. A bulk delete runs on the SPM in batches (Client.deletePrefix), not one round
// trip per ball. It asks first on a terminal, showing how many balls would go; without a
// terminal to ask on it runs only with --yes, so a script never deletes by accident.
import { createInterface } from "node:readline/promises";
import type { Client } from "../client/client.ts";
import { ConflictError, MictlanxError, NotFoundError, UsageError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { terminalJson } from "../lib/names.ts";
import { formatBytes } from "../lib/size.ts";
import { checkNewNames, shown } from "./ball-path.ts";

export interface BucketFlags {
  json?: boolean;
}

function print(json: boolean | undefined, value: unknown, human: string): void {
  process.stdout.write(json ? `${terminalJson(value)}\n` : `${human}\n`);
}

/** A bucket alone, as mb and rb take it: no "/" in it. */
export function parseBucket(text: string, command: string): string {
  if (text.length === 0 || text.includes("/")) throw new UsageError(`${command} takes a bucket name alone (no "/"), e.g. mictlanx ${command} photos; got "${text}"`);
  return text;
}

export async function makeBucket(client: Client, text: string, flags: BucketFlags): Promise<void> {
  const bucket = parseBucket(text, "mb");
  checkNewNames({ bucket });
  const made = await client.createBucket(bucket);
  print(flags.json, made, `made bucket ${shown(bucket)}`);
}

export async function removeBucket(client: Client, text: string, flags: BucketFlags & { force?: boolean }): Promise<void> {
  const bucket = parseBucket(text, "rb");
  const startedMs = performance.now();
  let removed: { deleted: number; bytes: number };
  try {
    removed = await client.deleteBucket(bucket, { force: flags.force === true, onProgress: onDeleteProgress(bucket) });
  } catch (error) {
    if (error instanceof MictlanxError && error.code === "conflict") {
      throw new ConflictError(`${error.message}: mictlanx rb ${bucket} --force deletes them with the bucket, or mictlanx del ${bucket} --recursive the balls alone`);
    }
    throw error;
  }
  endProgress();
  const balls = removed.deleted > 0 ? ` and its ${removed.deleted} ball(s), ${formatBytes(removed.bytes)}, in ${seconds(startedMs)} s` : "";
  print(flags.json, { bucket, deleted: removed.deleted, bytes: removed.bytes }, `removed bucket ${shown(bucket)}${balls}`);
}

export interface DelTreeFlags extends BucketFlags {
  yes?: boolean;
}

/**
 * `del BUCKET[/PREFIX] --recursive`: every ball under the prefix ("" or ending in "/"). Exit
 * 4 when there is none; exit 2 without --yes when there is no terminal to ask on.
 */
export async function deleteTree(client: Client, target: { bucket: string; prefix: string }, flags: DelTreeFlags): Promise<void> {
  const { bucket, prefix } = target;
  const where = prefix === "" ? `bucket ${shown(bucket)}` : shown(bucket, prefix);
  if (flags.yes !== true) {
    if (!process.stdin.isTTY) throw new UsageError(`del --recursive deletes every ball in ${where}, and there is no terminal to confirm on; add --yes to delete them`);
    if (!(await confirmed(client, bucket, prefix, where))) {
      process.stderr.write("nothing was deleted\n");
      return;
    }
  }
  const startedMs = performance.now();
  const result = await client.deletePrefix(bucket, prefix === "" ? undefined : prefix, { onProgress: onDeleteProgress(bucket) });
  endProgress();
  if (result.deleted === 0) throw new NotFoundError(`no balls in ${where}`);
  print(flags.json, { bucket, prefix, deleted: result.deleted, bytes: result.bytes }, `deleted ${result.deleted} ball(s), ${formatBytes(result.bytes)}, in ${where} in ${seconds(startedMs)} s`);
}

/** Counts what would go and asks on the terminal; only "y" or "yes" goes on. */
async function confirmed(client: Client, bucket: string, prefix: string, where: string): Promise<boolean> {
  const count = await client.countBalls(bucket, prefix === "" ? undefined : prefix);
  if (count.balls === 0) throw new NotFoundError(`no balls in ${where}`);
  const how = count.more ? `more than ${count.balls.toLocaleString("en-US")}` : count.balls.toLocaleString("en-US");
  const size = count.bytes === undefined ? "" : ` (${formatBytes(count.bytes)})`;
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`delete ${how} ball(s)${size} in ${where}? [y/N] `);
    return /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    prompt.close();
  }
}

/** On a terminal, the running count on stderr (one batch is limits.deleteBatchBallsMax balls). */
function onDeleteProgress(bucket: string): ((deleted: number, bytes: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (deleted, bytes) => {
    if (deleted >= limits.deleteBatchBallsMax) process.stderr.write(`\r\u001b[Kdeleting in ${shown(bucket)}: ${deleted} ball(s), ${formatBytes(bytes)}`);
  };
}

function endProgress(): void {
  if (process.stderr.isTTY) process.stderr.write("\r\u001b[K");
}

function seconds(startedMs: number): string {
  return ((performance.now() - startedMs) / 1000).toFixed(1);
}
