// Whole trees in and out of a bucket, as `aws s3 cp --recursive` moves them both ways:
// `put BUCKET[/PREFIX] DIR --recursive` gives each file under DIR its own ball keyed
// PREFIX/<path relative to DIR>, and `get BUCKET[/PREFIX] --recursive -o DIR` writes every ball
// under PREFIX to DIR/<key with PREFIX stripped>. At most limits.treeTransfersInFlightMax
// files move at once; each file a get writes is verified, then renamed into place.
//
// What put --recursive takes, the rule of rsync and aws-cli:
// - regular files;
// - a symbolic link to a file: the file it leads to, under the link's own name;
// - a symbolic link to a directory: skipped, unless --follow-symlinks, which walks into it, but
//   never into a directory it is already inside of (a loop);
// - a dangling symbolic link, a FIFO, socket or device: skipped;
// - an empty directory: a folder marker, a zero-byte ball keyed "its/path/", which get
//   --recursive turns into a directory again, so a tree comes back whole.
// Each skip is a line on stderr, and a count by kind ends the command; a skip follows the rule,
// so it is not a failure (exit 0). A file or directory that cannot be read or stored fails
// (exit 1, after the rest went in).
import { dataDirError } from "../lib/data-dir.ts";
import { lstatSync, mkdirSync, readdirSync, readlinkSync, realpathSync, statSync, type Dirent, type Stats, accessSync, constants } from "node:fs";
import { join } from "node:path";
import type { Client, PutOptions, PutResult } from "../client/client.ts";
import { mapBounded, type Outcome } from "../client/bounded.ts";
import type { BallMetaWire } from "../protocol/ball.ts";
import { BadRequestError, MictlanxError, NotFoundError, UsageError, toMictlanxError } from "../lib/errors.ts";
import { fileKind, statOrUndefined } from "../lib/file-info.ts";
import { limits } from "../lib/limits.ts";
import { newNameProblem, printable, terminalJson } from "../lib/names.ts";
import { formatBytes } from "../lib/size.ts";
import { directoryForKey, fileForKey, shown } from "./ball-path.ts";
import { beforeQuietExit, outputClosed } from "./pipes.ts";

// --- put --recursive ---------------------------------------------------------------------------

/** What the walk of a directory hands on: a file to put, an empty directory, or one it could not read. */
export type TreeEntry = { kind: "file"; path: string; rel: string } | { kind: "folder"; rel: string } | { kind: "unreadable"; path: string; rel: string; message: string };

/** Why the walk left something out; counted by kind at the end. */
export type SkipKind = "symbolic link to a directory" | "dangling symbolic link" | "symbolic link loop" | "not a regular file";

export type OnSkip = (path: string, kind: SkipKind, why: string) => void;

/**
 * Every entry under `root` in name order (byte order of the names, so the same tree always
 * walks the same way), by the rule at the top of this file. Lazy: a tree of any size is walked
 * as its files are put.
 */
export function* walkTree(root: string, options: { followSymlinks: boolean }, onSkip: OnSkip): Generator<TreeEntry> {
  const inside = new Set([directoryId(statSync(root))]);
  yield* walkDirectory(root, "", inside, options, onSkip);
}

function* walkDirectory(dir: string, rel: string, inside: Set<string>, options: { followSymlinks: boolean }, onSkip: OnSkip): Generator<TreeEntry> {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    yield { kind: "unreadable", path: dir, rel, message: `cannot read the directory ${dir}: ${toMictlanxError(error).message}` };
    return;
  }
  if (entries.length === 0 && rel !== "") yield { kind: "folder", rel };
  for (const entry of entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))) {
    const path = join(dir, entry.name);
    const entryRel = rel === "" ? entry.name : `${rel}/${entry.name}`;
    if (entry.isFile()) yield { kind: "file", path, rel: entryRel };
    else if (entry.isSymbolicLink()) yield* throughLink(path, entryRel, inside, options, onSkip);
    else yield* notFileNorLink(path, entryRel, inside, options, onSkip);
  }
}

/** A directory (walked into), or a FIFO, socket or device (skipped); one that vanished meanwhile is said. */
function* notFileNorLink(path: string, rel: string, inside: Set<string>, options: { followSymlinks: boolean }, onSkip: OnSkip): Generator<TreeEntry> {
  let info: Stats;
  try {
    info = lstatSync(path);
  } catch (error) {
    yield { kind: "unreadable", path, rel, message: `cannot look at ${path}: ${toMictlanxError(error).message}` };
    return;
  }
  if (info.isDirectory()) yield* intoDirectory(path, rel, info, inside, options, onSkip);
  else onSkip(path, "not a regular file", `${fileKind(info)}; only regular files are put`);
}

