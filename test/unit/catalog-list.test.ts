// Listings in key order (code point order on both engines: sqlite's BINARY collation, and
// PostgreSQL's "C"), by prefix, by ball group and from any cursor, every page size.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { CatalogStore, ListBallsQuery } from "../../src/catalog/index.ts";
import { compareUtf8, prefixEnd } from "../../src/catalog/index.ts";
import { seededRandom } from "../support/random.ts";
import { ballOf, peerRecord } from "./fixtures/catalog-records.ts";
import { forEachEngine } from "../support/catalog-engines.ts";

/** Every page of a listing, following `next`, with a guard against a cursor that never ends. */
async function listAll(catalog: CatalogStore, q: Omit<ListBallsQuery, "after">): Promise<{ keys: string[]; pages: number }> {
  const keys: string[] = [];
  let after: string | undefined;
  for (let pages = 1; pages < 100_000; pages += 1) {
    const page = await catalog.listBalls({ ...q, ...(after === undefined ? {} : { after }) });
    expect(page.balls.length).toBeLessThanOrEqual(q.limit);
    if (page.next !== undefined) expect(page.balls.length).toBe(q.limit);
    keys.push(...page.balls.map((ball) => ball.key));
    if (page.next === undefined) return { keys, pages };
    after = page.next;
  }
  throw new Error("listing did not end");
}

function expected(keys: Iterable<string>, prefix = ""): string[] {
  return [...keys].filter((key) => key.startsWith(prefix)).sort(compareUtf8);
}

describe("prefixEnd and compareUtf8 agree with SQLite's order", () => {
  test("edges", async () => {
    expect(prefixEnd("")).toBeUndefined();
    expect(prefixEnd("a")).toBe("b");
    expect(prefixEnd("a/")).toBe("a0");
    expect(prefixEnd("a\u{10FFFF}")).toBe("b");
    expect(prefixEnd("\u{10FFFF}\u{10FFFF}")).toBeUndefined();
    expect(prefixEnd("x\uD7FF")).toBe("x\uE000"); // steps over the surrogates
    expect(prefixEnd("x\uFFFF")).toBe("x\u{10000}");
    // JS orders U+FFFF after U+10000 (UTF-16 units); SQLite and compareUtf8 do not.
    expect("\uFFFF" > "\u{10000}").toBe(true);
    expect(compareUtf8("\uFFFF", "\u{10000}")).toBeLessThan(0);
  });
});

