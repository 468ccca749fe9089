// Metadata that outgrows one frame: listing pages end early by bytes, a ball's chunk records
// travel in pages both ways (staged ahead of a big commit, read back a page at a time), batches
// split by bytes, and ballChunksMax is reachable and enforced at its edge. Every page is encoded
// with the real codec and must fit a frame.
import { afterEach, describe, expect, test } from "bun:test";
import type { CatalogStore } from "../../src/catalog/index.ts";
import { encodeMessage, messageBodyBytes } from "../../src/protocol/codec.ts";
import { limits } from "../../src/lib/limits.ts";
import { Coalescer } from "../../src/lib/coalescer.ts";
import { ballMetaWireBytes, chunkRecordWireBytes } from "../../src/lib/wire-size.ts";
import { ballOf, peerRecord } from "./fixtures/catalog-records.ts";
import { chunksPageArgs, stagedChunks, stagedCount } from "../../src/protocol/ball.ts";
import { routerOps } from "../../src/protocol/router.ts";
import { rejection } from "../support/errors.ts";
import { forEachEngine } from "../support/catalog-engines.ts";

const wireBytes = (value: unknown) => messageBodyBytes(encodeMessage({ id: 1, ok: true, result: value }));

/** 64 tags of ~1 KiB names and values: the most a ball may carry. */
function heavyTags(seed: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: limits.tagCountMax }, (_, i) => [`t${seed}-${i}-${"n".repeat(1000)}`, "v".repeat(limits.tagBytesMax)]));
}


forEachEngine("catalog-pages", (engine) => {
  async function setup(): Promise<CatalogStore> {
    const { store } = await engine.open();
    for (const id of ["p1", "p2", "p3"]) await store.upsertPeer(peerRecord(id));
    return store;
  }

  describe("listing pages", () => {
    test("a page of balls with the largest tag sets ends early by bytes, fits a frame, and the pages cover every ball once", async () => {
      const catalog = await setup();
      const count = 120; // ~128 KiB of tags each: 15 MiB in all, more than a frame
      for (let n = 0; n < count; n += 1) {
        const { ball, chunks } = ballOf({ key: `k${String(n).padStart(4, "0")}`, objectId: `o${n}`, peers: [["p1", "p2"]], tags: heavyTags(n) });
        await catalog.commitBall(ball, chunks, {});
      }
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      for (;;) {
        const page = await catalog.listBalls({ bucket: "bucket", limit: limits.listPageMax, ...(after === undefined ? {} : { after }) });
        pages += 1;
        expect(page.balls.length).toBeGreaterThan(0);
        expect(page.balls.reduce((sum, ball) => sum + ballMetaWireBytes(ball), 0)).toBeLessThanOrEqual(limits.metadataPageBytesMax);
        expect(wireBytes(page)).toBeLessThan(limits.frameBytesMax);
        seen.push(...page.balls.map((ball) => ball.key));
        if (page.next === undefined) break;
        after = page.next;
      }
      expect(pages).toBeGreaterThan(1);
      expect(seen).toEqual(Array.from({ length: count }, (_, n) => `k${String(n).padStart(4, "0")}`));
    });

  });

  describe("a ball of many chunks", () => {
    test(`its chunk records are staged in pages, committed at exactly ballChunksMax (${limits.ballChunksMax}), and read back a page at a time; one more is refused`, async () => {
      const catalog = await setup();
      const n = limits.ballChunksMax;
      await catalog.addIntent({ objectId: "big", bucket: "bucket", key: "big", createdMs: 1, expiresMs: 1e15, placements: [] });
      const record = (index: number) => ({ index, size: 1, checksum: (index % 65536).toString(16).padStart(16, "0"), peers: ["p1", "p2"] });
      const pageLength = limits.chunkRecordsPageMax;
      let staged = 0;
      for (let from = 0; from < n - pageLength; from += pageLength) {
        const page = Array.from({ length: pageLength }, (_, i) => record(from + i));
        expect(wireBytes(page)).toBeLessThan(limits.frameBytesMax);
        staged = await catalog.stageChunks("big", page, 1e15);
      }
      expect(staged).toBe(n - pageLength);
      const last = Array.from({ length: pageLength }, (_, i) => record(staged + i));
      const ball = { bucket: "bucket", key: "big", ballId: "big", objectId: "big", size: n, checksum: "0".repeat(64), contentType: "", tags: {}, rf: 2, createdMs: 1, chunkSize: 1, numChunks: n };
      expect((await catalog.commitBall(ball, last, { stagedChunks: staged })).version).toBe(1);
      const head = (await catalog.getBallHead("bucket", "big"))!;
      expect(head.chunks.length).toBe(pageLength);
      expect(wireBytes(head)).toBeLessThan(limits.frameBytesMax);
      let next = head.next;
      let read = head.chunks.length;
      while (next !== undefined) {
        const page = (await catalog.chunksPage("big", next))!;
        expect(page.chunks[0]!.index).toBe(next);
        read += page.chunks.length;
        next = page.next;
      }
      expect(read).toBe(n);
      // The limit itself: a ball of one more chunk cannot be described, nor staged past the end.
      expect((await rejection(catalog.commitBall({ ...ball, key: "bigger", objectId: "bigger", numChunks: n + 1 }, [], {}))).code).toBe("bad_request");
      await catalog.addIntent({ objectId: "bigger", bucket: "bucket", key: "bigger", createdMs: 1, expiresMs: 1e15, placements: [] });
      expect((await rejection(catalog.stageChunks("bigger", [record(n)], 1e15))).code).toBe("conflict");
    }, 120_000);

    test("a commit naming more staged records than were staged is refused and changes nothing", async () => {
      const catalog = await setup();
      await catalog.addIntent({ objectId: "o1", bucket: "bucket", key: "k", createdMs: 1, expiresMs: 1e15, placements: [] });
      await catalog.stageChunks("o1", [{ index: 0, size: 1, checksum: "0".repeat(16), peers: ["p1"] }], 1e15);
      const ball = { bucket: "bucket", key: "k", ballId: "k", objectId: "o1", size: 3, checksum: "0".repeat(64), contentType: "", tags: {}, rf: 1, createdMs: 1, chunkSize: 1, numChunks: 3 };
      const error = await rejection(catalog.commitBall(ball, [{ index: 2, size: 1, checksum: "0".repeat(16), peers: ["p1"] }], { stagedChunks: 2 }));
      expect(error.code).toBe("conflict");
      expect((await catalog.stats()).balls).toBe(0);
      expect((await rejection(catalog.stageChunks("o1", [{ index: 5, size: 1, checksum: "0".repeat(16), peers: ["p1"] }], 1e15))).message).toContain("in order");
    });
  });
});

