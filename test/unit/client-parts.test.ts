// The client's small parts on their own: the chunk cache and its bounds, bounded concurrency
// for putMany/getMany, chunk numbering, the router set's benching and backoff, the progress bar.
import { describe, expect, test } from "bun:test";
import { ChunkCache, cacheLimits } from "../../src/client/cache.ts";
import { mapBounded } from "../../src/client/bounded.ts";
import { chunks, numbered } from "../../src/client/chunker.ts";
import { RouterSet, clientLimits, jitteredBackoffMs } from "../../src/client/routers.ts";
import { Progress, formatDuration } from "../../src/commands/progress.ts";
import { MictlanxError, NotFoundError } from "../../src/lib/errors.ts";
import { rejection } from "../support/errors.ts";
import { mulberry32, seededRandom } from "../support/random.ts";

const { seed } = seededRandom("client-parts");

describe("chunk cache", () => {
  test("bounded in bytes, least recently used out", () => {
    const cache = new ChunkCache(1000);
    for (let i = 0; i < 10; i += 1) cache.set("obj-00001", i, new Uint8Array(100));
    expect(cache.stats().bytes).toBe(1000);
    cache.get("obj-00001", 0); // 0 is now the most recent
    cache.set("obj-00002", 0, new Uint8Array(150));
    expect(cache.stats().bytes).toBeLessThanOrEqual(1000);
    expect(cache.has("obj-00001", 0)).toBe(true);
    expect(cache.has("obj-00001", 1)).toBe(false);
    expect(cache.has("obj-00001", 2)).toBe(false);
  });

  test("keyed by (object id, index): another version never hits", () => {
    const cache = new ChunkCache(1 << 20);
    cache.set("version-a", 0, new Uint8Array([1]));
    expect(cache.get("version-b", 0)).toBeUndefined();
    expect(cache.get("version-a", 1)).toBeUndefined();
    expect(cache.get("version-a", 0)).toEqual(new Uint8Array([1]));
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 2, chunks: 1 });
    cache.drop("version-a", 1);
    expect(cache.get("version-a", 0)).toBeUndefined();
  });

  test("the (bucket, key) → object id map is bounded and separates bucket from key", () => {
    const cache = new ChunkCache(1 << 20);
    for (let i = 0; i < cacheLimits.keysMax + 10; i += 1) cache.noteObjectId("b", `k${i}`, `obj-${i}`);
    expect(cache.objectIdOf("b", "k0")).toBeUndefined();
    expect(cache.objectIdOf("b", `k${cacheLimits.keysMax + 9}`)).toBe(`obj-${cacheLimits.keysMax + 9}`);
    cache.noteObjectId("a/b", "c", "obj-x");
    expect(cache.objectIdOf("a", "b/c")).toBeUndefined();
    cache.noteObjectId("a/b", "c", undefined);
    expect(cache.objectIdOf("a/b", "c")).toBeUndefined();
  });

  test("balls over a quarter of the cache are not admitted; 0 bytes turns it off", () => {
    const cache = new ChunkCache(4000);
    expect(cache.admits(1000)).toBe(true);
    expect(cache.admits(1001)).toBe(false);
    const off = new ChunkCache(0);
    off.set("obj-00001", 0, new Uint8Array(1));
    off.noteObjectId("b", "k", "obj-00001");
    expect(off.get("obj-00001", 0)).toBeUndefined();
    expect(off.objectIdOf("b", "k")).toBeUndefined();
    expect(off.admits(0)).toBe(false);
  });
});

