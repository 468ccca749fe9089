// Large appends and reads that bypass the page cache (O_DIRECT, shard-file.ts): the bytes on
// disk are the same records as buffered writes would leave, whatever the alignment of the
// records, the file systems that refuse O_DIRECT fall back to buffered I/O, and recovery,
// compaction and torn tails work on shards written this way.
import { afterEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChunkStore, type ChunkRef, type FileIo, type StoreOptions } from "../../src/storage/index.ts";
import { directAlignBytes, nodeFileIo, sliceBuffers } from "../../src/storage/shard-file.ts";
import { decodeRecord, encodeRecord, RecordKind } from "../../src/storage/record.ts";
import { chunkChecksum } from "../../src/lib/checksum.ts";
import { randomBytes, seededRandom } from "../support/random.ts";
import { storeFixture } from "../support/storage.ts";

const { tempDir, openStore, forget } = storeFixture("direct");

const ref = (ball: string, index = 0): ChunkRef => ({ bucket: "b", ball, index });
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** nodeFileIo that counts what goes through the O_DIRECT descriptors; `refuse` makes them fail with EINVAL. */
function countingIo(options: { refuse?: boolean; noDirect?: boolean } = {}) {
  const directFds = new Set<number>();
  const counts = { directWrites: 0, directReads: 0, bufferedWrites: 0 };
  const einval = () => Object.assign(new Error("EINVAL: invalid argument"), { code: "EINVAL" });
  const { openDirect: _openDirect, ...plain } = nodeFileIo;
  const io: FileIo = {
    ...(options.noDirect ? plain : nodeFileIo),
    ...(options.noDirect
      ? {}
      : {
          openDirect: (file: string) => {
            const fd = nodeFileIo.openDirect?.(file);
            if (fd !== undefined) directFds.add(fd);
            return fd;
          },
        }),
    writev: async (fd, buffers, position) => {
      if (!directFds.has(fd)) {
        counts.bufferedWrites += 1;
        return nodeFileIo.writev(fd, buffers, position);
      }
      if (options.refuse) throw einval();
      counts.directWrites += 1;
      return nodeFileIo.writev(fd, buffers, position);
    },
    read: async (fd, buffer, offset, length, position) => {
      if (!directFds.has(fd)) return nodeFileIo.read(fd, buffer, offset, length, position);
      if (options.refuse) throw einval();
      counts.directReads += 1;
      return nodeFileIo.read(fd, buffer, offset, length, position);
    },
  };
  return { io, counts, directAvailable: () => directFds.size > 0 };
}

