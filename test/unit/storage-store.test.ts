// ChunkStore's API: puts, reads, ranges, batches, listing, deletes, capacity, disk errors, and
// the group-commit promise (nothing resolves before its fsync).
import { afterEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chunkChecksum } from "../../src/lib/checksum.ts";
import { BadRequestError, ConflictError, CorruptError, FullError, MictlanxError, NotFoundError } from "../../src/lib/errors.ts";
import { limits } from "../../src/lib/limits.ts";
import { ChunkStore, type ChunkRef, type FileIo, type StoreOptions } from "../../src/storage/index.ts";
import { nodeFileIo } from "../../src/storage/shard-file.ts";
import { chunkBallBytesMax } from "../../src/storage/record.ts";
import { quiet, storeFixture } from "../support/storage.ts";

const { tempDir, openStore, closeAll } = storeFixture("store");

const ref = (ball: string, index = 0, bucket = "b"): ChunkRef => ({ bucket, ball, index });
const bytesOf = (text: string) => new TextEncoder().encode(text);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const shardFiles = (dir: string) => fs.readdirSync(path.join(dir, "shards")).sort();

describe("put and get", () => {
  test("a put reads back exact, with its meta", async () => {
    const store = await openStore();
    const data = bytesOf("the quick brown fox");
    const meta = await store.put(ref("fox", 3), data);
    expect(meta).toMatchObject({ bucket: "b", ball: "fox", index: 3, size: data.length, checksum: chunkChecksum(data), shardId: 1 });
    expect(same(await store.get(ref("fox", 3)), data)).toBe(true);
    expect(store.stat(ref("fox", 3))).toEqual(meta);
  });

  test("an empty chunk and a chunk of the largest size both round trip", async () => {
    const store = await openStore();
    const big = new Uint8Array(limits.chunkBytesMax).map((_, i) => i % 251);
    await store.put(ref("empty"), new Uint8Array(0));
    await store.put(ref("big"), big);
    expect((await store.get(ref("empty"))).length).toBe(0);
    expect(same(await store.get(ref("big")), big)).toBe(true);
    await expect(store.put(ref("too-big"), new Uint8Array(limits.chunkBytesMax + 1))).rejects.toThrow(BadRequestError);
  });

  test("overwrite replaces the chunk; the old bytes become garbage", async () => {
    const store = await openStore();
    const first = await store.put(ref("x"), bytesOf("one"));
    const second = await store.put(ref("x"), bytesOf("two!"));
    expect(second.seq).toBeGreaterThan(first.seq);
    expect(new TextDecoder().decode(await store.get(ref("x")))).toBe("two!");
    expect(store.stats().chunks).toBe(1);
    const shard = store.stats().shards[0];
    expect(shard && shard.bytes - shard.liveBytes).toBeGreaterThan(0);
  });

  test("a missing chunk is NotFoundError", async () => {
    const store = await openStore();
    await expect(store.get(ref("nope"))).rejects.toThrow(NotFoundError);
    expect(() => store.stat(ref("nope"))).toThrow(NotFoundError);
    await expect(store.get(ref("nope"))).rejects.toThrow("chunk b/nope_0 not found");
  });

  test("a wrong expected checksum stores nothing and says CorruptError", async () => {
    const store = await openStore();
    const data = bytesOf("payload");
    await expect(store.put(ref("c"), data, chunkChecksum(data) ^ 1n)).rejects.toThrow(CorruptError);
    await expect(store.get(ref("c"))).rejects.toThrow(NotFoundError);
    expect(store.stats().usedBytes).toBe(0);
    await store.put(ref("c"), data, chunkChecksum(data));
    expect(same(await store.get(ref("c")), data)).toBe(true);
  });

  test("bad refs are BadRequestError for every operation", async () => {
    const store = await openStore();
    const bad = [
      { bucket: "", ball: "x", index: 0 },
      { bucket: "b", ball: "x".repeat(chunkBallBytesMax + 1), index: 0 },
      { bucket: "b", ball: "x", index: -1 },
      { bucket: "b", ball: "a\u0000b", index: 0 },
    ];
    for (const r of bad) {
      await expect(store.put(r, new Uint8Array(1))).rejects.toThrow(BadRequestError);
      await expect(store.get(r)).rejects.toThrow(BadRequestError);
      await expect(store.delete(r)).rejects.toThrow(BadRequestError);
      expect(() => store.stat(r)).toThrow(BadRequestError);
    }
    await expect(store.put(ref("x"), "text" as unknown as Uint8Array)).rejects.toThrow(BadRequestError);
    expect(store.stats().chunks).toBe(0);
  });
});

