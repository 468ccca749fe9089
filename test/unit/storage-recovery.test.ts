// Recovery: torn tails, flipped bits, a lost index, and kill -9 in the middle of writing.
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chunkChecksum } from "../../src/lib/checksum.ts";
import { CorruptError, NotFoundError } from "../../src/lib/errors.ts";
import { ChunkStore, type ChunkRef, type StoreOptions } from "../../src/storage/index.ts";
import { encodeRecord, RecordKind } from "../../src/storage/record.ts";
import { storeFixture } from "../support/storage.ts";
import { overwriteAt, xorByteAt } from "../support/corrupt.ts";

const { tempDir, openStore, closeAll } = storeFixture("recovery");

const ref = (ball: string, index = 0): ChunkRef => ({ bucket: "b", ball, index });
const payload = (i: number, size = 300 + (i % 7) * 100) => new Uint8Array(size).map((_, j) => (i * 31 + j) % 256);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const shardPath = (dir: string, id: number) => path.join(dir, "shards", `${String(id).padStart(8, "0")}.shard`);

async function fill(store: ChunkStore, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, i) => store.put(ref("c", i), payload(i))));
}

async function expectAll(store: ChunkStore, count: number, skip = new Set<number>()): Promise<void> {
  for (let i = 0; i < count; i += 1) {
    if (skip.has(i)) continue;
    expect(same(await store.get(ref("c", i)), payload(i))).toBe(true);
  }
}

describe("torn tails", () => {
  const tails: [string, (good: Uint8Array) => Uint8Array][] = [
    ["half a record", (rec) => rec.subarray(0, Math.floor(rec.length / 2))],
    ["a header with no data", (rec) => rec.subarray(0, rec.length - 300)],
    ["a whole record with zeroed data", (rec) => rec.map((v, i) => (i >= rec.length - 300 ? 0 : v))],
    ["random garbage", () => new Uint8Array(777).map((_, i) => (i * 131 + 7) % 256)],
    ["zeros (a pre-extended file)", () => new Uint8Array(4096)],
    ["a lone magic", () => new Uint8Array([0x4d, 0x58, 0x52, 0x43, 1, 1])],
  ];
  test.each(tails)("%s at the end of the active shard is cut on open", async (_name, makeTail) => {
    const dir = tempDir();
    const store = await openStore({ dir });
    await fill(store, 40);
    await closeAll();
    const file = shardPath(dir, 1);
    const goodSize = fs.statSync(file).size;
    const data = payload(999, 300);
    const rec = encodeRecord(
      { kind: RecordKind.put, bucket: "b", ball: "torn", index: 0, seq: 10_000, createdMs: 1, dataBytes: data.length, dataChecksum: chunkChecksum(data) },
      data,
    );
    fs.appendFileSync(file, makeTail(rec));
    expect(fs.statSync(file).size).toBeGreaterThan(goodSize);
    const logs: string[] = [];
    const again = await openStore({ dir }, logs);
    expect(fs.statSync(file).size).toBe(goodSize);
    expect(logs.join("\n")).toContain("torn tail");
    await expectAll(again, 40);
    await expect(again.get(ref("torn"))).rejects.toThrow(NotFoundError);
    await again.put(ref("new"), payload(5));
    expect(same(await again.get(ref("new")), payload(5))).toBe(true);
    await closeAll();
    const third = await openStore({ dir });
    expect(same(await third.get(ref("new")), payload(5))).toBe(true);
    await expectAll(third, 40);
  });

  test("records written after the checkpoint but never indexed are found on open", async () => {
    const dir = tempDir();
    const store = await openStore({ dir });
    await fill(store, 5);
    await closeAll();
    // Simulate a crash between fsync and index commit: append valid records, index unaware.
    const data = payload(77);
    const rec = encodeRecord(
      { kind: RecordKind.put, bucket: "b", ball: "late", index: 0, seq: 1_000, createdMs: 5, dataBytes: data.length, dataChecksum: chunkChecksum(data) },
      data,
    );
    fs.appendFileSync(shardPath(dir, 1), rec);
    const again = await openStore({ dir });
    expect(same(await again.get(ref("late")), data)).toBe(true);
    const next = await again.put(ref("after"), payload(1));
    expect(next.seq).toBeGreaterThan(1_000);
  });
});