function* intoDirectory(path: string, rel: string, info: Stats, inside: Set<string>, options: { followSymlinks: boolean }, onSkip: OnSkip): Generator<TreeEntry> {
  const id = directoryId(info);
  inside.add(id);
  try {
    yield* walkDirectory(path, rel, inside, options, onSkip);
  } finally {
    inside.delete(id);
  }
}

function* throughLink(path: string, rel: string, inside: Set<string>, options: { followSymlinks: boolean }, onSkip: OnSkip): Generator<TreeEntry> {
  const target = linkTarget(path);
  let info: Stats;
  try {
    info = statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") onSkip(path, "dangling symbolic link", `a symbolic link to ${target}, which does not exist`);
    else if (code === "ELOOP") onSkip(path, "symbolic link loop", `a symbolic link to ${target} that leads back to itself`);
    else yield { kind: "unreadable", path, rel, message: `cannot follow the symbolic link ${path}: ${toMictlanxError(error).message}` };
    return;
  }
  if (info.isFile()) yield { kind: "file", path, rel };
  else if (!info.isDirectory()) onSkip(path, "not a regular file", `a symbolic link to ${fileKind(info)}; only regular files are put`);
  else if (!options.followSymlinks) onSkip(path, "symbolic link to a directory", `a symbolic link to the directory ${target}; add --follow-symlinks to put what is under it`);
  else if (inside.has(directoryId(info))) onSkip(path, "symbolic link loop", `a symbolic link to ${realpathSync(path)}, a directory it is inside of`);
  else yield* intoDirectory(path, rel, info, inside, options, onSkip);
}

function linkTarget(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return "(unreadable)";
  }
}

/** A directory by device and inode: the same directory however it was reached. */
function directoryId(info: Stats): string {
  return `${info.dev}:${info.ino}`;
}

const plurals: Record<SkipKind, string> = {
  "symbolic link to a directory": "symbolic links to directories",
  "dangling symbolic link": "dangling symbolic links",
  "symbolic link loop": "symbolic link loops",
  "not a regular file": "not regular files",
};

/** Skips said as they happen, on stderr, and counted by kind. */
export class SkipReport {
  private readonly counts = new Map<SkipKind, number>();

  readonly note: OnSkip = (path, kind, why) => {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    process.stderr.write(`mictlanx: skipped ${printable(path)}: ${printable(why)}\n`);
  };

  get total(): number {
    let total = 0;
    for (const count of this.counts.values()) total += count;
    return total;
  }

  /** "skipped 3: 2 symbolic links to directories (add --follow-symlinks …), 1 dangling symbolic link". */
  summary(): string | undefined {
    if (this.total === 0) return undefined;
    // In a fixed order, whatever the walk met first.
    const counted = (Object.keys(plurals) as SkipKind[]).flatMap((kind) => (this.counts.has(kind) ? [[kind, this.counts.get(kind) ?? 0] as const] : []));
    const parts = counted.map(([kind, count]) => `${count} ${count === 1 ? kind : plural(kind)}${kind === "symbolic link to a directory" ? " (add --follow-symlinks to put what is under them)" : ""}`);
    return `skipped ${this.total}: ${parts.join(", ")}`;
  }
}

function plural(kind: SkipKind): string {
  return plurals[kind];
}

