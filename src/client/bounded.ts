// Many independent operations with at most `concurrency` running: the input is pulled only as
// slots free up (so a huge or endless iterable is fine), results come back in input order, and
// one failure does not stop the others — each item gets its own outcome.
import { assert } from "../lib/assert.ts";
import { toMictlanxError, type MictlanxError } from "../lib/errors.ts";

/** One item's result: its value, or the typed error it failed with. */
export type Outcome<T> = { ok: true; bucket: string; key: string; value: T } | { ok: false; bucket: string; key: string; error: MictlanxError };

export async function mapBounded<I extends { bucket: string; key: string }, T>(
  items: Iterable<I> | AsyncIterable<I>,
  concurrency: number,
  work: (item: I) => Promise<T>,
): Promise<Outcome<T>[]> {
  assert(Number.isInteger(concurrency) && concurrency >= 1, "concurrency must be a whole number ≥ 1");
  const outcomes: Outcome<T>[] = [];
  const iterator: AsyncIterator<I> | Iterator<I> = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  let position = 0;
  let exhausted = false;
  // Pulls are chained, so items are taken (and numbered) in input order whatever the iterator.
  let pulling: Promise<unknown> = Promise.resolve();
  const pull = (): Promise<{ item: I; at: number } | undefined> => {
    const next = pulling.then(async () => {
      if (exhausted) return undefined;
      const step = await iterator.next();
      if (step.done) {
        exhausted = true;
        return undefined;
      }
      const at = position;
      position += 1;
      return { item: step.value, at };
    });
    pulling = next.catch(() => {});
    return next;
  };
  const worker = async () => {
    for (let pulled = await pull(); pulled; pulled = await pull()) {
      const { item, at } = pulled;
      try {
        outcomes[at] = { ok: true, bucket: item.bucket, key: item.key, value: await work(item) };
      } catch (error) {
        outcomes[at] = { ok: false, bucket: item.bucket, key: item.key, error: toMictlanxError(error) };
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcomes;
}
