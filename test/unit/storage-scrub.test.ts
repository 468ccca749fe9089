// The scrub (src/storage/scrub.ts) on real stores in temp dirs, with a stepped clock so a pass
// runs in milliseconds and its pacing is counted in virtual time, not wall time: it finds a
// damaged record within one pass and reports it once a pass, reports nothing on a clean store,
// no false positive while compaction, overwrites and deletes run under it, keeps to its rate,
// waits between passes of an empty store, reads past the page cache, and stops with the store.
import { describe, expect, test } from "bun:test";
import * as path from "node:path";
import { BadRequestError, CorruptError } from "../../src/lib/errors.ts";
import { limits } from "../../src/lib/limits.ts";
import type { ChunkRef, ChunkStore, FileIo, ScrubClock, ScrubFinding } from "../../src/storage/index.ts";
import { nodeFileIo, shardPath } from "../../src/storage/shard-file.ts";
import { recordFixedBytes } from "../../src/storage/record.ts";
import { xorByteAt } from "../support/corrupt.ts";
import { randomBytes, seededRandom } from "../support/random.ts";
import { storeFixture } from "../support/storage.ts";

const { tempDir, openStore, forget } = storeFixture("scrub");
const { random, seed } = seededRandom("storage-scrub");

const ref = (index: number, ball = "obj-0001"): ChunkRef => ({ bucket: "b", ball, index });
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const passIntervalMs = 60_000;
const shardBytes = 64 * 1024;

/**
 * Virtual time: a sleep shorter than `autoMs` (the token bucket's waits) moves time on at once;
 * a longer one (the wait between passes) lasts until advance() reaches it.
 */
function steppedClock(autoMs: number) {
  let now = 0;
  const sleepers: { atMs: number; resolve: () => void }[] = [];
  const clock: ScrubClock = {
    nowMs: () => now,
    sleep: (ms: number) => {
      if (ms < autoMs) {
        now += ms;
        return new Promise<void>((resolve) => setImmediate(resolve));
      }
      return new Promise<void>((resolve) => sleepers.push({ atMs: now + ms, resolve }));
    },
  };
  const advance = (ms: number) => {
    now += ms;
    for (const sleeper of sleepers.filter((s) => s.atMs <= now)) {
      sleepers.splice(sleepers.indexOf(sleeper), 1);
      sleeper.resolve();
    }
  };
  return { clock, advance, now: () => now, sleeping: () => sleepers.length };
}

/** A scrub fast enough that a test store takes no token waits; what it finds, its clock, and a wait for pass n. */
function scrubFast(store: ChunkStore) {
  const findings: ScrubFinding[] = [];
  const time = steppedClock(passIntervalMs / 2);
  store.startScrub({ bytesPerSec: 64 * 1024 * 1024, passIntervalMs, clock: time.clock, onCorrupt: (f) => findings.push(f) });
  const pass = (n: number) => until(`scrub pass ${n} ends`, () => store.stats().scrub.passes >= n);
  return { findings, time, pass };
}

/** Poll (bounded in count and time) until `check` holds; says what it last saw. */
async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await Bun.sleep(2);
  }
}

async function fill(store: ChunkStore, count: number, sizeOf: (i: number) => number = (i) => 500 + ((i * 37) % 1500)) {
  const data = new Map<number, Uint8Array>();
  for (let i = 0; i < count; i += 32) {
    const batch = Array.from({ length: Math.min(32, count - i) }, (_, k) => i + k);
    await Promise.all(
      batch.map((j) => {
        const bytes = randomBytes(random, sizeOf(j));
        data.set(j, bytes);
        return store.put(ref(j), bytes);
      }),
    );
  }
  return data;
}

/** Where a chunk's data starts on disk: after the fixed header and the two names. */
function dataOffset(store: ChunkStore, dir: string, r: ChunkRef): { file: string; at: number } {
  const meta = store.stat(r);
  return { file: shardPath(dir, meta.shardId), at: meta.offset + recordFixedBytes + r.bucket.length + r.ball.length };
}