describe("wire estimates", () => {
  test("the byte estimate never undercounts what the codec writes", async () => {
    const { ball, chunks } = ballOf({ key: "k".repeat(limits.keyBytesMax), objectId: "o-estimate", peers: [["p1", "p2", "p3"]], tags: heavyTags(1) });
    expect(ballMetaWireBytes(ball)).toBeGreaterThanOrEqual(wireBytes({ ...ball, version: 1 }) - 16);
    for (const chunk of chunks) expect(chunkRecordWireBytes(chunk)).toBeGreaterThanOrEqual(wireBytes(chunk) - 16);
  });
});

describe("batches", () => {
  test("a coalesced batch is cut by bytes as well as by count: no batch passes the bound, unless one item alone does", async () => {
    const sent: number[][] = [];
    const coalescer = new Coalescer<number, number>(
      async (items) => {
        sent.push(items);
        return items.map((value) => ({ ok: true as const, value }));
      },
      64,
      { of: (item) => item, max: 1000 },
    );
    const sizes = [400, 400, 400, 1500, 10, 990, 20];
    expect(await Promise.all(sizes.map((size) => coalescer.call(size)))).toEqual(sizes);
    expect(sent).toEqual([[400, 400], [400], [1500], [10, 990], [20]]);
  });
});

describe("the protocol's edges", () => {
  test("a commit may name up to ballChunksMax staged records and a page up to chunkRecordsPageMax, not one more", async () => {
    expect(stagedCount.safeParse(limits.ballChunksMax).success).toBe(true);
    expect(stagedCount.safeParse(limits.ballChunksMax + 1).success).toBe(false);
    const record = (index: number) => ({ index, size: 1, checksum: "0".repeat(16), peers: ["p1"] });
    expect(stagedChunks.safeParse(Array.from({ length: limits.chunkRecordsPageMax }, (_, i) => record(i))).success).toBe(true);
    expect(stagedChunks.safeParse(Array.from({ length: limits.chunkRecordsPageMax + 1 }, (_, i) => record(i))).success).toBe(false);
    const commit = routerOps["ball.commit"].args;
    const declaration = { bucket: "b", key: "k", size: 1, checksum: "0".repeat(64), contentType: "", tags: {}, rf: 1, chunkSize: 1, objectId: "01a23435-0000-7000-8000-000000000001" };
    expect(commit.safeParse({ ...declaration, chunks: [record(0)], stagedChunks: limits.ballChunksMax }).success).toBe(true);
    expect(commit.safeParse({ ...declaration, chunks: Array.from({ length: limits.chunkRecordsPageMax + 1 }, (_, i) => record(i)) }).success).toBe(false);
    expect(chunksPageArgs.safeParse({ objectId: declaration.objectId, fromIndex: 0, limit: limits.chunkRecordsPageMax + 1 }).success).toBe(false);
  });
});