describe("ranges", () => {
  test("range reads slice the verified chunk", async () => {
    const store = await openStore();
    const data = new Uint8Array(1000).map((_, i) => i % 256);
    await store.put(ref("r"), data);
    expect(same(await store.get(ref("r"), { offset: 10, length: 20 }), data.subarray(10, 30))).toBe(true);
    expect((await store.get(ref("r"), { offset: 1000, length: 0 })).length).toBe(0);
    expect(same(await store.get(ref("r"), { offset: 0, length: 1000 }), data)).toBe(true);
  });

  test.each([
    [{ offset: 999, length: 2 }, "runs past the end"],
    [{ offset: 1001, length: 0 }, "runs past the end"],
    [{ offset: -1, length: 1 }, "non-negative integer"],
    [{ offset: 0, length: -1 }, "non-negative integer"],
    [{ offset: 0.5, length: 1 }, "non-negative integer"],
    [{ offset: 0, length: Number.NaN }, "non-negative integer"],
  ])("bad range %p is BadRequestError", async (range, message) => {
    const store = await openStore();
    await store.put(ref("r"), new Uint8Array(1000));
    await expect(store.get(ref("r"), range)).rejects.toThrow(BadRequestError);
    await expect(store.get(ref("r"), range)).rejects.toThrow(message);
  });
});

describe("batches", () => {
  test("putMany shares one fsync; getMany reports each chunk on its own", async () => {
    const store = await openStore();
    const items = Array.from({ length: 50 }, (_, i) => ({ ref: ref("batch", i), bytes: bytesOf(`chunk ${i}`) }));
    const before = store.stats().fsyncs;
    const metas = await store.putMany(items);
    expect(store.stats().fsyncs - before).toBe(1);
    expect(metas.map((m) => m.index)).toEqual(items.map((_, i) => i));
    const refs = [...items.map((i) => i.ref), ref("missing"), { bucket: "", ball: "x", index: 0 }];
    const got = await store.getMany(refs);
    items.forEach((item, i) => {
      const r = got[i];
      expect(r?.ok && same(r.bytes, item.bytes) && r.meta.index === i).toBe(true);
    });
    expect(got[50]).toMatchObject({ ok: false, code: "not_found" });
    expect(got[51]).toMatchObject({ ok: false, code: "bad_request" });
  });

  test("a putMany with one bad item or checksum stores none", async () => {
    const store = await openStore();
    const good = { ref: ref("g"), bytes: bytesOf("good") };
    await expect(store.putMany([good, { ref: ref("g", -1), bytes: bytesOf("bad") }])).rejects.toThrow(BadRequestError);
    await expect(store.putMany([good, { ref: ref("h"), bytes: bytesOf("x"), checksum: 5n }])).rejects.toThrow(CorruptError);
    expect(store.stats().chunks).toBe(0);
    expect(store.stats().usedBytes).toBe(0);
    await expect(store.putMany([])).rejects.toThrow(BadRequestError);
    const tooMany = Array.from({ length: limits.batchChunksMax + 1 }, (_, i) => ({ ref: ref("t", i), bytes: new Uint8Array(0) }));
    await expect(store.putMany(tooMany)).rejects.toThrow(BadRequestError);
  });

  test("concurrent puts share fsyncs (group commit)", async () => {
    const store = await openStore();
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.put(ref("gc", i), new Uint8Array(4096).fill(i))));
    const { fsyncs, fsyncBatchWritesTotal } = store.stats();
    expect(fsyncBatchWritesTotal).toBe(200);
    expect(fsyncs).toBeLessThan(20);
    for (let i = 0; i < 200; i += 37) expect((await store.get(ref("gc", i)))[0]).toBe(i % 256);
  });
});

describe("delete", () => {
  test("delete removes, says false when absent, and is durable", async () => {
    const dir = tempDir();
    const store = await openStore({ dir });
    await store.put(ref("d"), bytesOf("bye"));
    expect(await store.delete(ref("d"))).toBe(true);
    expect(await store.delete(ref("d"))).toBe(false);
    expect(await store.delete(ref("never"))).toBe(false);
    await expect(store.get(ref("d"))).rejects.toThrow(NotFoundError);
    await store.close();
    const again = await openStore({ dir });
    await expect(again.get(ref("d"))).rejects.toThrow(NotFoundError);
    expect(again.stats().chunks).toBe(0);
  });

  test("a delete queued right after a put deletes it; a put after a delete brings it back", async () => {
    const store = await openStore();
    const put = store.put(ref("race"), bytesOf("v1"));
    const del = store.delete(ref("race"));
    await put;
    expect(await del).toBe(true);
    await expect(store.get(ref("race"))).rejects.toThrow(NotFoundError);
    await store.put(ref("race"), bytesOf("v2"));
    expect(new TextDecoder().decode(await store.get(ref("race")))).toBe("v2");
  });
});