/** --recursive: every entry `walkTree` finds under `dir`, keyed `prefix` + its relative path; a few at a time. */
export async function putTree(client: Client, target: { bucket: string; prefix: string }, dir: string, options: PutOptions, flags: { json?: boolean; followSymlinks?: boolean }): Promise<void> {
  if (dir === "-" || !statOrUndefined(dir, { follow: true })?.isDirectory()) throw new UsageError("--recursive needs a directory");
  const { bucket, prefix } = target;
  const skips = new SkipReport();
  function* items() {
    let order = 0;
    for (const entry of walkTree(dir, { followSymlinks: flags.followSymlinks === true }, skips.note)) {
      if (options.signal?.aborted) return; // interrupted: no more files are started
      yield { bucket, key: prefix + entry.rel + (entry.kind === "folder" ? "/" : ""), entry, order: order++ };
    }
  }
  // Lines come out in the tree's order as soon as every file before them is done.
  const lines = new Map<number, string>();
  let printed = 0;
  const outcomes = await mapBounded(items(), limits.treeTransfersInFlightMax, async (item): Promise<PutResult> => {
    try {
      const result = await putEntry(client, item.bucket, item.key, item.entry, options);
      lines.set(item.order, `put ${shown(bucket, result.key)}: ${item.entry.kind === "folder" ? "folder" : formatBytes(result.size)}\n`);
      return result;
    } catch (error) {
      lines.set(item.order, "");
      throw error;
    } finally {
      for (let line = lines.get(printed); line !== undefined; line = lines.get(printed)) {
        if (!flags.json) process.stdout.write(line);
        lines.delete(printed);
        printed += 1;
      }
    }
  });
  const failed = outcomes.filter((outcome) => !outcome.ok);
  if (flags.json) process.stdout.write(`${terminalJson(outcomes.map((outcome) => (outcome.ok ? outcome.value : { bucket, key: outcome.key, error: { code: outcome.error.code, message: outcome.error.message } })))}\n`);
  else for (const outcome of failed) if (!outcome.ok) process.stderr.write(`mictlanx: put ${shown(bucket, outcome.key)} failed: ${printable(outcome.error.message)}\n`);
  const skipped = skips.summary();
  if (skipped !== undefined) process.stderr.write(`mictlanx: ${skipped}\n`);
  if (failed.length > 0) throw new MictlanxError("unavailable", `${failed.length} of ${outcomes.length} file(s) were not stored; run the same command again to retry`);
}

async function putEntry(client: Client, bucket: string, key: string, entry: TreeEntry, options: PutOptions): Promise<PutResult> {
  if (entry.kind === "unreadable") throw new MictlanxError("unavailable", entry.message);
  // A file name may hold what a key may not (a newline, an ESC): that file fails, the rest go on.
  const problem = newNameProblem("key", key);
  if (problem !== undefined) throw new BadRequestError(`not stored: its ${problem}`);
  return client.put(bucket, key, entry.kind === "file" ? entry.path : new Uint8Array(0), options);
}

// --- get --recursive (and get --ball-id) ----------------------------------------------------

/** A key that is not written (it would land outside -o DIR, or over a directory or device). */
export class SkippedKey extends BadRequestError {}

/** What one ball became on disk. */
export type Written = { kind: "file" | "folder"; bytes: number };

/** -o DIR for many balls: made when missing; its real path, under which every key must land. */
export function directoryFor(dir: string, what: string): string {
  try {
    const info = statOrUndefined(dir, { follow: true });
    if (info !== undefined && !info.isDirectory()) throw new UsageError(`-o ${dir} is not a directory; ${what} writes its balls into one`);
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return realpathSync(dir);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw dataDirError("-o", dir, error); // what is in the way, and what to do, not a raw EACCES / ENOTDIR
  }
}

/**
 * Write `balls` into `dir` (its real path `root`), ball `key` to `root/<pathOf(key)>`, at most
 * limits.treeTransfersInFlightMax at once, a line on stdout for each file. A zero-byte ball
 * whose key ends in "/" becomes a directory. Ctrl-C, or stdout's reader going away, stops
 * them all and removes their partial files.
 */
export async function writeBalls(client: Client, bucket: string, balls: AsyncIterable<BallMetaWire> | Iterable<BallMetaWire>, place: { dir: string; root: string; pathOf: (key: string) => string }): Promise<Outcome<Written>[]> {
  const stop = new AbortController();
  const onSigint = () => stop.abort(new MictlanxError("unavailable", `interrupted; the files being written were removed, those done are in ${place.dir}`));
  process.once("SIGINT", onSigint);
  let settled: Promise<unknown> = Promise.resolve();
  const forget = beforeQuietExit(async () => {
    stop.abort(new MictlanxError("unavailable", "the reader of stdout went away"));
    await settled;
  });
  try {
    const outcomes = mapBounded(until(balls, stop.signal), limits.treeTransfersInFlightMax, (ball) => writeBall(client, bucket, ball, place, stop.signal));
    settled = outcomes;
    const done = await outcomes;
    stop.signal.throwIfAborted();
    return done;
  } finally {
    forget();
    process.off("SIGINT", onSigint);
  }
}

/** The balls until `signal` aborts: after Ctrl-C no more of a listing is even read. */
async function* until(balls: AsyncIterable<BallMetaWire> | Iterable<BallMetaWire>, signal: AbortSignal): AsyncGenerator<BallMetaWire> {
  for await (const ball of balls) {
    if (signal.aborted) return;
    yield ball;
  }
}