forEachEngine("catalog-list", (engine) => {
  describe("listBalls", () => {
    const fixed = [
      "a", "a/", "a/b", "a/b/c", "a0", "ab", "abc", "b", "b/", "B", "_", "~", " ", "a b",
      "é", "éa", "e", "ü/x", "日本/語", "日本", "😀", "😀/1", "\uFFFF", "\uFFFFz", "\u{10000}", "\u{10FFFF}", "\u{10FFFF}a",
      "x\uD7FF", "x\uD7FFy", "x\uE000",
    ];
    let catalog: CatalogStore;
    const keys = new Set<string>();

    beforeAll(async () => {
      catalog = (await engine.open({ scope: "file" })).store;
      await catalog.upsertPeer(peerRecord("p1"));
      const { random } = seededRandom("catalog-list");
      const alphabet = ["a", "b", "/", "é", "日", "😀", "\uFFFF", "\u{10000}", "z", "0"];
      for (const key of fixed) keys.add(key);
      while (keys.size < 700) {
        const length = 1 + Math.floor(random() * 6);
        keys.add(Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join(""));
      }
      let n = 0;
      const items = [...keys].map((key) => {
        n += 1;
        // Two ball groups interleaved in key order, and a second bucket that must never leak in.
        return ballOf({ key, objectId: `o${n}`, ballId: n % 3 === 0 ? "group-a" : "group-b", peers: [["p1"]], rf: 1 });
      });
      for (let i = 0; i < items.length; i += 100) expect((await catalog.commitBalls(items.slice(i, i + 100))).every((r) => "version" in r)).toBe(true);
      const other = ballOf({ bucket: "other", key: "a", objectId: "other-a", peers: [["p1"]], rf: 1 });
      await catalog.commitBall(other.ball, other.chunks, {});
    });
    afterAll(async () => {
      expect(await catalog.audit()).toEqual([]);
    });

    test("the whole bucket, in every page size, with no duplicates and no misses", async () => {
      const all = expected(keys);
      for (const limit of [1, 2, 3, 7, 100, 699, 700, 701, 1000]) {
        const { keys: listed, pages } = (await listAll(catalog, { bucket: "bucket", limit }));
        expect(listed).toEqual(all);
        expect(pages).toBe(Math.max(1, Math.ceil(all.length / limit)));
      }
    });

    test("prefix edge cases", async () => {
      const cases: Array<[string, string[]]> = [
        ["a", expected(keys, "a")],
        ["a/", expected(keys, "a/")],
        ["ab", expected(keys, "ab")],
        ["b", expected(keys, "b")],
        ["é", expected(keys, "é")],
        ["😀", expected(keys, "😀")],
        ["\uFFFF", expected(keys, "\uFFFF")],
        ["\u{10FFFF}", ["\u{10FFFF}", "\u{10FFFF}a"]],
        ["x\uD7FF", ["x\uD7FF", "x\uD7FFy"]],
        ["nothing-here", []],
      ];
      expect(expected(keys, "a")).toContain("a");
      expect(expected(keys, "a")).not.toContain("b");
      for (const [prefix, want] of cases) {
        for (const limit of [1, 3, 50]) expect((await listAll(catalog, { bucket: "bucket", prefix, limit })).keys).toEqual(want);
      }
      const fixedUnderA = (await listAll(catalog, { bucket: "bucket", prefix: "a", limit: 1000 })).keys.filter((key) => fixed.includes(key));
      expect(fixedUnderA).toEqual(["a", "a b", "a/", "a/b", "a/b/c", "a0", "ab", "abc"]); // " " < "/" < "0" < "b"
    });

    test("random prefixes and page sizes, and cursors that did not come from a listing", async () => {
      const { random } = seededRandom("catalog-list-prefixes");
      const sorted = expected(keys);
      for (let round = 0; round < 60; round += 1) {
        const source = sorted[Math.floor(random() * sorted.length)]!;
        const prefix = Array.from(source).slice(0, Math.floor(random() * 3)).join("");
        const limit = 1 + Math.floor(random() * 40);
        expect((await listAll(catalog, { bucket: "bucket", prefix, limit })).keys).toEqual(expected(keys, prefix));
        // Any string is a valid cursor: the listing resumes strictly after it.
        const after = sorted[Math.floor(random() * sorted.length)]! + (random() < 0.5 ? "" : "\u0001");
        const page = await catalog.listBalls({ bucket: "bucket", prefix, after, limit });
        const want = expected(keys, prefix).filter((key) => compareUtf8(key, after) > 0).slice(0, limit);
        expect(page.balls.map((ball) => ball.key)).toEqual(want);
      }
    });

    test("by ball id, with prefix and pagination", async () => {
      const group = [...keys].filter((_, i) => (i + 1) % 3 === 0);
      const listed = (await listAll(catalog, { bucket: "bucket", ballId: "group-a", limit: 9 }));
      expect(listed.keys).toEqual(expected(group));
      expect((await listAll(catalog, { bucket: "bucket", ballId: "group-a", prefix: "a", limit: 2 })).keys).toEqual(expected(group, "a"));
      expect((await listAll(catalog, { bucket: "bucket", ballId: "nobody", limit: 5 })).keys).toEqual([]);
      const page = await catalog.listBalls({ bucket: "bucket", ballId: "group-a", limit: 1 });
      expect(page.balls[0]?.ballId).toBe("group-a");
    });

    test("buckets do not leak into each other", async () => {
      expect((await listAll(catalog, { bucket: "other", limit: 10 })).keys).toEqual(["a"]);
      expect((await listAll(catalog, { bucket: "nope", limit: 10 })).keys).toEqual([]);
    });

    test("a listing with an exactly full last page has no empty extra page", async () => {
      const { keys: listed, pages } = (await listAll(catalog, { bucket: "bucket", prefix: "a/b", limit: 2 }));
      expect(listed).toEqual(expected(keys, "a/b"));
      expect(pages).toBe(Math.ceil(listed.length / 2));
    });
  });
});