describe("list", () => {
  test("pages in key order with a cursor, by bucket and ball prefix", async () => {
    const store = await openStore();
    const balls = ["a", "ab", "abc", "b", "zz", "é", "日本"];
    for (const bucket of ["b1", "b2"]) {
      await store.putMany(balls.flatMap((ball) => [0, 1, 10].map((i) => ({ ref: ref(ball, i, bucket), bytes: bytesOf(ball) }))));
    }
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = store.list({ bucket: "b1", limit: 4, ...(after ? { after } : {}) });
      expect(page.chunks.length).toBeLessThanOrEqual(4);
      seen.push(...page.chunks.map((c) => `${c.bucket}/${c.ball}_${c.index}`));
      after = page.next;
      pages += 1;
    } while (after);
    const expected = [...balls]
      .sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
      .flatMap((ball) => [0, 1, 10].map((i) => `b1/${ball}_${i}`));
    expect(seen).toEqual(expected);
    expect(pages).toBe(Math.ceil(expected.length / 4));
    const prefixed = store.list({ bucket: "b2", ballPrefix: "ab", limit: 100 });
    expect(prefixed.chunks.map((c) => `${c.ball}_${c.index}`)).toEqual(["ab_0", "ab_1", "ab_10", "abc_0", "abc_1", "abc_10"]);
    expect(prefixed.next).toBeUndefined();
    expect(store.list({ limit: 1000 }).chunks.length).toBe(2 * balls.length * 3);
    expect(store.list({ bucket: "none", limit: 10 })).toEqual({ chunks: [] });
  });

  test("bad list queries are BadRequestError", () => {
    return openStore().then((store) => {
      expect(() => store.list({ limit: 0 })).toThrow(BadRequestError);
      expect(() => store.list({ limit: limits.listPageMax + 1 })).toThrow(BadRequestError);
      expect(() => store.list({ limit: 10, after: "garbage!" })).toThrow(BadRequestError);
      expect(() => store.list({ limit: 10, bucket: "" })).toThrow(BadRequestError);
      expect(() => store.list({ limit: 10, ballPrefix: "a\u0000" })).toThrow(BadRequestError);
    });
  });
});

/** FileIo that can fail writes with ENOSPC after writing part of them, or hold fsyncs. */
function faultyIo() {
  const state = { enospc: false, gate: undefined as Promise<void> | undefined, datasyncs: 0 };
  const io: FileIo = {
    ...nodeFileIo,
    writev: async (fd, buffers, position) => {
      if (!state.enospc) return nodeFileIo.writev(fd, buffers, position);
      const first = buffers[0] ?? new Uint8Array(0);
      await nodeFileIo.writev(fd, [first.subarray(0, Math.ceil(first.length / 2))], position); // half a record lands
      throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
    },
    datasync: async (fd) => {
      if (state.gate) await state.gate;
      state.datasyncs += 1;
      return nodeFileIo.datasync(fd);
    },
  };
  return { io, state };
}