describe(`scrub (seed ${seed})`, () => {
  test("a clean store: one pass reads every chunk and reports nothing", async () => {
    const store = await openStore({ shardBytes });
    await fill(store, 300);
    for (let i = 0; i < 300; i += 7) await store.delete(ref(i)); // garbage and tombstones in the shards
    for (let i = 1; i < 300; i += 11) await store.put(ref(i), randomBytes(random, 900)); // overwrites
    const { findings, time, pass } = scrubFast(store);
    await pass(1);
    const stats = store.stats();
    expect(stats.shards.length).toBeGreaterThan(3);
    expect(findings).toEqual([]);
    expect(stats.scrub).toMatchObject({ state: "waiting", passes: 1, chunksScanned: stats.chunks, corruptFound: 0, passProgress: 1 });
    expect(stats.scrub.bytesScanned).toBeGreaterThan(0);
    expect(stats.scrub.lastPassMs).toBeGreaterThan(Date.now() - 60_000);
    // The wait between passes is the clock's, not a spin: nothing more happens until it passes.
    expect(time.sleeping()).toBe(1);
    time.advance(passIntervalMs);
    await pass(2);
    expect(store.stats().scrub.chunksScanned).toBe(2 * stats.chunks);
  });

  test("a damaged record is found within one pass, reported once a pass, and never served", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes });
    const data = await fill(store, 200);
    const victim = ref(57);
    const where = dataOffset(store, dir, victim);
    xorByteAt(where.file, where.at + 100, 0x10);
    const { findings, time, pass } = scrubFast(store);
    await pass(1);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ ref: victim, shardId: store.stat(victim).shardId, pass: 1 });
    expect(findings[0]?.detail).toContain("failed its checksum");
    expect(store.stats().scrub.corruptFound).toBe(1);
    await expect(store.get(victim)).rejects.toThrow(CorruptError);
    expect(same(await store.get(ref(58)), data.get(58) ?? new Uint8Array())).toBe(true);

    time.advance(passIntervalMs);
    await pass(2);
    expect(findings.map((f) => f.pass)).toEqual([1, 2]); // once a pass, not more

    // A good copy put over it (what the SPM's repair does): the next pass finds nothing.
    const good = data.get(57) ?? new Uint8Array();
    await store.put(victim, good);
    time.advance(passIntervalMs);
    await pass(3);
    expect(findings).toHaveLength(2);
    expect(same(await store.get(victim), good)).toBe(true);
  });

  test("a damaged record header is found too", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes });
    await fill(store, 60);
    const meta = store.stat(ref(9));
    xorByteAt(shardPath(dir, meta.shardId), meta.offset + 16, 0x01); // the seq in its header
    const { findings, pass } = scrubFast(store);
    await pass(1);
    expect(findings.map((f) => f.ref)).toEqual([ref(9)]);
    expect(findings[0]?.detail).toContain("damaged record header");
  });

  test("compaction, overwrites and deletes during a pass give no false positive", async () => {
    const store = await openStore({ shardBytes });
    const data = await fill(store, 400);
    for (let i = 0; i < 400; i += 2) {
      await store.delete(ref(i)); // every read-only shard is half garbage
      data.delete(i);
    }
    const findings: ScrubFinding[] = [];
    // Every sleep waits for the test: the pass moves one paced step at a time.
    const time = steppedClock(0);
    const rate = 64 * 1024;
    store.startScrub({ bytesPerSec: rate, passIntervalMs, clock: time.clock, onCorrupt: (f) => findings.push(f) });
    const step = async () => {
      await until("the scrub waits on its clock", () => time.sleeping() > 0 || store.stats().scrub.state === "waiting");
      time.advance(1000); // a second of tokens
    };
    await until("the pass has started", () => time.sleeping() > 0);
    let compacted = 0;
    for (let i = 0; store.stats().scrub.passes === 0; i += 1) {
      expect(i).toBeLessThan(10_000);
      if (compacted === 0 && store.stats().scrub.passProgress > 0.2) {
        // Mid-pass: rewrite and delete some chunks, then compact every shard with garbage.
        for (let j = 1; j < 400; j += 6) {
          const bytes = randomBytes(random, 700);
          data.set(j, bytes);
          await store.put(ref(j), bytes);
        }
        for (let j = 3; j < 400; j += 10) {
          await store.delete(ref(j));
          data.delete(j);
        }
        compacted = (await store.compact({ force: true })).shardsCompacted;
        expect(compacted).toBeGreaterThan(1);
        expect(store.stats().scrub.passes).toBe(0); // still the same pass
      }
      await step();
    }
    expect(compacted).toBeGreaterThan(1);
    expect(findings).toEqual([]);
    // The next pass reads every chunk where compaction left it, and all of it verifies.
    time.advance(passIntervalMs);
    for (let i = 0; store.stats().scrub.passes === 1; i += 1) {
      expect(i).toBeLessThan(10_000);
      await step();
    }
    expect(findings).toEqual([]);
    expect(store.stats().scrub.corruptFound).toBe(0);
    for (const [j, bytes] of data) expect(same(await store.get(ref(j)), bytes)).toBe(true);
  });

  test("a record compaction moved with its damage is found where it landed", async () => {
    const logs: string[] = [];
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes }, logs);
    await fill(store, 200);
    for (let i = 0; i < 200; i += 2) await store.delete(ref(i));
    const victim = ref(5);
    const before = store.stat(victim);
    const where = dataOffset(store, dir, victim);
    xorByteAt(where.file, where.at + 3, 0x80);
    expect((await store.compact({ force: true })).shardsCompacted).toBeGreaterThan(0);
    expect(store.stat(victim).shardId).not.toBe(before.shardId);
    const { findings, pass } = scrubFast(store);
    await pass(1);
    expect(findings.map((f) => [f.ref, f.shardId])).toEqual([[victim, store.stat(victim).shardId]]);
    expect(logs.some((line) => line.includes("scrub pass 1") && line.includes("obj-0001_5"))).toBe(true);
  });

  test("the rate is kept: bytes read never run ahead of the clock by more than one burst", async () => {
    const store = await openStore({ shardBytes: 4 * 1024 * 1024 });
    // Small records read many at a step, and records bigger than the burst, which must pay in full.
    await fill(store, 120, (i) => (i % 40 === 0 ? limits.scrubReadBytesMax + 300_000 : 3000 + ((i * 101) % 9000)));
    const time = steppedClock(passIntervalMs / 2);
    const rate = 512 * 1024;
    store.startScrub({ bytesPerSec: rate, passIntervalMs, clock: time.clock });
    await until("the first pass ends", () => store.stats().scrub.passes === 1);
    const { bytesScanned } = store.stats().scrub;
    expect(bytesScanned).toBeGreaterThan(4 * limits.scrubReadBytesMax);
    const elapsedMs = time.now();
    const leastMs = ((bytesScanned - Math.min(rate, limits.scrubReadBytesMax)) / rate) * 1000;
    expect(elapsedMs).toBeGreaterThanOrEqual(leastMs);
    expect(elapsedMs).toBeLessThan(leastMs * 1.05 + 100); // and no slower than it needs to be
  });

  test("passes over an empty store wait the interval: no spin", async () => {
    const store = await openStore();
    const time = steppedClock(Number.POSITIVE_INFINITY); // every sleep passes at once, in virtual time
    store.startScrub({ bytesPerSec: 1024 * 1024, passIntervalMs, clock: time.clock });
    await until("five passes", () => store.stats().scrub.passes >= 5);
    const { passes } = store.stats().scrub;
    expect(time.now()).toBeGreaterThanOrEqual((passes - 1) * passIntervalMs);
    expect(store.stats().scrub).toMatchObject({ chunksScanned: 0, bytesScanned: 0, corruptFound: 0 });
  });

  test("a record that cannot be read is a finding; its neighbours in the same read are not", async () => {
    const dir = tempDir();
    const store0 = await openStore({ dir });
    await fill(store0, 40, () => 12_000); // three blocks and more each, so one bad block is inside one record
    const bad = store0.stat(ref(17));
    await store0.close();
    forget(store0);
    // EIO for any read that covers one 4 KiB block inside record 17, as from a failing sector.
    const badByte = Math.ceil(bad.offset / 4096) * 4096 + 4096;
    const io: FileIo = {
      ...nodeFileIo,
      read: (fd, buffer, offset, length, position) => {
        if (position <= badByte && badByte < position + length) {
          return Promise.reject(Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" }));
        }
        return nodeFileIo.read(fd, buffer, offset, length, position);
      },
    };
    const store = await openStore({ dir, io });
    const { findings, pass } = scrubFast(store);
    await pass(1);
    expect(findings.map((f) => f.ref)).toEqual([ref(17)]);
    expect(findings[0]?.detail).toContain("EIO");
    expect(store.stats().scrub.chunksScanned).toBe(40);
  });

  test("reads go around the page cache, even for small records, a bounded step at a time", async () => {
    const directFds = new Set<number>();
    const reads = { direct: 0, buffered: 0, directBytesMax: 0 };
    const io: FileIo = {
      ...nodeFileIo,
      openDirect: (file) => {
        const fd = nodeFileIo.openDirect?.(file);
        if (fd !== undefined) directFds.add(fd);
        return fd;
      },
      read: (fd, buffer, offset, length, position) => {
        if (directFds.has(fd)) {
          reads.direct += 1;
          reads.directBytesMax = Math.max(reads.directBytesMax, length);
        } else {
          reads.buffered += 1;
        }
        return nodeFileIo.read(fd, buffer, offset, length, position);
      },
    };
    const store = await openStore({ io });
    // One shard of more rows than one index page, of records far smaller than a step.
    const count = 2 * limits.scrubRowsPerPageMax + 17;
    await fill(store, count, () => 3000);
    const before = { ...reads };
    await scrubFast(store).pass(1);
    expect(store.stats().shards).toHaveLength(1);
    expect(store.stats().scrub.chunksScanned).toBe(count);
    if (directFds.size === 0) return; // a file system without O_DIRECT (tmpfs): buffered is all there is
    expect(reads.buffered).toBe(before.buffered);
    // Neighbours share a read (far fewer reads than records), and no read passes one step plus
    // the blocks around it.
    const directReads = reads.direct - before.direct;
    expect(directReads).toBeGreaterThan(0);
    expect(directReads).toBeLessThan(count / 10);
    expect(reads.directBytesMax).toBeLessThanOrEqual(limits.scrubReadBytesMax + 2 * 4096);
  });

  test("closing the store stops a pass under way, and the scrub's knobs are checked", async () => {
    const store = await openStore({ shardBytes });
    await fill(store, 200);
    expect(store.stats().scrub).toMatchObject({ state: "off", ratePerSec: 0 });
    expect(() => store.startScrub({ bytesPerSec: 0 })).toThrow(BadRequestError);
    expect(() => store.startScrub({ bytesPerSec: 1024, passIntervalMs: limits.scrubPassIntervalMsMin - 1 })).toThrow(BadRequestError);
    const time = steppedClock(0);
    store.startScrub({ bytesPerSec: 1024, passIntervalMs, clock: time.clock });
    expect(() => store.startScrub({ bytesPerSec: 1024 })).toThrow(BadRequestError);
    await until("the scrub waits for tokens", () => time.sleeping() > 0);
    expect(store.stats().scrub).toMatchObject({ state: "scanning", passes: 0, ratePerSec: 1024 });
    await store.close(); // never advanced: close must not wait for the clock
    forget(store);
  });
});

test("dataOffset points into the record's data", async () => {
  const dir = tempDir();
  const store = await openStore({ dir });
  const bytes = new Uint8Array(64).map((_, i) => i);
  await store.put(ref(0), bytes);
  const where = dataOffset(store, dir, ref(0));
  xorByteAt(where.file, where.at + 5, 0xff);
  await expect(store.get(ref(0))).rejects.toThrow("failed its checksum");
  expect(path.basename(where.file)).toBe("00000001.shard");
});