async function writeBall(client: Client, bucket: string, ball: BallMetaWire, place: { dir: string; root: string; pathOf: (key: string) => string }, signal: AbortSignal): Promise<Written> {
  signal.throwIfAborted(); // after Ctrl-C the rest are not even asked for
  const rel = place.pathOf(ball.key);
  if (ball.key.endsWith("/")) return makeFolder(place.root, rel, ball);
  const at = fileForKey(place.root, rel);
  if ("skip" in at) throw new SkippedKey(`${at.skip}; nothing is written outside ${place.dir}`);
  const written = await client.getToFile(bucket, ball.key, at.path, { exact: true, signal });
  if (!outputClosed.aborted) process.stdout.write(`got ${shown(bucket, ball.key)} → ${printable(join(place.dir, rel))}: ${formatBytes(written.size)}\n`);
  return { kind: "file", bytes: written.size };
}

/** A folder marker: a directory (`rel` ends in "/"; "" is the root itself, there already). */
function makeFolder(root: string, rel: string, ball: BallMetaWire): Written {
  if (ball.size > 0) throw new SkippedKey(`its key ends in "/" but it holds ${ball.size} bytes; only an empty ball stands for a directory`);
  if (rel === "") return { kind: "folder", bytes: 0 };
  const at = directoryForKey(root, rel.slice(0, -1));
  if ("skip" in at) throw new SkippedKey(at.skip);
  mkdirSync(at.path, { recursive: true });
  return { kind: "folder", bytes: 0 };
}

/** One line on stderr per ball skipped or failed; the failed outcomes. */
export function reportUnwritten<T>(bucket: string, outcomes: Outcome<T>[]): Array<Outcome<T> & { ok: false }> {
  const failed = outcomes.filter((outcome): outcome is Outcome<T> & { ok: false } => !outcome.ok);
  if (outputClosed.aborted) return failed;
  for (const outcome of failed) process.stderr.write(`mictlanx: get ${shown(bucket, outcome.key)} ${outcome.error instanceof SkippedKey ? "skipped" : "failed"}: ${printable(outcome.error.message)}\n`);
  return failed;
}

/** `get BUCKET[/PREFIX] --recursive -o DIR`: every ball under the prefix, then a summary line. */
export async function getTree(client: Client, target: { bucket: string; prefix: string }, dir: string): Promise<void> {
  const { bucket, prefix } = target;
  if (dir === "-") throw new UsageError("--recursive needs -o DIR to write the balls into");
  const startedMs = performance.now();
  const pages = client.list(bucket, prefix === "" ? {} : { prefix });
  const first = await pages.next();
  if (first.done) throw new NotFoundError(prefix === "" ? `bucket ${bucket} holds no balls` : `no balls under ${bucket}/${prefix}`);
  async function* balls() {
    yield* first.value as BallMetaWire[];
    for await (const page of pages) yield* page;
  }
  const root = directoryFor(dir, "--recursive");
  const outcomes = await writeBalls(client, bucket, balls(), { dir, root, pathOf: (key) => key.slice(prefix.length) });
  const failed = reportUnwritten(bucket, outcomes);
  if (outputClosed.aborted) return;
  const skipped = failed.filter((outcome) => outcome.error instanceof SkippedKey).length;
  process.stdout.write(`${treeSummary(outcomes, skipped, failed.length - skipped, performance.now() - startedMs)}\n`);
  if (failed.length > 0) throw new MictlanxError("unavailable", `${failed.length} of ${outcomes.length} ball(s) under ${bucket}/${prefix} were not written${skipped > 0 ? ` (${skipped} skipped)` : ""}`);
}

/** "got 312 file(s) and 2 folder(s), 1.2 MiB in 0.8 s (390 files/s, 1.5 MiB/s); skipped 0, failed 0". */
function treeSummary(outcomes: Outcome<Written>[], skipped: number, failed: number, elapsedMs: number): string {
  let files = 0;
  let folders = 0;
  let bytes = 0;
  for (const outcome of outcomes) {
    if (!outcome.ok) continue;
    if (outcome.value.kind === "file") files += 1;
    else folders += 1;
    bytes += outcome.value.bytes;
  }
  const seconds = Math.max(0.001, elapsedMs / 1000);
  return `got ${files} file(s) and ${folders} folder(s), ${formatBytes(bytes)} in ${seconds.toFixed(1)} s (${Math.round(files / seconds)} files/s, ${formatBytes(bytes / seconds)}/s); skipped ${skipped}, failed ${failed}`;
}
