// Stores in temp dirs for the engine's unit tests: opened quietly, closed and removed after
// each test. `logs`, when given, collects what the engine reports (repairs, corruption).
import { afterEach } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChunkStore, type StoreOptions } from "../../src/storage/index.ts";
import { chunkChecksum } from "../../src/lib/checksum.ts";
import type { RecordHeader } from "../../src/storage/record.ts";

/** A log that drops what the engine reports, for tests that open stores by hand. */
export const quiet = (): void => undefined;

export function storeFixture(prefix: string) {
  const dirs: string[] = [];
  const stores: ChunkStore[] = [];

  const tempDir = (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mx-${prefix}-`));
    dirs.push(dir);
    return dir;
  };

  const openStore = async (options: Partial<StoreOptions> = {}, logs?: string[]): Promise<ChunkStore> => {
    const log = logs ? (message: string) => void logs.push(message) : quiet;
    const store = await ChunkStore.open({ dir: options.dir ?? tempDir(), log, ...options });
    stores.push(store);
    return store;
  };

  const closeAll = async (): Promise<void> => {
    for (const store of stores.splice(0)) await store.close();
  };

  /** A store the test closed itself: not closed again after the test. */
  const forget = (store: ChunkStore): void => {
    const at = stores.indexOf(store);
    if (at >= 0) stores.splice(at, 1);
  };

  afterEach(async () => {
    await closeAll();
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  return { tempDir, openStore, closeAll, forget };
}

/**
 * The version 1 encoder as builds before record version 2 had it (record.ts at that time),
 * byte for byte: those data dirs must still open.
 */
export function encodeRecordV1(h: RecordHeader, data: Uint8Array): Uint8Array {
  const bucket = new TextEncoder().encode(h.bucket);
  const ball = new TextEncoder().encode(h.ball);
  const headerBytes = 56 + bucket.length + ball.length;
  const out = new Uint8Array(headerBytes + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x4352584d, true);
  view.setUint8(4, 1);
  view.setUint8(5, h.kind);
  view.setUint16(6, bucket.length, true);
  view.setUint16(8, ball.length, true);
  view.setUint32(12, h.index, true);
  view.setBigUint64(16, BigInt(h.seq), true);
  view.setBigUint64(24, BigInt(h.createdMs), true);
  view.setUint32(32, h.dataBytes, true);
  view.setBigUint64(40, h.dataChecksum, true);
  out.set(bucket, 56);
  out.set(ball, 56 + bucket.length);
  view.setBigUint64(48, chunkChecksum(out.subarray(0, headerBytes)), true);
  out.set(data, headerBytes);
  return out;
}