describe("flipped bytes", () => {
  test("a flipped byte in a chunk's data is CorruptError for that chunk only", async () => {
    const dir = tempDir();
    const store = await openStore({ dir });
    await fill(store, 30);
    const victim = store.stat(ref("c", 12));
    const headerBytes = 56 + 1 + 1;
    xorByteAt(shardPath(dir, 1), victim.offset + headerBytes + 17, 0x40);
    const err = await store.get(ref("c", 12)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptError);
    expect((err as Error).message).toBe("chunk b/c_12 in shard 1 failed its checksum");
    await expect(store.get(ref("c", 12), { offset: 0, length: 1 })).rejects.toThrow(CorruptError);
    const many = await store.getMany([ref("c", 11), ref("c", 12)]);
    expect(many[0]?.ok).toBe(true);
    expect(many[1]).toMatchObject({ ok: false, code: "corrupt" });
    await expectAll(store, 30, new Set([12]));
  });

  test("a flipped byte in a record header is CorruptError too", async () => {
    const dir = tempDir();
    const store = await openStore({ dir });
    await fill(store, 10);
    const victim = store.stat(ref("c", 4));
    overwriteAt(shardPath(dir, 1), victim.offset + 20, Buffer.from([0xff])); // inside seq
    await expect(store.get(ref("c", 4))).rejects.toThrow(CorruptError);
    await expectAll(store, 10, new Set([4]));
  });

  test("damage in the middle of a shard is skipped on rebuild; records after it survive", async () => {
    const dir = tempDir();
    const store = await openStore({ dir });
    await fill(store, 20);
    const victim = store.stat(ref("c", 8));
    await closeAll();
    overwriteAt(shardPath(dir, 1), victim.offset + 2, Buffer.alloc(8, 0xaa)); // breaks the header
    const sizeBefore = fs.statSync(shardPath(dir, 1)).size;
    const logs: string[] = [];
    for (const s of ["", "-wal", "-shm"]) fs.rmSync(path.join(dir, `index.sqlite${s}`), { force: true });
    const again = await openStore({ dir }, logs);
    expect(fs.statSync(shardPath(dir, 1)).size).toBe(sizeBefore); // not mistaken for a torn tail
    expect(logs.join("\n")).toContain("damaged");
    await expect(again.get(ref("c", 8))).rejects.toThrow(NotFoundError);
    await expectAll(again, 20, new Set([8]));
  });
});

