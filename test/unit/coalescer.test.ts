import { expect, test } from "bun:test";
import { Coalescer } from "../../src/lib/coalescer.ts";

test("calls of one turn go as one batch; each caller gets its own result or error", async () => {
  const batches: number[][] = [];
  const coalescer = new Coalescer<number, number>(async (items) => {
    batches.push(items);
    return items.map((item) => (item % 3 === 0 ? { ok: false as const, error: new Error(`bad ${item}`) } : { ok: true as const, value: item * 10 }));
  }, 4);
  const calls = [1, 2, 3, 4, 5, 6].map((item) => coalescer.call(item).then((value) => ({ value }), (error: Error) => ({ error: error.message })));
  expect(await Promise.all(calls)).toEqual([{ value: 10 }, { value: 20 }, { error: "bad 3" }, { value: 40 }, { value: 50 }, { error: "bad 6" }]);
  expect(batches).toEqual([[1, 2, 3, 4], [5, 6]]); // bounded by batchMax
  const later = await coalescer.call(7);
  expect(later).toBe(70);
  expect(batches.length).toBe(3);
});

test("a batch that fails as a whole fails every caller in it with that error", async () => {
  const coalescer = new Coalescer<number, number>(async () => {
    throw new Error("connection broke");
  }, 8);
  const results = await Promise.allSettled([coalescer.call(1), coalescer.call(2)]);
  expect(results.map((result) => (result.status === "rejected" ? (result.reason as Error).message : "ok"))).toEqual(["connection broke", "connection broke"]);
});

test("a batch that answers with the wrong number of outcomes is a bug, reported to every caller", async () => {
  const coalescer = new Coalescer<number, number>(async () => [{ ok: true, value: 1 }], 8);
  const results = await Promise.allSettled([coalescer.call(1), coalescer.call(2)]);
  expect(results.every((result) => result.status === "rejected")).toBe(true);
});
