// The shell's client commands: put, get, del, ls, stat. Thin: parse flags, call the Client,
// print a line for people or JSON for scripts. Transfers show a progress bar on stderr when it
// is a terminal and the transfer takes more than a second; piped, they print nothing extra.
// Names (buckets, keys, ball ids, tags) are printed through `printable` for people and
// `terminalJson` for scripts (src/lib/names.ts): never raw to a terminal.
import { fstatSync, statSync } from "node:fs";
import { Client, type PutOptions, type PutResult, type Verify } from "../client/client.ts";
import { findCredentials, type CredentialFlags } from "../client/credentials.ts";
import { keyFromFile, keyFromHex } from "../client/seal.ts";
import { compression } from "../lib/compress.ts";
import { reservedTags } from "../client/codec.ts";
import { sealing } from "../client/seal.ts";
import { resolveRouters, parsePositiveInt } from "../lib/defaults.ts";
import { formatBytes, parseChunkSizeFlag } from "../lib/size.ts";
import { limits } from "../lib/limits.ts";
import { MictlanxError, NotFoundError, UsageError } from "../lib/errors.ts";
import { printable, terminalJson } from "../lib/names.ts";
import { s3TagPrefix, type BallLocated, type BallMetaWire } from "../protocol/ball.ts";
import { checkNewNames, parseBallPath, parseBucketPrefix, parseTags, parseTreeTarget, shown } from "./ball-path.ts";
import { outputClosed } from "./pipes.ts";
import { outputPathError } from "../lib/data-dir.ts";
import { interruptible } from "./signals.ts";
import { Progress } from "./progress.ts";
import { directoryFor, getTree, putTree, reportUnwritten, writeBalls } from "./tree.ts";
import { deleteTree, makeBucket, removeBucket } from "./buckets.ts";