describe("rebuilding the index", () => {
  test("deleting index.sqlite (and -wal, -shm) loses nothing: rebuildIndex restores chunks and meta", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes: 8 * 1024 });
    await fill(store, 200);
    await store.put(ref("c", 3), payload(3, 10)); // overwritten: the newer one must win
    await store.delete(ref("c", 5));
    const metas = store.list({ limit: 1000 }).chunks;
    const before = store.stats();
    expect(before.shards.length).toBeGreaterThan(3);
    await closeAll();
    for (const s of ["", "-wal", "-shm"]) fs.rmSync(path.join(dir, `index.sqlite${s}`), { force: true });
    const rebuilt = await ChunkStore.rebuildIndex({ dir, shardBytes: 8 * 1024, log: () => undefined });
    expect(rebuilt).toEqual({ chunks: 199, shards: before.shards.length });
    const again = await openStore({ dir, shardBytes: 8 * 1024 });
    expect(again.list({ limit: 1000 }).chunks).toEqual(metas);
    expect(same(await again.get(ref("c", 3)), payload(3, 10))).toBe(true);
    await expect(again.get(ref("c", 5))).rejects.toThrow(NotFoundError);
    await expectAll(again, 200, new Set([3, 5]));
    const after = again.stats();
    expect(after.usedBytes).toBe(before.usedBytes);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.shards.map((s) => [s.id, s.state, s.bytes])).toEqual(before.shards.map((s) => [s.id, s.state, s.bytes]));
  });

  test("a shard file missing under the index is refused with a clear error", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes: 4096 });
    await fill(store, 30);
    await closeAll();
    fs.rmSync(shardPath(dir, 2));
    await expect(ChunkStore.open({ dir, log: () => undefined })).rejects.toThrow(/shard 2 is in the index but .* is missing/);
  });

  test("the index reflects the shard table and checkpoint in SQLite", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes: 4096 });
    await fill(store, 30);
    const stats = store.stats();
    await closeAll();
    const db = new Database(path.join(dir, "index.sqlite"), { readonly: true });
    const rows = db.query("SELECT id, state, bytes FROM shards ORDER BY id").all() as { id: number; state: string; bytes: number }[];
    const meta = Object.fromEntries((db.query("SELECT key, value FROM meta").all() as { key: string; value: number }[]).map((r) => [r.key, r.value]));
    db.close();
    expect(rows.map((r) => r.state).filter((s) => s === "active")).toHaveLength(1);
    expect(rows.map((r) => [r.id, r.bytes])).toEqual(stats.shards.map((s) => [s.id, s.bytes]));
    const active = rows.find((r) => r.state === "active");
    expect(meta.checkpoint_shard).toBe(active?.id);
    expect(meta.checkpoint_offset).toBe(active?.bytes);
  });
});

// A child process writes (and in one mode compacts) as fast as it can and prints each
// acknowledged put and delete; we kill -9 it at a random moment, reopen, and every acknowledged
// put must read back exact and every acknowledged delete must hold, for every round so far and
// again after rebuilding the index from the shards alone.
const writerScript = `
import { ChunkStore } from ${JSON.stringify(path.resolve(import.meta.dir, "../../src/storage/index.ts"))};
const [dir, round, mode] = process.argv.slice(2);
const store = await ChunkStore.open({ dir, shardBytes: 128 * 1024, log: () => undefined });
const payload = (r, i) => new Uint8Array(100 + ((i * 7919) % 20000)).map((_, j) => (r * 17 + i * 31 + j) % 251);
const deleteEvery = mode === "compact" ? 2 : 10;
let i = 0;
const worker = async () => {
  for (;;) {
    const n = i++;
    const ref = { bucket: "crash", ball: "r" + round, index: n };
    if (n >= 5 && n % deleteEvery === deleteEvery - 1) {
      process.stdout.write("d " + (n - 5) + "\\n");
      await store.delete({ bucket: "crash", ball: "r" + round, index: n - 5 });
      process.stdout.write("D " + (n - 5) + "\\n");
    }
    await store.put(ref, payload(Number(round), n));
    process.stdout.write("P " + n + "\\n");
  }
};
const compactor = async () => {
  for (;;) { await store.compact({ force: true }); await Bun.sleep(1); }
};
process.stdout.write("ready\\n");
await Promise.all([...Array.from({ length: 16 }, worker), ...(mode === "compact" ? [compactor()] : [])]);
`;

const crashPayload = (r: number, i: number) => new Uint8Array(100 + ((i * 7919) % 20000)).map((_, j) => (r * 17 + i * 31 + j) % 251);

interface RoundLog {
  round: number;
  acked: Set<number>;
  /** A delete was issued: it may or may not have landed. */
  deleting: Set<number>;
  /** A delete was acknowledged: it must have landed. */
  deleted: Set<number>;
}