describe(`bounded concurrency (seed ${seed})`, () => {
  test("results in input order, at most N running, input pulled lazily, one failure does not stop the rest", async () => {
    const random = mulberry32(seed);
    let running = 0;
    let peak = 0;
    let pulled = 0;
    let finished = 0;
    let pulledAheadMax = 0;
    async function* input() {
      for (let i = 0; i < 40; i += 1) {
        pulled += 1;
        pulledAheadMax = Math.max(pulledAheadMax, pulled - finished);
        yield { bucket: "b", key: `k${i}` };
      }
    }
    const outcomes = await mapBounded(input(), 3, async (item) => {
      running += 1;
      peak = Math.max(peak, running);
      await Bun.sleep(Math.floor(random() * 5));
      running -= 1;
      finished += 1;
      if (item.key === "k7") throw new NotFoundError("b/k7 does not exist");
      if (item.key === "k9") throw new Error("plain error");
      return item.key.toUpperCase();
    });
    expect(peak).toBe(3);
    expect(pulledAheadMax).toBeLessThanOrEqual(3);
    expect(outcomes.length).toBe(40);
    outcomes.forEach((outcome, i) => {
      expect(outcome.key).toBe(`k${i}`);
      if (i === 7) expect(outcome.ok === false && outcome.error.code).toBe("not_found");
      else if (i === 9) expect(outcome.ok === false && outcome.error instanceof MictlanxError && outcome.error.code).toBe("internal");
      else expect(outcome.ok && outcome.value).toBe(`K${i}`);
    });
  });

  test("empty input, plain iterables", async () => {
    expect(await mapBounded([], 4, async () => 1)).toEqual([]);
    const outcomes = await mapBounded([{ bucket: "b", key: "x" }], 8, async () => 1);
    expect(outcomes).toEqual([{ ok: true, bucket: "b", key: "x", value: 1 }]);
  });
});

describe("chunking", () => {
  test("indexes 0..N-1 and marks only the last chunk final", async () => {
    const seen: Array<[number, number, boolean]> = [];
    for await (const chunk of numbered(chunks(new Uint8Array(10), 4))) seen.push([chunk.index, chunk.data.byteLength, chunk.final]);
    expect(seen).toEqual([
      [0, 4, false],
      [1, 4, false],
      [2, 2, true],
    ]);
    const empty = [];
    for await (const chunk of numbered(chunks(new Uint8Array(0), 4))) empty.push(chunk);
    expect(empty).toEqual([]);
  });

  test("any split of a stream gives the same chunks", async () => {
    const random = mulberry32(seed);
    const data = Uint8Array.from({ length: 5000 }, () => Math.floor(random() * 256));
    async function* pieces() {
      for (let at = 0; at < data.byteLength; ) {
        const take = 1 + Math.floor(random() * 700);
        yield data.slice(at, at + take);
        at += take;
      }
    }
    const out: number[] = [];
    for await (const chunk of chunks(pieces(), 1024)) {
      expect(chunk.byteLength === 1024 || out.length + chunk.byteLength === data.byteLength).toBe(true);
      out.push(...chunk);
    }
    expect(Buffer.compare(Buffer.from(out), Buffer.from(data))).toBe(0);
  });
});

describe("router set", () => {
  test("backoff stays within [ceiling/2, ceiling) and grows to the cap", () => {
    for (let attempt = 1; attempt < 10; attempt += 1) {
      const ceiling = Math.min(clientLimits.backoffMsMax, clientLimits.backoffMsBase * 2 ** attempt);
      expect(jitteredBackoffMs(attempt, () => 0)).toBe(ceiling / 2);
      expect(jitteredBackoffMs(attempt, () => 0.999)).toBeLessThan(ceiling);
    }
  });

  test("routers that refuse the connection are each tried once, then the call fails at once naming one; each is benched, longer each time", async () => {
    const routers = new RouterSet("127.0.0.1:1,127.0.0.1:2");
    const startedMs = performance.now();
    const error = await rejection(routers.call("ball.stat", { bucket: "b", key: "k" }));
    expect(performance.now() - startedMs).toBeLessThan(clientLimits.retryWindowMs / 3); // not retried for the window
    expect(error.code).toBe("unavailable");
    expect(error.remote).toBe(false);
    expect(error.message).toMatch(/router 127\.0\.0\.1:[12] refused the connection/);
    const states = routers.states();
    expect(states.map((state) => state.address)).toEqual(["127.0.0.1:1", "127.0.0.1:2"]);
    for (const state of states) expect(state.benchedForMs).toBeGreaterThan(0);
    expect(states.map((state) => state.failuresInARow)).toEqual([1, 1]);
    expect(routers.retries).toBe(1);
    await rejection(routers.call("ball.stat", { bucket: "b", key: "k" }));
    expect(Math.max(...routers.states().map((state) => state.benchedForMs))).toBeGreaterThan(clientLimits.benchMs); // doubled
    routers.close();
  });
});