describe("direct appends and reads", () => {
  const { random, seed } = seededRandom("storage-direct");
  // Sizes around the block size and the thresholds, so records start and end anywhere in a block.
  const sizes = [1, 4095, 4096, 4097, 100_000, 131_072, 131_073, 300_001, 1 << 20, (1 << 20) + 7, 3 * (1 << 20) + 1];

  test(`records of every size and alignment read back exact, before and after reopening (seed ${seed})`, async () => {
    const dir = tempDir();
    const { io, counts, directAvailable } = countingIo();
    const store = await openStore({ dir, io });
    const written = new Map<string, Uint8Array>();
    for (let round = 0; round < 3; round += 1) {
      // Batches of concurrent puts (one group commit each) mixing small and large records.
      await Promise.all(
        sizes.map(async (size, i) => {
          const data = randomBytes(random, size);
          const key = `r${round}-${i}`;
          written.set(key, data);
          await store.put(ref(key), data);
        }),
      );
    }
    for (const [key, data] of written) expect(same(await store.get(ref(key)), data)).toBe(true);
    if (directAvailable()) {
      expect(counts.directWrites).toBeGreaterThan(0);
      expect(counts.directReads).toBeGreaterThan(0);
    }
    // The file is exactly the records: its size is the end of the last one.
    const shard = path.join(dir, "shards", "00000001.shard");
    expect(fs.statSync(shard).size).toBe(store.stats().usedBytes);
    await store.close();
    forget(store);
    const again = await openStore({ dir });
    for (const [key, data] of written) expect(same(await again.get(ref(key)), data)).toBe(true);
    // A range inside a large record read direct.
    const big = written.get("r1-9") as Uint8Array;
    expect(same(await again.get(ref("r1-9"), { offset: 5000, length: 200_000 }), big.subarray(5000, 205_000))).toBe(true);
  });

  test("without O_DIRECT, or when it refuses (EINVAL), the same bytes go through the page cache", async () => {
    for (const options of [{ noDirect: true }, { refuse: true }]) {
      const dir = tempDir();
      const { io, counts } = countingIo(options);
      const store = await openStore({ dir, io });
      const chunks = sizes.map((size) => randomBytes(random, size));
      await Promise.all(chunks.map((data, i) => store.put(ref(`c${i}`), data)));
      await Promise.all(chunks.map((data, i) => store.put(ref(`d${i}`), data)));
      for (const [i, data] of chunks.entries()) {
        expect(same(await store.get(ref(`c${i}`)), data)).toBe(true);
        expect(same(await store.get(ref(`d${i}`)), data)).toBe(true);
      }
      expect(counts.directWrites).toBe(0);
      expect(counts.directReads).toBe(0);
      expect(counts.bufferedWrites).toBeGreaterThan(0);
    }
  });

  test("a torn tail after large direct appends is cut on open; what was acknowledged stays", async () => {
    const dir = tempDir();
    const store = await openStore({ dir });
    const first = randomBytes(random, (1 << 20) + 123);
    const second = randomBytes(random, 2 << 20);
    await store.put(ref("first"), first);
    await store.put(ref("second"), second);
    const end = store.stats().usedBytes;
    const secondMeta = store.stat(ref("second"));
    await store.close();
    forget(store);
    // A crash mid-append of a third large record: only its first blocks reached the disk.
    const shard = path.join(dir, "shards", "00000001.shard");
    const file = fs.readFileSync(shard);
    fs.appendFileSync(shard, file.subarray(secondMeta.offset, secondMeta.offset + 100 * directAlignBytes + 17));
    const logs: string[] = [];
    const again = await openStore({ dir, log: (m) => logs.push(m) });
    expect(logs.join("\n")).toContain("torn tail");
    expect(fs.statSync(shard).size).toBe(end);
    expect(same(await again.get(ref("first")), first)).toBe(true);
    expect(same(await again.get(ref("second")), second)).toBe(true);
    // And it takes large appends again from an unaligned end.
    await again.put(ref("third"), second);
    expect(same(await again.get(ref("third")), second)).toBe(true);
  });

  test("compaction moves large records written direct, byte for byte", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes: 4 << 20 });
    const keep = randomBytes(random, (1 << 20) + 5);
    await store.put(ref("keep"), keep);
    for (let i = 0; i < 3; i += 1) await store.put(ref(`drop${i}`), randomBytes(random, 1 << 20));
    for (let i = 0; i < 3; i += 1) await store.delete(ref(`drop${i}`));
    const result = await store.compact({ force: true });
    expect(result.shardsCompacted).toBeGreaterThan(0);
    expect(same(await store.get(ref("keep")), keep)).toBe(true);
  });
});

describe("plain bytes", () => {
  test("what a read returns is a plain Uint8Array, whose slice() is a copy", async () => {
    const store = await openStore();
    const data = randomBytes(seededRandom("plain").random, 1 << 20);
    await store.put(ref("x"), data);
    const back = await store.get(ref("x"));
    expect(Buffer.isBuffer(back)).toBe(false);
    const copy = back.slice(0, 10);
    copy.fill(0);
    expect(same(await store.get(ref("x")), data)).toBe(true);
    expect(back[0]).toBe(data[0] as number);
  });
});

describe("record checks leave the bytes alone", () => {
  test("decoding a record held in a Buffer twice works (its header checksum is checked on a copy)", () => {
    const data = new Uint8Array(1000).fill(3);
    const record = encodeRecord({ kind: RecordKind.put, bucket: "b", ball: "x", index: 1, seq: 5, createdMs: 1, dataBytes: 1000, dataChecksum: chunkChecksum(data) }, data);
    const held = Buffer.from(record);
    expect(decodeRecord(held).ok).toBe(true);
    expect(decodeRecord(held).ok).toBe(true);
    expect(same(held, record)).toBe(true);
  });
});

describe("sliceBuffers", () => {
  test("views of any byte range of a list of buffers", () => {
    const parts = [new Uint8Array([0, 1, 2]), new Uint8Array([]), new Uint8Array([3, 4]), new Uint8Array([5, 6, 7, 8])];
    const flat = (list: Uint8Array[]) => list.flatMap((b) => [...b]);
    for (let from = 0; from <= 9; from += 1) {
      for (let to = from; to <= 9; to += 1) expect(flat(sliceBuffers(parts, from, to))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8].slice(from, to));
    }
  });
});
