// GcPacer: looks at resident memory every `everyBytes` of buffers moved, collects only past the
// soft mark, and looks less often while collections cannot bring memory back under it.
import { describe, expect, test } from "bun:test";
import { GcPacer } from "../../src/lib/gc-pacer.ts";

const MiB = 1024 * 1024;

function pacer(rssMiB: () => number) {
  const state = { looks: 0, collections: 0 };
  const p = new GcPacer(
    8 * MiB,
    200 * MiB,
    () => {
      state.looks += 1;
      return rssMiB() * MiB;
    },
    () => {
      state.collections += 1;
    },
  );
  return { p, state };
}

describe("GcPacer", () => {
  test("looks every everyBytes and never collects below the soft mark", () => {
    const { p, state } = pacer(() => 120);
    for (let i = 0; i < 64; i += 1) p.note(MiB);
    expect(state.looks).toBe(8);
    expect(state.collections).toBe(0);
  });

  test("collects past the soft mark; memory that stays high is looked at less often, up to 8×", () => {
    const { p, state } = pacer(() => 230); // live memory a collection cannot free
    for (let i = 0; i < 8 * 64; i += 1) p.note(MiB);
    // 8, then every 16, 32, 64, 64, … MiB: 1 + 1 + 1 + (512 - 8 - 16 - 32) / 64 → 10 collections, not 64.
    expect(state.collections).toBe(10);
    expect(p.collections).toBe(10);
  });

  test("once a collection brings memory back under the mark, it looks every everyBytes again", () => {
    let rss = 230;
    const { p, state } = pacer(() => rss);
    for (let i = 0; i < 8 + 16; i += 1) p.note(MiB); // two collections in vain: the interval is now 32 MiB
    expect(state.collections).toBe(2);
    rss = 150;
    for (let i = 0; i < 32; i += 1) p.note(MiB); // a look below the mark resets the interval
    for (let i = 0; i < 16; i += 1) p.note(MiB);
    expect(state.looks).toBe(2 * 2 + 1 + 2);
  });
});