describe("progress bar", () => {
  function fakeTerminal(isTTY: boolean) {
    const written: string[] = [];
    return { out: { isTTY, columns: 120, write: (text: string) => written.push(text) }, written };
  }

  test("nothing before a second, then a bar with percent, rate and ETA; cleared at the end", () => {
    let now = 0;
    const { out, written } = fakeTerminal(true);
    const progress = new Progress({ label: "put b/k", total: 100 * 1024 * 1024, out, now: () => now, timer: false });
    now = 500;
    progress.update(10 * 1024 * 1024);
    expect(written).toEqual([]);
    now = 2_000;
    progress.update(40 * 1024 * 1024);
    expect(written.length).toBe(1);
    expect(written[0]).toContain("put b/k");
    expect(written[0]).toBe("\rput b/k [####......]  40% 40.0 MiB / 100 MiB 20.0 MiB/s ETA 3s   \u001b[K");
    now = 2_050;
    progress.update(41 * 1024 * 1024); // within the redraw interval: not drawn
    expect(written.length).toBe(1);
    progress.finish();
    expect(written.at(-1)).toBe("\r\u001b[K");
    progress.update(50 * 1024 * 1024);
    expect(written.at(-1)).toBe("\r\u001b[K");
  });

  test("a narrow terminal: the label gives way, the numbers stay", () => {
    let now = 0;
    const { out } = fakeTerminal(true);
    const progress = new Progress({ label: "put some-bucket/a/very/long/key/name.parquet", total: 100 * 1024 * 1024, out, now: () => now, timer: false });
    now = 2_000;
    progress.update(40 * 1024 * 1024);
    const line = progress.line(now, 79);
    expect(line.length).toBeLessThanOrEqual(79);
    expect(line).toContain("ETA 3s");
    expect(line).toContain("…");
    expect(line).toEndWith("40.0 MiB / 100 MiB 20.0 MiB/s ETA 3s   ");
    progress.update(41 * 1024 * 1024);
    expect(progress.line(now + 1_000, 79).length).toBe(line.length); // steady: no jitter as numbers change
    expect(progress.line(now, 20).length).toBeLessThanOrEqual(20);
    progress.finish();
  });

  test("unknown total: bytes and rate, no ETA", () => {
    let now = 0;
    const { out, written } = fakeTerminal(true);
    const progress = new Progress({ label: "put b/k", out, now: () => now, timer: false });
    now = 1_500;
    progress.update(3 * 1024 * 1024);
    expect(written[0]).toContain("put b/k  3.0 MiB  2.0 MiB/s");
    expect(written[0]).not.toContain("ETA");
    progress.finish();
  });

  test("not a terminal: nothing at all", () => {
    let now = 0;
    const { out, written } = fakeTerminal(false);
    const progress = new Progress({ label: "get b/k", total: 10, out, now: () => now });
    now = 5_000;
    progress.update(5);
    progress.finish();
    expect(written).toEqual([]);
  });

  test("durations", () => {
    expect(formatDuration(400)).toBe("1s");
    expect(formatDuration(61_000)).toBe("1m01s");
    expect(formatDuration(3_720_000)).toBe("1h02m");
  });
});
