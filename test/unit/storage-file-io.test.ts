// nodeFileIo.writev: small buffered writes are done on the event loop (no thread-pool round
// trip before a small put's fsync), larger ones in the thread pool; both report the bytes
// written and turn failures into rejections, never into a throw from the call itself.
import { afterEach, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { nodeFileIo, syncWriteBytesMax } from "../../src/storage/shard-file.ts";
import { tempDir } from "../support/vss.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function scratchFile(): { path: string; fd: number } {
  const dir = tempDir("fileio");
  dirs.push(dir);
  const path = join(dir, "f");
  return { path, fd: openSync(path, "w+") };
}

test("a write of syncWriteBytesMax bytes is in the file before its promise is awaited", async () => {
  const { path, fd } = scratchFile();
  const a = new Uint8Array(syncWriteBytesMax - 10).fill(1);
  const b = new Uint8Array(10).fill(2);
  const pending = nodeFileIo.writev(fd, [a, b], 0);
  const onDisk = readFileSync(path); // no await in between: the bytes are already written
  expect(onDisk.byteLength).toBe(syncWriteBytesMax);
  expect(onDisk[0]).toBe(1);
  expect(onDisk[syncWriteBytesMax - 1]).toBe(2);
  expect(await pending).toBe(syncWriteBytesMax);
  closeSync(fd);
});

test("a larger write goes through the thread pool and lands whole at its position", async () => {
  const { path, fd } = scratchFile();
  const big = new Uint8Array(syncWriteBytesMax + 1).fill(3);
  expect(await nodeFileIo.writev(fd, [big], 100)).toBe(big.byteLength);
  const onDisk = readFileSync(path);
  expect(onDisk.byteLength).toBe(100 + big.byteLength);
  expect(onDisk[100]).toBe(3);
  closeSync(fd);
});

test("a failed small write rejects (it does not throw from the call)", async () => {
  const fd = 1 << 29; // never an open descriptor here (closing a real one could see its number reused)
  let thrown: unknown;
  let pending: Promise<number> | undefined;
  try {
    pending = nodeFileIo.writev(fd, [new Uint8Array(8)], 0);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeUndefined();
  expect(pending).rejects.toThrow();
  await pending?.catch(() => {});
});
