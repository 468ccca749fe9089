// The shell's client commands: put, get, del, ls, stat. Thin: parse flags, call the Client,
// print a line for people or JSON for scripts. Transfers show a progress bar on stderr when it
// is a terminal and the transfer takes more than a second; piped, they print nothing extra.
// Names (buckets, keys, ball ids, tags) are printed through `printable` for people and
// `terminalJson` for scripts (src/lib/names.ts): never raw to a terminal.
import { fstatSync, mkdirSync, readdirSync, realpathSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { Client, type PutItem, type PutOptions, type PutResult } from "../client/client.ts";
import { mapBounded } from "../client/bounded.ts";
import { keyFromFile, keyFromHex } from "../client/seal.ts";
import { compression } from "../client/compress.ts";
import { reservedTags } from "../client/codec.ts";
import { sealing } from "../client/seal.ts";
import { resolveRouters, parsePositiveInt } from "../lib/defaults.ts";
import { formatBytes, parseChunkSizeFlag } from "../lib/size.ts";
import { limits } from "../lib/limits.ts";
import { BadRequestError, MictlanxError, NotFoundError, UsageError } from "../lib/errors.ts";
import { newNameProblem, printable, terminalJson } from "../lib/names.ts";
import type { BallLocated, BallMetaWire } from "../protocol/ball.ts";
import { checkNewNames, fileForKey, parseBallPath, parseBucketPrefix, parseTags } from "./ball-path.ts";
import { beforeQuietExit, outputClosed } from "./pipes.ts";
import { Progress } from "./progress.ts";

/** Flags every client command may carry. `keyFile` and `compress` are read when main.ts declares them. */
interface ClientFlags {
  router?: string;
  keyFile?: string;
}

/** The encryption key: --key-file FILE (32 raw bytes or 64 hex digits), else MICTLANX_KEY (64 hex digits), else none. */
export function resolveKey(flags: ClientFlags, env: Record<string, string | undefined> = process.env): Uint8Array | undefined {
  if (flags.keyFile !== undefined) return keyFromFile(flags.keyFile);
  const fromEnv = env.MICTLANX_KEY;
  if (fromEnv !== undefined && fromEnv.trim().length > 0) return keyFromHex(fromEnv, "MICTLANX_KEY");
  return undefined;
}

/** A client for one command; `key` only for put and get (del, ls and stat never need it, nor fail on a bad one). */
function clientFor(flags: ClientFlags, extra: { chunkSize?: number; compress?: boolean; key?: Uint8Array } = {}): Client {
  const key = extra.key;
  return new Client({
    routers: resolveRouters(flags.router),
    // One command, one transfer: nothing is read twice, so no cache.
    cacheBytes: 0,
    ...(key ? { key } : {}),
    ...(extra.chunkSize === undefined ? {} : { chunkSize: extra.chunkSize }),
    ...(extra.compress ? { compress: true } : {}),
  });
}

/** `human` must already show its names through `shown`/`printable`. */
function print(json: boolean | undefined, value: unknown, human: string): void {
  process.stdout.write(json ? `${terminalJson(value)}\n` : `${human}\n`);
}

/** "bucket/key" (or a bucket alone) for people. */
function shown(bucket: string, key?: string): string {
  return printable(key === undefined ? bucket : `${bucket}/${key}`);
}

/** A one-line summary on stderr, for people only (a terminal). */
function note(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`${text}\n`);
}

function rate(bytes: number, startedMs: number): string {
  const seconds = Math.max(0.001, (performance.now() - startedMs) / 1000);
  return `${seconds.toFixed(1)} s, ${formatBytes(bytes / seconds)}/s`;
}

export interface PutFlags extends ClientFlags {
  rf: string;
  chunkSize: string;
  ballId?: string;
  tag?: string[];
  contentType?: string;
  ifAbsent?: boolean;
  recursive?: boolean;
  json?: boolean;
  compress?: boolean;
}