async function runAndKill(script: string, storeDir: string, round: number, mode: string, delayMs: number): Promise<RoundLog> {
  const child = Bun.spawn([process.execPath, script, storeDir, String(round), mode], { stdout: "pipe", stderr: "inherit" });
  let out = "";
  const reader = (async () => {
    for await (const chunk of child.stdout) out += new TextDecoder().decode(chunk);
  })();
  while (!out.includes("ready")) await Bun.sleep(5);
  await Bun.sleep(delayMs);
  child.kill("SIGKILL");
  await child.exited;
  await reader;
  const log: RoundLog = { round, acked: new Set(), deleting: new Set(), deleted: new Set() };
  for (const line of out.split("\n")) {
    const [kind, n] = line.split(" ");
    if (kind === "P") log.acked.add(Number(n));
    if (kind === "d") log.deleting.add(Number(n));
    if (kind === "D") log.deleted.add(Number(n));
  }
  return log;
}

async function checkRound(store: ChunkStore, log: RoundLog): Promise<number> {
  let exact = 0;
  for (const n of log.acked) {
    const got = store.get({ bucket: "crash", ball: `r${log.round}`, index: n });
    if (log.deleted.has(n)) {
      await expect(got).rejects.toThrow(NotFoundError);
    } else if (log.deleting.has(n)) {
      const bytes = await got.catch((e: unknown) => (e instanceof NotFoundError ? undefined : Promise.reject(e)));
      if (bytes) expect(same(bytes, crashPayload(log.round, n))).toBe(true);
    } else {
      expect(same(await got, crashPayload(log.round, n))).toBe(true);
      exact += 1;
    }
  }
  return exact;
}

/** Whatever was not acknowledged is absent or whole: nothing listed may fail its checksum. */
async function checkListed(store: ChunkStore): Promise<void> {
  let after: string | undefined;
  do {
    const page = store.list({ bucket: "crash", limit: 1000, ...(after ? { after } : {}) });
    for (const m of page.chunks) expect(chunkChecksum(await store.get(m)) === m.checksum).toBe(true);
    after = page.next;
  } while (after);
}

async function crashRounds(mode: "write" | "compact", rounds: number): Promise<void> {
  const dir = tempDir();
  const script = path.join(dir, "writer.ts");
  fs.writeFileSync(script, writerScript);
  const storeDir = path.join(dir, "store");
  const seed = Number(process.env.MICTLANX_SEED ?? Date.now() % 100_000);
  console.log(`kill -9 test (${mode}) seed ${seed}`);
  const logs: RoundLog[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const log = await runAndKill(script, storeDir, round, mode, 50 + ((seed * (round + 3)) % 300));
    expect(log.acked.size).toBeGreaterThan(0);
    logs.push(log);
    const store = await openStore({ dir: storeDir, shardBytes: 128 * 1024 });
    for (const l of logs) expect(await checkRound(store, l)).toBeGreaterThan(0);
    await checkListed(store);
    console.log(`round ${round}: ${log.acked.size} puts and ${log.deleted.size} deletes acknowledged before the kill`);
    await closeAll();
  }
  if (mode === "compact") {
    const ids = fs.readdirSync(path.join(storeDir, "shards")).map((f) => Number.parseInt(f, 10));
    expect(Math.max(...ids)).toBeGreaterThan(ids.length); // compaction removed shards
  }
  await ChunkStore.rebuildIndex({ dir: storeDir, shardBytes: 128 * 1024, log: () => undefined });
  const rebuilt = await openStore({ dir: storeDir, shardBytes: 128 * 1024 });
  for (const l of logs) await checkRound(rebuilt, l);
  await checkListed(rebuilt);
}

describe("kill -9", () => {
  test("every acknowledged put and delete survives a kill at a random moment, over several rounds", async () => {
    await crashRounds("write", 4);
  }, 60_000);

  test("the same while compaction runs flat out under the writers", async () => {
    await crashRounds("compact", 5);
  }, 60_000);
});
