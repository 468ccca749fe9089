// Shard files: `dir/shards/NNNNNNNN.shard`, named from a numeric id only, so no caller string
// ever reaches a path. One open fd per live shard, shared by the writer and by readers; a shard
// retired by compaction keeps its fd until its last reader lets go (Linux keeps an unlinked
// file's bytes readable through an open fd), so a read racing a move still gets its bytes.
import * as fs from "node:fs";
import * as path from "node:path";
import { assert } from "../lib/assert.ts";
import type { FileIo } from "./types.ts";

const shardIdDigits = 8;
const shardIdMax = 10 ** shardIdDigits - 1;
const shardNamePattern = /^(\d{8})\.shard$/;
/** Linux's IOV_MAX: buffers one writev call may take. */
const iovecsPerCallMax = 1024;

export function shardsDir(dir: string): string {
  return path.join(dir, "shards");
}

export function shardFileName(id: number): string {
  assert(Number.isInteger(id) && id >= 1 && id <= shardIdMax, `shard id ${id}`);
  return `${String(id).padStart(shardIdDigits, "0")}.shard`;
}

export function shardPath(dir: string, id: number): string {
  return path.join(shardsDir(dir), shardFileName(id));
}

/** Shard ids of the files in the shards dir; other names are ignored (and reported). */
export function listShardFiles(dir: string, log: (m: string) => void): number[] {
  const ids: number[] = [];
  for (const name of fs.readdirSync(shardsDir(dir))) {
    const match = shardNamePattern.exec(name);
    const id = match ? Number(match[1]) : 0;
    if (id >= 1) ids.push(id);
    else log(`ignoring ${name} in ${shardsDir(dir)}: not a shard file name`);
  }
  return ids.sort((a, b) => a - b);
}

/** fsync a directory so a created, renamed or removed entry survives a power cut. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** node:fs callback calls run in the thread pool, so an fsync never blocks the event loop. */
export const nodeFileIo: FileIo = {
  writev: (fd, buffers, position) =>
    new Promise((resolve, reject) => fs.writev(fd, buffers, position, (e, n) => (e ? reject(e) : resolve(n)))),
  datasync: (fd) => new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve()))),
  read: (fd, buffer, offset, length, position) =>
    new Promise((resolve, reject) =>
      fs.read(fd, buffer, offset, length, position, (e, n) => (e ? reject(e) : resolve(n))),
    ),
  truncate: (fd, length) => new Promise((resolve, reject) => fs.ftruncate(fd, length, (e) => (e ? reject(e) : resolve()))),
};

export class ShardFile {
  readonly id: number;
  readonly path: string;
  /** Bytes of whole, fsynced records (the writer's append position). */
  size: number;
  private fd: number;
  private readers = 0;
  private retired = false;
  private readonly io: FileIo;

  private constructor(id: number, filePath: string, fd: number, size: number, io: FileIo) {
    this.id = id;
    this.path = filePath;
    this.fd = fd;
    this.size = size;
    this.io = io;
  }

  /** A new, empty shard; the directory is fsynced so the file outlives a crash. */
  static create(dir: string, id: number, io: FileIo): ShardFile {
    const filePath = shardPath(dir, id);
    const fd = fs.openSync(filePath, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
    fsyncDir(shardsDir(dir));
    return new ShardFile(id, filePath, fd, 0, io);
  }

  static open(dir: string, id: number, io: FileIo): ShardFile {
    const filePath = shardPath(dir, id);
    const fd = fs.openSync(filePath, fs.constants.O_RDWR);
    return new ShardFile(id, filePath, fd, fs.fstatSync(fd).size, io);
  }

  fileBytes(): number {
    return fs.fstatSync(this.fd).size;
  }

  /** Pin the fd for a read; false once the shard is retired (look the chunk up again). */
  acquire(): boolean {
    if (this.retired) return false;
    this.readers += 1;
    return true;
  }

  release(): void {
    assert(this.readers > 0, `shard ${this.id} released more than acquired`);
    this.readers -= 1;
    if (this.retired && this.readers === 0) this.closeFd();
  }

  /** No new readers; the fd closes when the last current reader releases. */
  retire(): void {
    this.retired = true;
    if (this.readers === 0) this.closeFd();
  }

  /** Reads exactly `length` bytes at `position`; fewer means the file is shorter than the index says. */
  async read(position: number, length: number): Promise<Uint8Array> {
    const buffer = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = await this.io.read(this.fd, buffer, done, length - done, position + done);
      if (n === 0) return buffer.subarray(0, done);
      done += n;
    }
    return buffer;
  }

  /** Writes every byte of `buffers` at `position` (writev may write less than asked). */
  async writeAll(buffers: Uint8Array[], position: number): Promise<void> {
    let pending = buffers.filter((b) => b.byteLength > 0);
    let at = position;
    while (pending.length > 0) {
      const written = await this.io.writev(this.fd, pending.slice(0, iovecsPerCallMax), at);
      assert(written > 0, `writev to shard ${this.id} wrote nothing`);
      at += written;
      pending = dropWritten(pending, written);
    }
  }

  datasync(): Promise<void> {
    return this.io.datasync(this.fd);
  }

  /** Cut the file back to `length` and make the cut durable. */
  async truncateTo(length: number): Promise<void> {
    await this.io.truncate(this.fd, length);
    await this.io.datasync(this.fd);
  }

  /** Close and unlink a file that never held records (an aborted roll), fsyncing the dir. */
  removeFile(dir: string): void {
    this.close();
    fs.rmSync(this.path, { force: true });
    fsyncDir(shardsDir(dir));
  }

  close(): void {
    this.retired = true;
    this.closeFd();
  }

  private closeFd(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}

function dropWritten(buffers: Uint8Array[], written: number): Uint8Array[] {
  let left = written;
  const rest: Uint8Array[] = [];
  for (const b of buffers) {
    if (left >= b.byteLength) {
      left -= b.byteLength;
      continue;
    }
    rest.push(left > 0 ? b.subarray(left) : b);
    left = 0;
  }
  return rest;
}