export async function putCommand(target: string, file: string, flags: PutFlags): Promise<void> {
  const { bucket, key } = parseBallPath(target);
  const sealKey = resolveKey(flags);
  const transformed = flags.compress === true || sealKey !== undefined;
  const chunkSizeMax = limits.chunkBytesMax - (transformed ? compression.overheadBytes + sealing.overheadBytes : 0);
  const chunkSize = parseChunkSizeFlag(flags.chunkSize, chunkSizeMax, transformed ? " with compression or encryption" : "");
  const tags = parseTags(flags.tag);
  checkNewNames({ bucket, key, tags, ...(flags.ballId === undefined ? {} : { ballId: flags.ballId }), ...(flags.contentType === undefined ? {} : { contentType: flags.contentType }) });
  for (const name of reservedTags) {
    if (name in tags) throw new UsageError(`--tag ${name}=… is set by mictlanx itself; choose another name${name === "compression" ? " (use --compress)" : name === "encryption" ? " (use MICTLANX_KEY or --key-file)" : ""}`);
  }
  const options: PutOptions = {
    rf: parsePositiveInt(flags.rf, "--rf"),
    chunkSize,
    tags,
    ...(flags.ballId === undefined ? {} : { ballId: flags.ballId }),
    ...(flags.contentType === undefined ? {} : { contentType: flags.contentType }),
    ...(flags.ifAbsent ? { ifAbsent: true } : {}),
  };
  const client = clientFor(flags, { chunkSize, ...(flags.compress ? { compress: true } : {}), ...(sealKey ? { key: sealKey } : {}) });
  try {
    if (flags.recursive) {
      await putTree(client, bucket, key, file, options, flags.json);
      return;
    }
    let source: string | ReadableStream<Uint8Array>;
    let total: number | undefined;
    if (file === "-") {
      if (process.stdin.isTTY) throw new UsageError(`put reads stdin, which is a terminal; give a file, or pipe data in: cat big.bin | mictlanx put ${target} -`);
      source = Bun.stdin.stream();
      total = stdinSize();
    } else {
      const info = statOrNull(file);
      if (!info) throw new UsageError(`no file at ${file}`);
      if (info.isDirectory()) throw new UsageError(`${file} is a directory; add --recursive to put every file under it`);
      source = file;
      total = info.size;
    }
    const startedMs = performance.now();
    const progress = new Progress({ label: `put ${shown(bucket, key)}`, ...(total === undefined ? {} : { total }) });
    let result: PutResult;
    try {
      result = await client.put(bucket, key, source, { ...options, onProgress: (done) => progress.update(done) });
    } finally {
      progress.finish();
    }
    const stored = result.compressed || result.encrypted ? `, stored ${formatBytes(result.storedBytes)}${result.compressed ? " (zstd)" : ""}${result.encrypted ? " (aes-256-gcm)" : ""}` : "";
    print(flags.json, result, `put ${shown(bucket, key)}: ${formatBytes(result.size)} in ${result.numChunks} chunk(s), rf ${options.rf}, version ${result.version}${stored}, sha256 ${result.checksum}`);
    note(`  ${rate(result.size, startedMs)}`);
  } finally {
    client.close();
  }
}

