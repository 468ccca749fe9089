// The shell's client commands: put, get, del, ls, stat. Thin: parse flags, call the Client,
// print a line for people or JSON for scripts.
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { Client } from "../client/client.ts";
import { resolveRouters, parsePositiveInt } from "../lib/defaults.ts";
import { formatBytes, parseSize } from "../lib/size.ts";
import { NotFoundError, UsageError } from "../lib/errors.ts";
import type { BallLocated, BallMetaWire } from "../protocol/ball.ts";
import { parseBallPath, parseBucketPrefix, parseTags } from "./ball-path.ts";

function clientFor(router: string | undefined, chunkSize?: number): Client {
  return new Client({ routers: resolveRouters(router), ...(chunkSize === undefined ? {} : { chunkSize }) });
}

function print(json: boolean | undefined, value: unknown, human: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human}\n`);
}

export interface PutFlags {
  router?: string;
  rf: string;
  chunkSize: string;
  ballId?: string;
  tag?: string[];
  contentType?: string;
  ifAbsent?: boolean;
  recursive?: boolean;
  json?: boolean;
}

export async function putCommand(target: string, file: string, flags: PutFlags): Promise<void> {
  const { bucket, key } = parseBallPath(target);
  const chunkSize = parseSize(flags.chunkSize);
  const client = clientFor(flags.router, chunkSize);
  const options = {
    rf: parsePositiveInt(flags.rf, "--rf"),
    chunkSize,
    tags: parseTags(flags.tag),
    ...(flags.ballId === undefined ? {} : { ballId: flags.ballId }),
    ...(flags.contentType === undefined ? {} : { contentType: flags.contentType }),
    ...(flags.ifAbsent ? { ifAbsent: true } : {}),
  };
  try {
    if (flags.recursive) {
      if (file === "-" || !statSync(file).isDirectory()) throw new UsageError("--recursive needs a directory");
      const results = [];
      for (const path of walk(file)) {
        const result = await client.put(bucket, join(key, relative(file, path)).split("\\").join("/"), path, options);
        results.push(result);
        if (!flags.json) process.stdout.write(`put ${bucket}/${result.key}: ${formatBytes(result.size)}\n`);
      }
      if (flags.json) process.stdout.write(`${JSON.stringify(results)}\n`);
      return;
    }
    if (file !== "-" && !existsSync(file)) throw new UsageError(`no file at ${file}`);
    const source = file === "-" ? Bun.stdin.stream() : file;
    const result = await client.put(bucket, key, source, options);
    print(flags.json, result, `put ${bucket}/${key}: ${formatBytes(result.size)} in ${result.numChunks} chunk(s), rf ${options.rf}, version ${result.version}, sha256 ${result.checksum}`);
  } finally {
    client.close();
  }
}

function* walk(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

export async function getCommand(target: string, flags: { router?: string; output: string; ballId?: string }): Promise<void> {
  const client = clientFor(flags.router);
  try {
    if (flags.ballId !== undefined) {
      const { bucket } = parseBucketPrefix(target);
      if (flags.output === "-") throw new UsageError("--ball-id needs -o DIR to write the group's balls into");
      let count = 0;
      for await (const page of client.list(bucket, { ballId: flags.ballId })) {
        for (const ball of page) {
          await download(client, bucket, ball.key, join(flags.output, ball.key));
          count += 1;
        }
      }
      if (count === 0) throw new NotFoundError(`no balls with ball id "${flags.ballId}" in ${bucket}`);
      return;
    }
    const { bucket, key } = parseBallPath(target);
    if (flags.output === "-") {
      const { stream } = await client.getStream(bucket, key);
      const out = Bun.stdout.writer();
      for await (const piece of stream) {
        out.write(piece);
        await out.flush();
      }
      await out.end();
      return;
    }
    await download(client, bucket, key, flags.output);
  } finally {
    client.close();
  }
}

/** Into a partial file first, renamed when every byte checked out: never a half file at `path`. */
async function download(client: Client, bucket: string, key: string, path: string): Promise<void> {
  mkdirSync(dirname(path) || ".", { recursive: true });
  const partial = `${path}.mictlanx-partial`;
  const sink = Bun.file(partial).writer();
  try {
    const { stream } = await client.getStream(bucket, key);
    for await (const piece of stream) {
      sink.write(piece);
      await sink.flush();
    }
    await sink.end();
    renameSync(partial, path);
  } catch (error) {
    await Promise.resolve(sink.end()).catch(() => {});
    if (existsSync(partial)) unlinkSync(partial);
    throw error;
  }
}

export async function delCommand(target: string, flags: { router?: string; ballId?: string; json?: boolean }): Promise<void> {
  const client = clientFor(flags.router);
  try {
    if (flags.ballId !== undefined) {
      const { bucket } = parseBucketPrefix(target);
      const deleted: string[] = [];
      for (;;) {
        const page = await client.list(bucket, { ballId: flags.ballId, pageSize: 1000 }).next();
        if (page.done || page.value.length === 0) break;
        for (const ball of page.value) {
          await client.delete(bucket, ball.key);
          deleted.push(ball.key);
        }
      }
      if (deleted.length === 0) throw new NotFoundError(`no balls with ball id "${flags.ballId}" in ${bucket}`);
      print(flags.json, { bucket, ballId: flags.ballId, deleted }, `deleted ${deleted.length} ball(s) of group ${flags.ballId}`);
      return;
    }
    const { bucket, key } = parseBallPath(target);
    const ball = await client.delete(bucket, key);
    print(flags.json, ball, `deleted ${bucket}/${key} (version ${ball.version}, ${formatBytes(ball.size)})`);
  } finally {
    client.close();
  }
}

export async function lsCommand(target: string | undefined, flags: { router?: string; ballId?: string; json?: boolean }): Promise<void> {
  const client = clientFor(flags.router);
  try {
    if (target === undefined) {
      const buckets = [];
      for await (const page of client.buckets()) buckets.push(...page);
      if (flags.json) process.stdout.write(`${JSON.stringify(buckets)}\n`);
      else for (const bucket of buckets) process.stdout.write(`${bucket.name}\t${bucket.balls} balls\t${formatBytes(bucket.bytes)}\n`);
      return;
    }
    const { bucket, prefix } = parseBucketPrefix(target);
    const query = { ...(prefix === undefined ? {} : { prefix }), ...(flags.ballId === undefined ? {} : { ballId: flags.ballId }) };
    const balls: BallMetaWire[] = [];
    for await (const page of client.list(bucket, query)) {
      if (flags.json) balls.push(...page);
      else for (const ball of page) process.stdout.write(`${ball.key}\t${formatBytes(ball.size)}\tv${ball.version}\t${ball.ballId}\n`);
    }
    if (flags.json) process.stdout.write(`${JSON.stringify(balls)}\n`);
  } finally {
    client.close();
  }
}

export async function statCommand(target: string, flags: { router?: string; json?: boolean }): Promise<void> {
  const { bucket, key } = parseBallPath(target);
  const client = clientFor(flags.router);
  try {
    const ball = await client.stat(bucket, key);
    if (flags.json) process.stdout.write(`${JSON.stringify(statJson(ball))}\n`);
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
  const lines = [
    `${ball.bucket}/${ball.key}`,
    `  size          ${ball.size} bytes (${formatBytes(ball.size)})`,
    `  sha256        ${ball.checksum}`,
    `  ball id       ${ball.ballId}`,
    `  version       ${ball.version} (object ${ball.objectId})`,
    `  content type  ${ball.contentType}`,
    `  rf            ${ball.rf}`,
    `  created       ${new Date(ball.createdMs).toISOString()}`,
    `  chunks        ${ball.numChunks} of ${formatBytes(ball.chunkSize)}`,
    ...Object.entries(ball.tags).map(([k, v]) => `  tag           ${k}=${v}`),
    ...ball.chunks.slice(0, 20).map((chunk) => `    #${chunk.index}  ${formatBytes(chunk.size)}  ${chunk.checksum}  on ${chunk.peers.join(", ")}`),
    ...(ball.chunks.length > 20 ? [`    … ${ball.chunks.length - 20} more (use --json)`] : []),
  ];
  return `${lines.join("\n")}\n`;
}
