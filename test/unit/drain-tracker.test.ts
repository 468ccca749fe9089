// The drain's bookkeeping for status (src/roles/spm/drain.ts): walks page by page over a
// draining peer's chunks, blocked chunks counted by chunk and by ball, a walk's findings
// replacing the last's, "drained" said once.
import { describe, expect, test } from "bun:test";
import { DrainTracker } from "../../src/roles/spm/drain.ts";

const describeBlock = (reason: string, tally: { chunks: number; balls: number; rfMax: number }) => `${reason}: ${tally.chunks}/${tally.balls} rf ${tally.rfMax}`;

describe("DrainTracker", () => {
  test("blocked chunks are counted by chunk and by ball (chunks come ordered by object), per reason", async () => {
    const drains = new DrainTracker();
    await drains.cursor("p", async () => 10);
    for (const [objectId, rf] of [["a", 3], ["a", 3], ["b", 2], ["b", 2], ["c", 3]] as const) drains.blocked("p", "rf", { objectId, rf });
    drains.blocked("p", "room", { objectId: "c", rf: 3 });
    // Before the first walk ends, status shows what it found so far.
    expect(drains.status(describeBlock)[0]!.blocked).toEqual([
      { reason: "rf", chunks: 5, balls: 3, message: "rf: 5/3 rf 3" },
      { reason: "room", chunks: 1, balls: 1, message: "room: 1/1 rf 3" },
    ]);
    expect(drains.pageDone("p", undefined, describeBlock)).toBe(false);
    expect(drains.status(describeBlock)).toEqual([
      { peerId: "p", remainingChunks: 10, movedChunks: 0, blocked: [
        { reason: "rf", chunks: 5, balls: 3, message: "rf: 5/3 rf 3" },
        { reason: "room", chunks: 1, balls: 1, message: "room: 1/1 rf 3" },
      ] },
    ]);
  });

  test("a walk over several pages replaces the last walk's findings only when it ends", async () => {
    const drains = new DrainTracker();
    await drains.cursor("p", async () => 3);
    drains.blocked("p", "rf", { objectId: "a", rf: 3 });
    drains.pageDone("p", undefined, describeBlock);
    // The next walk: two pages; the chunk became movable and moved.
    expect(await drains.cursor("p", async () => 3)).toBeUndefined();
    drains.moved("p");
    drains.pageDone("p", "cursor-1", describeBlock);
    expect(await drains.cursor("p", async () => 99)).toBe("cursor-1"); // no recount mid-walk
    expect(drains.status(describeBlock)[0]).toMatchObject({ remainingChunks: 2, movedChunks: 1, blocked: [{ reason: "rf", chunks: 1 }] });
    drains.pageDone("p", undefined, describeBlock);
    expect(drains.status(describeBlock)[0]).toMatchObject({ remainingChunks: 2, movedChunks: 1, blocked: [] });
  });

  test('"drained" is said once, when a walk ends with nothing left; again only after it held chunks again', async () => {
    const drains = new DrainTracker();
    await drains.cursor("p", async () => 1);
    drains.moved("p");
    expect(drains.pageDone("p", undefined, describeBlock)).toBe(true);
    await drains.cursor("p", async () => 0);
    expect(drains.pageDone("p", undefined, describeBlock)).toBe(false);
    await drains.cursor("p", async () => 2); // undrained, took data, drained again
    drains.moved("p");
    drains.moved("p");
    expect(drains.pageDone("p", undefined, describeBlock)).toBe(true);
    expect(drains.status(describeBlock)[0]).toMatchObject({ remainingChunks: 0, movedChunks: 3 });
  });

  test("peers no longer draining are forgotten", async () => {
    const drains = new DrainTracker();
    await drains.cursor("p", async () => 1);
    await drains.cursor("q", async () => 1);
    drains.keepOnly(new Set(["q"]));
    expect(drains.status(describeBlock).map((drain) => drain.peerId)).toEqual(["q"]);
  });
});