/** Flags every client command may carry. `keyFile` and `compress` are read when main.ts declares them. */
interface ClientFlags extends CredentialFlags {
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
function clientFor(flags: ClientFlags, extra: { chunkSize?: number; compress?: boolean; key?: Uint8Array; verify?: Verify } = {}): Client {
  const key = extra.key;
  const credentials = findCredentials(flags);
  return new Client({
    routers: resolveRouters(flags.router),
    ...(credentials ?? {}),
    // One command, one transfer: nothing is read twice, so no cache.
    cacheBytes: 0,
    ...(key ? { key } : {}),
    ...(extra.chunkSize === undefined ? {} : { chunkSize: extra.chunkSize }),
    ...(extra.compress ? { compress: true } : {}),
    ...(extra.verify === undefined ? {} : { verify: extra.verify }),
  });
}

/** `human` must already show its names through `shown`/`printable`. */
function print(json: boolean | undefined, value: unknown, human: string): void {
  process.stdout.write(json ? `${terminalJson(value)}\n` : `${human}\n`);
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
  followSymlinks?: boolean;
  json?: boolean;
  compress?: boolean;
}

export async function putCommand(target: string, file: string, flags: PutFlags): Promise<void> {
  if (flags.followSymlinks && !flags.recursive) throw new UsageError("--follow-symlinks is for --recursive (a single file's link is always followed)");
  // --recursive takes a bucket alone too: the tree goes into its root.
  const tree = flags.recursive ? parseTreeTarget(target) : undefined;
  const { bucket, key } = tree ? { bucket: tree.bucket, key: tree.prefix } : parseBallPath(target);
  const sealKey = resolveKey(flags);
  const transformed = flags.compress === true || sealKey !== undefined;
  const chunkSizeMax = limits.chunkBytesMax - (transformed ? compression.overheadBytes + sealing.overheadBytes : 0);
  const chunkSize = parseChunkSizeFlag(flags.chunkSize, chunkSizeMax, transformed ? " with compression or encryption" : "");
  const tags = parseTags(flags.tag);
  checkNewNames({ bucket, ...(key === "" ? {} : { key }), tags, ...(flags.ballId === undefined ? {} : { ballId: flags.ballId }), ...(flags.contentType === undefined ? {} : { contentType: flags.contentType }) });
  for (const name of reservedTags) {
    if (name in tags) throw new UsageError(`--tag ${name}=… is set by mictlanx itself; choose another name${name === "compression" ? " (use --compress)" : name === "encryption" ? " (use MICTLANX_KEY or --key-file)" : ""}`);
  }
  for (const name of Object.keys(tags)) {
    if (name.startsWith(s3TagPrefix)) throw new UsageError(`--tag ${name}=…: names starting with ${s3TagPrefix} are the S3 gateway's (its ETag and x-amz-meta-*); choose another name`);
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
  // Ctrl-C / SIGTERM: the put in flight abandons its upload (the SPM deletes what it sent), then exit 130 / 143.
  const interrupt = interruptible("put", "nothing more was stored, and the chunks it had sent are being deleted");
  options.signal = interrupt.signal;
  try {
    if (tree) {
      await putTree(client, tree, file, options, flags);
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
  } catch (error) {
    interrupt.exitIfInterrupted(error);
    throw error;
  } finally {
    interrupt.dispose();
    client.close();
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
  /** What the get checks (commander checks the choice; the Client again). */
  verify?: Verify;
  ballId?: string;
  recursive?: boolean;
}

export async function getCommand(target: string, flags: GetFlags): Promise<void> {
  const key = resolveKey(flags);
  const client = clientFor(flags, { ...(key ? { key } : {}), ...(flags.verify === undefined ? {} : { verify: flags.verify }) });
  try {
    if (flags.recursive && flags.ballId !== undefined) throw new UsageError("--recursive (every ball under a prefix) and --ball-id (every ball of a group) choose balls two ways; give one");
    if (flags.recursive) {
      await getTree(client, parseTreeTarget(target), flags.output);
      return;
    }
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
      const written = await client
        .getToFile(bucket, key, flags.output, { signal: interrupt.signal, onProgress: (done, total) => progress.update(done, total) })
        .catch((error: unknown) => {
          throw outputPathError("-o", flags.output, error);
        });
      progress.finish();
      note(`get ${shown(bucket, key)} → ${printable(written.path)}: ${formatBytes(written.size)} in ${rate(written.size, startedMs)}, ${flags.verify === "chunks" ? "each chunk's xxh3 verified (--verify chunks: no sha256)" : "sha256 verified"}`);
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

async function getGroupToDir(client: Client, target: string, ballId: string, dir: string): Promise<void> {
  const { bucket } = parseBucketPrefix(target);
  if (dir === "-") throw new UsageError("--ball-id needs -o DIR to write the group's balls into");
  const balls = await client.listGroup(bucket, ballId);
  if (balls.length === 0) throw new NotFoundError(`no balls with ball id "${ballId}" in ${bucket}`);
  const root = directoryFor(dir, "--ball-id");
  reportGroup(ballId, reportUnwritten(bucket, await writeBalls(client, bucket, balls, { dir, root, pathOf: (key) => key })), balls.length);
}

/** Exit 1 (4 when every one was not found) if any ball was skipped or failed. */
function reportGroup(ballId: string, failed: Array<{ ok: false; error: MictlanxError }>, total: number): void {
  if (outputClosed.aborted || failed.length === 0) return;
  const first = failed[0];
  const code = first && failed.length === total && failed.every((each) => each.error.code === first.error.code) ? first.error.code : "unavailable";
  throw new MictlanxError(code, `${failed.length} of ${total} ball(s) of group ${ballId} were not written`);
}

export async function delCommand(target: string, flags: ClientFlags & { ballId?: string; json?: boolean; recursive?: boolean; yes?: boolean }): Promise<void> {
  if (flags.recursive && flags.ballId !== undefined) throw new UsageError("--recursive (every ball under a prefix) and --ball-id (every ball of a group) choose balls two ways; give one");
  if (flags.yes && !flags.recursive) throw new UsageError("--yes is for --recursive (deleting one ball asks nothing)");
  const client = clientFor(flags);
  try {
    if (flags.recursive) {
      await deleteTree(client, parseTreeTarget(target), flags);
      return;
    }
    if (flags.ballId !== undefined) {
      const { bucket } = parseBucketPrefix(target);
      const deleted = await client.deleteGroup(bucket, flags.ballId);
      print(flags.json, { bucket, ballId: flags.ballId, deleted }, `deleted ${deleted.length} ball(s) of group ${printable(flags.ballId)}`);
      return;
    }
    if (!target.includes("/")) throw new UsageError(`"${target}" is not bucket/key; to delete every ball in the bucket: mictlanx del ${target} --recursive`);
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
    // A header for people at a terminal, once the listing has answered; piped, only the rows
    // (tab-separated, for cut and awk).
    let headed = flags.json === true || !process.stdout.isTTY;
    const header = (columns: string[]) => {
      if (!headed) process.stdout.write(`${columns.join("\t")}\n`);
      headed = true;
    };
    if (target === undefined) {
      const columns = ["BUCKET", "BALLS", "SIZE"];
      for await (const page of client.buckets()) {
        header(columns);
        for (const bucket of page) {
          if (flags.json) emit(bucket);
          else process.stdout.write(`${printable(bucket.name)}\t${bucket.balls} balls\t${formatBytes(bucket.bytes)}\n`);
        }
      }
      header(columns);
      if (flags.json) end();
      return;
    }
    const { bucket, prefix } = parseBucketPrefix(target);
    const query = { ...(prefix === undefined ? {} : { prefix }), ...(flags.ballId === undefined ? {} : { ballId: flags.ballId }) };
    const columns = ["KEY", "SIZE", "VERSION", "BALL ID"];
    for await (const page of client.list(bucket, query)) {
      header(columns);
      for (const ball of page) {
        if (flags.json) emit(ball);
        else process.stdout.write(`${printable(ball.key)}\t${formatBytes(ball.size)}\tv${ball.version}\t${printable(ball.ballId)}${lockAndZip(ball)}\n`);
      }
    }
    header(columns);
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

export async function mbCommand(bucket: string, flags: ClientFlags & { json?: boolean }): Promise<void> {
  const client = clientFor(flags);
  try {
    await makeBucket(client, bucket, flags);
  } finally {
    client.close();
  }
}

export async function rbCommand(bucket: string, flags: ClientFlags & { json?: boolean; force?: boolean }): Promise<void> {
  const client = clientFor(flags);
  try {
    await removeBucket(client, bucket, flags);
  } finally {
    client.close();
  }
}