/** --recursive: every regular file under a directory, keyed by its path relative to it; a few at a time. */
async function putTree(client: Client, bucket: string, prefix: string, dir: string, options: PutOptions, json: boolean | undefined): Promise<void> {
  if (dir === "-" || !statOrNull(dir)?.isDirectory()) throw new UsageError("--recursive needs a directory");
  function* items(): Generator<PutItem & { order: number }> {
    let order = 0;
    for (const path of walk(dir)) yield { bucket, key: join(prefix, relative(dir, path)).split("\\").join("/"), data: path, options, order: order++ };
  }
  // Lines come out in the tree's order as soon as every file before them is done.
  const lines = new Map<number, string>();
  let printed = 0;
  const outcomes = await mapBounded(items(), 4, async (item) => {
    try {
      // A file name may hold what a key may not (a newline, an ESC): that file fails, the rest go on.
      const problem = newNameProblem("key", item.key);
      if (problem !== undefined) throw new BadRequestError(`not stored: its ${problem}`);
      const result = await client.put(item.bucket, item.key, item.data, item.options);
      lines.set(item.order, `put ${shown(bucket, result.key)}: ${formatBytes(result.size)}\n`);
      return result;
    } catch (error) {
      lines.set(item.order, "");
      throw error;
    } finally {
      for (let line = lines.get(printed); line !== undefined; line = lines.get(printed)) {
        if (!json) process.stdout.write(line);
        lines.delete(printed);
        printed += 1;
      }
    }
  });
  const failed = outcomes.filter((outcome) => !outcome.ok);
  if (json) process.stdout.write(`${terminalJson(outcomes.map((outcome) => (outcome.ok ? outcome.value : { bucket, key: outcome.key, error: { code: outcome.error.code, message: outcome.error.message } })))}\n`);
  else for (const outcome of failed) if (!outcome.ok) process.stderr.write(`mictlanx: put ${shown(bucket, outcome.key)} failed: ${printable(outcome.error.message)}\n`);
  if (failed.length > 0) throw new MictlanxError("unavailable", `${failed.length} of ${outcomes.length} file(s) were not stored; run the same command again to retry`);
}