describe("capacity and disk errors", () => {
  test("a put past capacity is FullError; earlier chunks stay; the store keeps working", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, capacityBytes: 64 * 1024 });
    const chunk = new Uint8Array(10_000).fill(1);
    let stored = 0;
    let error: unknown;
    for (let i = 0; i < 20 && !error; i += 1) {
      try {
        await store.put(ref("cap", i), chunk);
        stored += 1;
      } catch (e) {
        error = e;
      }
    }
    expect(error).toBeInstanceOf(FullError);
    expect((error as Error).message).toMatch(/^peer is full: .* of 64\.0 KiB used; free space or add a peer$/);
    expect(stored).toBe(6);
    const { usedBytes } = store.stats();
    expect(usedBytes).toBeLessThanOrEqual(64 * 1024);
    expect(fs.statSync(path.join(dir, "shards", "00000001.shard")).size).toBe(usedBytes);
    for (let i = 0; i < stored; i += 1) expect(same(await store.get(ref("cap", i)), chunk)).toBe(true);
    expect(await store.delete(ref("cap", 0))).toBe(true); // deletes still go through when full
    await store.put(ref("small"), new Uint8Array(100));
    expect((await store.get(ref("small"))).length).toBe(100);
  });

  test("ENOSPC from the disk is FullError and the half-written record is cut off", async () => {
    const dir = tempDir();
    const { io, state } = faultyIo();
    const store = await openStore({ dir, io });
    await store.put(ref("before"), bytesOf("safe"));
    const sizeBefore = fs.statSync(path.join(dir, "shards", "00000001.shard")).size;
    state.enospc = true;
    const err = await store.put(ref("during"), new Uint8Array(5000).fill(7)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FullError);
    expect((err as MictlanxError).message).toContain("ENOSPC");
    expect(fs.statSync(path.join(dir, "shards", "00000001.shard")).size).toBe(sizeBefore);
    state.enospc = false;
    await store.put(ref("after"), bytesOf("works"));
    await store.close();
    const again = await openStore({ dir });
    expect(new TextDecoder().decode(await again.get(ref("before")))).toBe("safe");
    expect(new TextDecoder().decode(await again.get(ref("after")))).toBe("works");
    await expect(again.get(ref("during"))).rejects.toThrow(NotFoundError);
  });

  test("if a failed append cannot even be cut back, the store stops taking writes until reopened", async () => {
    const dir = tempDir();
    const { io, state } = faultyIo();
    const broken: FileIo = {
      ...io,
      truncate: async (fd, length) => {
        if (state.enospc) throw Object.assign(new Error("EIO: i/o error"), { code: "EIO" });
        return nodeFileIo.truncate(fd, length);
      },
    };
    const store = await ChunkStore.open({ dir, io: broken, log: quiet });
    await store.put(ref("ok"), bytesOf("fine"));
    state.enospc = true;
    await expect(store.put(ref("x"), new Uint8Array(100))).rejects.toThrow(FullError);
    state.enospc = false;
    await expect(store.put(ref("y"), new Uint8Array(100))).rejects.toThrow("no more writes until it is reopened");
    expect(new TextDecoder().decode(await store.get(ref("ok")))).toBe("fine"); // reads still work
    await store.close();
    const logs: string[] = [];
    const again = await openStore({ dir, log: (m) => logs.push(m) });
    expect(logs.join("\n")).toContain("torn tail"); // the half record is cut on open
    expect(new TextDecoder().decode(await again.get(ref("ok")))).toBe("fine");
    await again.put(ref("y"), bytesOf("back"));
    expect(new TextDecoder().decode(await again.get(ref("y")))).toBe("back");
  });

  test("no put resolves before the fsync that covers it", async () => {
    const { io, state } = faultyIo();
    let open!: () => void;
    const store = await openStore({ io });
    state.gate = new Promise((resolve) => (open = resolve));
    let resolved = 0;
    const puts = Array.from({ length: 10 }, (_, i) => store.put(ref("gate", i), new Uint8Array(10)).then(() => (resolved += 1)));
    await Bun.sleep(50);
    expect(resolved).toBe(0);
    expect(state.datasyncs).toBe(0);
    open();
    await Promise.all(puts);
    expect(resolved).toBe(10);
    expect(state.datasyncs).toBeGreaterThanOrEqual(1);
  });

  test("a lone put does not wait long for company", async () => {
    const store = await openStore({ groupCommitWaitMs: 50 });
    await store.put(ref("warm"), new Uint8Array(1));
    const t0 = performance.now();
    await store.put(ref("lone"), new Uint8Array(1));
    expect(performance.now() - t0).toBeLessThan(50);
  });
});

describe("lifecycle", () => {
  test("a closed store refuses work; reopen finds everything", async () => {
    const dir = tempDir();
    const store = await ChunkStore.open({ dir, log: quiet });
    await store.put(ref("k"), bytesOf("kept"));
    await store.close();
    await expect(store.get(ref("k"))).rejects.toThrow("closed");
    const again = await openStore({ dir });
    expect(new TextDecoder().decode(await again.get(ref("k")))).toBe("kept");
    expect(shardFiles(dir)).toEqual(["00000001.shard"]);
  });

  test("a store open in one place cannot be opened or rebuilt in another", async () => {
    const dir = tempDir();
    const store = await openStore({ dir });
    await store.put(ref("mine"), bytesOf("one writer only"));
    await expect(ChunkStore.open({ dir, log: quiet })).rejects.toThrow(ConflictError);
    await expect(ChunkStore.rebuildIndex({ dir, log: quiet })).rejects.toThrow(ConflictError);
    expect(fs.existsSync(path.join(dir, "index.sqlite"))).toBe(true);
    expect(new TextDecoder().decode(await store.get(ref("mine")))).toBe("one writer only");
  });

  test("bad options are BadRequestError", async () => {
    await expect(ChunkStore.open({ dir: "" })).rejects.toThrow(BadRequestError);
    await expect(ChunkStore.open({ dir: tempDir(), shardBytes: 0 })).rejects.toThrow(BadRequestError);
    await expect(ChunkStore.open({ dir: tempDir(), compactionGarbageRatio: 2 })).rejects.toThrow(BadRequestError);
  });
});
