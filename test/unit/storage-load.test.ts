// 10,000 chunks of mixed sizes (0 B..4 MiB, most of them small) put by 64 concurrent writers,
// read back byte-exact, then again after a reopen. Seeded: MICTLANX_SEED=<n> replays a run.
import { afterAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChunkStore, type ChunkRef } from "../../src/storage/index.ts";

const chunkCount = 10_000;
const writers = 64;
const readers = 16;
const seed = Number(process.env.MICTLANX_SEED ?? Math.floor(Math.random() * 2 ** 31));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mx-load-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** mulberry32: small, fast, good enough to pick sizes and fill bytes. */
function prng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Sizes skewed small: 70% under 4 KiB, 20% under 64 KiB, 9% under 512 KiB, 1% up to 4 MiB. */
function sizeFor(r: () => number): number {
  const bucket = r() % 100;
  const KiB = 1024;
  if (bucket < 70) return r() % (4 * KiB + 1);
  if (bucket < 90) return 4 * KiB + (r() % (60 * KiB));
  if (bucket < 99) return 64 * KiB + (r() % (448 * KiB));
  return 512 * KiB + (r() % (3584 * KiB + 1));
}

/** Chunk i's bytes, regenerated on demand so the test holds no copy of 500 MB. */
function chunkBytes(i: number, size: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = (seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0 || 1;
  for (let k = 0; k < words.length; k += 1) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[k] = x >>> 0;
  }
  return new Uint8Array(words.buffer, 0, size);
}

const ref = (i: number): ChunkRef => ({ bucket: `bucket-${i % 7}`, ball: `ball-${Math.floor(i / 10)}`, index: i % 10 });

async function pool(workers: number, count: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (let i = next++; i < count; i = next++) await job(i);
    }),
  );
}

async function readAllBack(store: ChunkStore, sizes: number[]): Promise<void> {
  let mismatches = 0;
  await pool(readers, chunkCount, async (i) => {
    const got = await store.get(ref(i));
    const size = sizes[i] ?? -1;
    if (got.length !== size || !Buffer.from(got).equals(Buffer.from(chunkBytes(i, size)))) mismatches += 1;
  });
  expect(mismatches).toBe(0);
}

test(
  `10k mixed-size chunks put concurrently read back byte-exact (seed ${seed})`,
  async () => {
    console.log(`storage load test seed ${seed} (replay with MICTLANX_SEED=${seed})`);
    const r = prng(seed);
    const sizes = Array.from({ length: chunkCount }, () => sizeFor(r));
    const totalBytes = sizes.reduce((a, b) => a + b, 0);
    const store = await ChunkStore.open({ dir, shardBytes: 64 * 1024 * 1024, log: () => undefined });
    const t0 = performance.now();
    await pool(writers, chunkCount, async (i) => {
      const meta = await store.put(ref(i), chunkBytes(i, sizes[i] ?? 0));
      expect(meta.size).toBe(sizes[i] ?? -1);
    });
    const putS = (performance.now() - t0) / 1000;
    const stats = store.stats();
    console.log(
      `put ${chunkCount} chunks, ${(totalBytes / 2 ** 20).toFixed(0)} MiB in ${putS.toFixed(2)} s; ` +
        `${stats.fsyncs} fsyncs, ${(stats.fsyncBatchWritesTotal / stats.fsyncs).toFixed(1)} writes per fsync; ${stats.shards.length} shards`,
    );
    expect(stats.chunks).toBe(chunkCount);
    expect(stats.shards.length).toBeGreaterThan(1);
    await readAllBack(store, sizes);
    await store.close();
    const again = await ChunkStore.open({ dir, shardBytes: 64 * 1024 * 1024, log: () => undefined });
    expect(again.stats().chunks).toBe(chunkCount);
    await readAllBack(again, sizes);
    await again.close();
  },
  60_000,
);