function* walk(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

function statOrNull(path: string) {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

/** The size of stdin when it is a redirected file (`< big.bin`); unknown for a pipe. */
function stdinSize(): number | undefined {
  try {
    const info = fstatSync(0);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

export interface GetFlags extends ClientFlags {
  output: string;
  ballId?: string;
}

export async function getCommand(target: string, flags: GetFlags): Promise<void> {
  const key = resolveKey(flags);
  const client = clientFor(flags, key ? { key } : {});
  try {
    if (flags.ballId !== undefined) {
      await getGroupToDir(client, target, flags.ballId, flags.output);
      return;
    }
    const { bucket, key } = parseBallPath(target);
    if (flags.output === "-") {
      await getToStdout(client, bucket, key);
      return;
    }
    // Ctrl-C: stop after the chunk in hand, remove the partial file, leave the target untouched.
    const interrupt = new AbortController();
    const onSigint = () => interrupt.abort(new MictlanxError("unavailable", `interrupted; ${flags.output} was not written`));
    process.once("SIGINT", onSigint);
    const startedMs = performance.now();
    const progress = new Progress({ label: `get ${shown(bucket, key)}` });
    try {
      const written = await client.getToFile(bucket, key, flags.output, { signal: interrupt.signal, onProgress: (done, total) => progress.update(done, total) });
      progress.finish();
      note(`get ${shown(bucket, key)} → ${printable(written.path)}: ${formatBytes(written.size)} in ${rate(written.size, startedMs)}, sha256 verified`);
    } finally {
      process.off("SIGINT", onSigint);
      progress.finish();
    }
  } finally {
    client.close();
  }

  async function getToStdout(client: Client, bucket: string, key: string): Promise<void> {
    const { meta, stream } = await client.getStream(bucket, key);
    if (process.stdout.isTTY && !isText(meta.contentType) && meta.size > 0) {
      await stream.return(undefined);
      throw new UsageError(`${bucket}/${key} is ${formatBytes(meta.size)} of ${meta.contentType}; not writing that to the terminal; use -o FILE, or pipe it into a program`);
    }
    const progress = new Progress({ label: `get ${shown(bucket, key)}`, total: meta.size });
    let done = 0;
    try {
      for await (const piece of stream) {
        // Waits while the reader is slower: memory stays at a few chunks. When the reader goes
        // away (`| head -c 100`), pipes.ts ends the process quietly with exit 0.
        await writeStdout(piece);
        done += piece.byteLength;
        progress.update(done);
      }
    } finally {
      progress.finish();
    }
  }
}

/** process.stdout.write with backpressure: resolves once the piece is taken (or the reader has gone). */
async function writeStdout(piece: Uint8Array): Promise<void> {
  if (outputClosed.aborted || process.stdout.write(piece)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      process.stdout.off("drain", done);
      outputClosed.removeEventListener("abort", done);
      resolve();
    };
    process.stdout.once("drain", done);
    outputClosed.addEventListener("abort", done, { once: true });
  });
}

function isText(contentType: string): boolean {
  return contentType.startsWith("text/") || /^application\/(json|xml|x-ndjson|javascript|typescript)/.test(contentType);
}

/** A key that `get --ball-id` does not write (it would land outside -o DIR, or over a directory or device). */
class SkippedKey extends BadRequestError {}

async function getGroupToDir(client: Client, target: string, ballId: string, dir: string): Promise<void> {
  const { bucket } = parseBucketPrefix(target);
  if (dir === "-") throw new UsageError("--ball-id needs -o DIR to write the group's balls into");
  const balls = await client.listGroup(bucket, ballId);
  if (balls.length === 0) throw new NotFoundError(`no balls with ball id "${ballId}" in ${bucket}`);
  const root = directoryFor(dir);
  // When stdout's reader goes away (`| head -1`), stop: abort the transfers, remove their partial files.
  const stop = new AbortController();
  let settled: Promise<unknown> = Promise.resolve();
  const forget = beforeQuietExit(async () => {
    stop.abort(new MictlanxError("unavailable", "the reader of stdout went away"));
    await settled;
  });
  try {
    const outcomes = mapBounded(balls, 4, async (ball) => {
      const place = fileForKey(root, ball.key);
      if ("skip" in place) throw new SkippedKey(`${place.skip}; nothing is written outside ${dir}`);
      const written = await client.getToFile(bucket, ball.key, place.path, { exact: true, signal: stop.signal });
      process.stdout.write(`got ${shown(bucket, ball.key)} → ${printable(join(dir, ball.key))}: ${formatBytes(written.size)}\n`);
      return written;
    });
    settled = outcomes;
    reportGroup(bucket, ballId, await outcomes);
  } finally {
    forget();
  }
}

/** -o DIR for a group: made when missing; its real path, under which every key must land. */
function directoryFor(dir: string): string {
  const info = statOrNull(dir);
  if (info !== null && !info.isDirectory()) throw new UsageError(`-o ${dir} is not a directory; --ball-id writes the group's balls into one`);
  mkdirSync(dir, { recursive: true });
  return realpathSync(dir);
}

/** One line on stderr per ball skipped or failed; exit 1 (4 when every one was not found) if any. */
function reportGroup(bucket: string, ballId: string, outcomes: Array<{ ok: true } | { ok: false; key: string; error: MictlanxError }>): void {
  if (outputClosed.aborted) return;
  const failed = outcomes.filter((outcome) => !outcome.ok);
  for (const outcome of failed) {
    if (!outcome.ok) process.stderr.write(`mictlanx: get ${shown(bucket, outcome.key)} ${outcome.error instanceof SkippedKey ? "skipped" : "failed"}: ${printable(outcome.error.message)}\n`);
  }
  if (failed.length > 0) {
    const first = failed[0];
    const code = first && !first.ok && failed.length === outcomes.length && failed.every((each) => !each.ok && each.error.code === first.error.code) ? first.error.code : "unavailable";
    throw new MictlanxError(code, `${failed.length} of ${outcomes.length} ball(s) of group ${ballId} were not written`);
  }
}

export async function delCommand(target: string, flags: ClientFlags & { ballId?: string; json?: boolean }): Promise<void> {
  const client = clientFor(flags);
  try {
    if (flags.ballId !== undefined) {
      const { bucket } = parseBucketPrefix(target);
      const deleted = await client.deleteGroup(bucket, flags.ballId);
      print(flags.json, { bucket, ballId: flags.ballId, deleted }, `deleted ${deleted.length} ball(s) of group ${printable(flags.ballId)}`);
      return;
    }
    const { bucket, key } = parseBallPath(target);
    const ball = await client.delete(bucket, key);
    print(flags.json, ball, `deleted ${shown(bucket, key)} (version ${ball.version}, ${formatBytes(ball.size)})`);
  } finally {
    client.close();
  }
}

export async function lsCommand(target: string | undefined, flags: ClientFlags & { ballId?: string; json?: boolean }): Promise<void> {
  const client = clientFor(flags);
  try {
    // JSON is streamed as one array, page by page: constant memory however many balls.
    let first = true;
    const emit = (value: unknown) => {
      process.stdout.write(`${first ? "[" : ","}${terminalJson(value)}`);
      first = false;
    };
    const end = () => process.stdout.write(first ? "[]\n" : "]\n");
    if (target === undefined) {
      for await (const page of client.buckets()) {
        for (const bucket of page) {
          if (flags.json) emit(bucket);
          else process.stdout.write(`${printable(bucket.name)}\t${bucket.balls} balls\t${formatBytes(bucket.bytes)}\n`);
        }
      }
      if (flags.json) end();
      return;
    }
    const { bucket, prefix } = parseBucketPrefix(target);
    const query = { ...(prefix === undefined ? {} : { prefix }), ...(flags.ballId === undefined ? {} : { ballId: flags.ballId }) };
    for await (const page of client.list(bucket, query)) {
      for (const ball of page) {
        if (flags.json) emit(ball);
        else process.stdout.write(`${printable(ball.key)}\t${formatBytes(ball.size)}\tv${ball.version}\t${printable(ball.ballId)}${lockAndZip(ball)}\n`);
      }
    }
    if (flags.json) end();
  } finally {
    client.close();
  }
}

function lockAndZip(ball: BallMetaWire): string {
  const marks = [ball.tags.encryption !== undefined ? "encrypted" : "", ball.tags.compression !== undefined ? `compressed` : ""].filter((mark) => mark !== "");
  return marks.length > 0 ? `\t${marks.join(",")}` : "";
}

export async function statCommand(target: string, flags: ClientFlags & { json?: boolean }): Promise<void> {
  const { bucket, key } = parseBallPath(target);
  const client = clientFor(flags);
  try {
    const ball = await client.stat(bucket, key);
    if (flags.json) process.stdout.write(`${terminalJson(statJson(ball))}\n`);
    else process.stdout.write(statText(ball));
  } finally {
    client.close();
  }
}

export function statJson(ball: BallLocated) {
  const { peers: _peers, ...rest } = ball;
  return { ...rest, chunks: ball.chunks.map((chunk) => ({ index: chunk.index, size: chunk.size, checksum: chunk.checksum, peers: chunk.peers })) };
}

function statText(ball: BallLocated): string {
  const stored = ball.chunks.reduce((sum, chunk) => sum + chunk.size, 0);
  const lines = [
    shown(ball.bucket, ball.key),
    `  size          ${ball.size} bytes (${formatBytes(ball.size)})`,
    `  sha256        ${ball.checksum}`,
    `  ball id       ${printable(ball.ballId)}`,
    `  version       ${ball.version} (object ${ball.objectId})`,
    `  content type  ${printable(ball.contentType)}`,
    `  rf            ${ball.rf}`,
    `  created       ${new Date(ball.createdMs).toISOString()}`,
    `  chunks        ${ball.numChunks} of ${formatBytes(ball.chunkSize)}`,
    ...(ball.tags.encryption !== undefined ? [`  encryption    ${printable(ball.tags.encryption)} (client-side; the key is not stored)`] : []),
    ...(ball.tags.compression !== undefined ? [`  compression   ${printable(ball.tags.compression)}, stored ${formatBytes(stored)}${ball.size > 0 ? ` (${((stored / ball.size) * 100).toFixed(0)}% of the payload)` : ""}`] : []),
    ...Object.entries(ball.tags).map(([k, v]) => `  tag           ${printable(k)}=${printable(v)}`),
    ...ball.chunks.slice(0, 20).map((chunk) => `    #${chunk.index}  ${formatBytes(chunk.size)}  ${chunk.checksum}  on ${printable(chunk.peers.join(", "))}`),
    ...(ball.chunks.length > 20 ? [`    … ${ball.chunks.length - 20} more (use --json)`] : []),
  ];
  return `${lines.join("\n")}\n`;
}
