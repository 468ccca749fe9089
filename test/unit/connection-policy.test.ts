// The server's decisions about its connections, apart from sockets (src/net/connection-policy.ts).
import { describe, expect, test } from "bun:test";
import { ReplyEstimates, overdue, pickEvictee, quiet, replyRoom, type ConnectionView } from "../../src/net/connection-policy.ts";

const base: ConnectionView = {
  node: false,
  inFlight: 0,
  backlog: 0,
  partialFrameBytes: 0,
  paused: false,
  queuedReplyBytes: 0,
  reservedReplyBytes: 0,
  lastActiveMs: 0,
  lastReadMs: 0,
  writeBlockedMs: 0,
};
const view = (fields: Partial<ConnectionView>): ConnectionView => ({ ...base, ...fields });
const deadlines = { frameStallTimeoutMs: 100, connectionIdleTimeoutMs: 1_000 };

describe("connection policy", () => {
  test("an op's reply estimate starts at a frame and only grows", () => {
    const estimates = new ReplyEstimates(9_000);
    expect(estimates.of("chunk.get")).toBe(9_000);
    estimates.note("chunk.get", 100);
    expect(estimates.of("chunk.get")).toBe(100);
    estimates.note("chunk.get", 5_000);
    estimates.note("chunk.get", 10); // a small reply does not talk it down
    expect(estimates.of("chunk.get")).toBe(5_000);
    expect(estimates.of("other")).toBe(9_000);
  });

  test("a request starts while its reply fits, and always on a connection that holds nothing", () => {
    expect(replyRoom(0, 50, 10)).toBe(true);
    expect(replyRoom(5, 5, 10)).toBe(true);
    expect(replyRoom(5, 6, 10)).toBe(false);
  });

  test("eviction takes the least recently active quiet client, then any client, never a node", () => {
    const oldBusy = view({ lastActiveMs: 1, inFlight: 1 });
    const quietNewer = view({ lastActiveMs: 5 });
    const quietNewest = view({ lastActiveMs: 9 });
    const node = view({ lastActiveMs: 0, node: true });
    expect(pickEvictee([oldBusy, quietNewest, node, quietNewer])).toBe(quietNewer);
    expect(pickEvictee([oldBusy, view({ lastActiveMs: 3, partialFrameBytes: 1 }), node])).toBe(oldBusy);
    expect(pickEvictee([node])).toBeUndefined();
    expect(quiet(view({ queuedReplyBytes: 1 }))).toBe(false);
  });

  test("deadlines: a stalled frame (not while paused), replies unread, idle (only when quiet)", () => {
    expect(overdue(view({ partialFrameBytes: 10, lastReadMs: 0, lastActiveMs: 0 }), 101, deadlines)).toEqual({ reason: "frame_stalled", waitedMs: 101 });
    expect(overdue(view({ partialFrameBytes: 10, lastReadMs: 0, lastActiveMs: 0 }), 100, deadlines)).toBeUndefined();
    expect(overdue(view({ partialFrameBytes: 10, paused: true, lastActiveMs: 500 }), 600, deadlines)).toBeUndefined();
    expect(overdue(view({ queuedReplyBytes: 5, writeBlockedMs: 101, lastActiveMs: 500 }), 600, deadlines)).toEqual({ reason: "replies_unread", waitedMs: 101 });
    expect(overdue(view({ lastActiveMs: 0, lastReadMs: 0 }), 1_001, deadlines)).toEqual({ reason: "idle", waitedMs: 1_001 });
    expect(overdue(view({ lastActiveMs: 0, inFlight: 1 }), 5_000, deadlines)).toBeUndefined();
  });
});
