// A drain's progress, from the shell (issue 11 point 6): while a drain cannot finish, `status`
// (and its JSON) says what blocks it, by chunk and ball count; the header says how many peers are
// draining; once it can, every chunk moves, counted as moved off the peer, never as healed or
// as a healing failure. The block is made real, not raced: the other two peers are restarted
// with a capacity below what they hold, so no chunk finds room; then with room again.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, clientFor, eventually, kill9, spmStatus, startTestVss } from "../support/vss.ts";
import { readBackAll } from "../support/load.ts";
import type { Client } from "../../src/client/client.ts";

const { random, seed } = seededRandom("drain-progress");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let client: Client;
const balls = new Map<string, Uint8Array>();
/** Down only after 10 s: restarting a peer (under a second) never looks like a loss to heal. */
const spmArgs = ["--suspect-after", "1s", "--down-after", "10s", "--reader-grace", "2s"];

beforeAll(async () => {
  vss = await startTestVss({ label: "drain-progress", peers: 3, routers: 1, spmArgs });
  client = clientFor(vss, { chunkSize: 64 * 1024 });
  for (let n = 0; n < 8; n += 1) {
    const data = randomBytes(random, 1 + Math.floor(random() * 300_000));
    await client.put("dp", `ball-${n}`, data, { rf: 2 });
    balls.set(`ball-${n}`, data);
  }
});
afterAll(async () => {
  client?.close();
  await vss?.cleanup();
});

const spmFlag = () => ["--spm", vss.spm.address];

/** What the catalog says peer-0 holds: its chunks, and the balls they belong to. */
async function heldBy(peerId: string): Promise<{ chunks: number; balls: number }> {
  let chunks = 0;
  let held = 0;
  for (const key of balls.keys()) {
    const on = (await client.stat("dp", key)).chunks.filter((chunk) => chunk.peers.includes(peerId)).length;
    chunks += on;
    if (on > 0) held += 1;
  }
  return { chunks, balls: held };
}

/** Restart a peer (same port, same data) with these extra flags. */
async function restartPeer(index: number, peerArgs: string[] | undefined): Promise<void> {
  const peer = vss.peers[index]!;
  kill9(peer);
  await peer.exited;
  vss.options.peerArgs = peerArgs;
  await vss.startPeer(index);
  vss.options.peerArgs = undefined;
}

const readAll = () => readBackAll(client, "dp", balls);

describe(`a drain's progress in status (seed ${seed})`, () => {
  test("while no other peer has room, status says so by chunk and ball count; the header counts the draining peer", async () => {
    const held = await heldBy("peer-0");
    expect(held.chunks).toBeGreaterThan(0);
    await restartPeer(1, ["--capacity", "64KiB"]);
    await restartPeer(2, ["--capacity", "64KiB"]);
    await eventually("both full peers report in", 15_000, async () => {
      const peers = (await spmStatus(vss)).peers;
      return ["peer-1", "peer-2"].every((id) => peers.find((peer) => peer.id === id)?.freeBytes === 0 && peers.find((peer) => peer.id === id)?.state === "up") || JSON.stringify(peers.map((peer) => [peer.id, peer.state, peer.freeBytes]));
    });

    const drained = await cli(["peer", "drain", "peer-0", ...spmFlag()]);
    expect(drained.code).toBe(0);
    expect(drained.stdout).toContain(`peer peer-0 is draining; its ${held.chunks} chunks are moving to other peers`);
    await eventually("the drain reports its block", 15_000, async () => {
      const drain = (await spmStatus(vss)).drains.find((entry) => entry.peerId === "peer-0");
      return (drain !== undefined && drain.blocked.length > 0) || JSON.stringify(drain);
    });
    const status = await spmStatus(vss);
    const drain = status.drains.find((entry) => entry.peerId === "peer-0")!;
    expect(drain.remainingChunks).toBe(held.chunks);
    expect(drain.movedChunks).toBe(0);
    expect(drain.blocked).toEqual([{ reason: "room", chunks: held.chunks, balls: held.balls, message: expect.stringContaining("find no other peer with room") }]);
    expect(status.healing.failures).toBe(0);
    expect(status.healing.healedChunks).toBe(0);

    const text = await cli(["status", ...spmFlag()]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("peers 3/3 up (1 draining: 2 take new data)");
    expect(text.stdout).toContain(`drain        peer-0: ${held.chunks} chunks left, 0 moved off`);
    expect(text.stdout).toContain(`blocked: ${held.chunks} chunk${held.chunks === 1 ? "" : "s"} of ${held.balls} ball${held.balls === 1 ? "" : "s"} find no other peer with room`);
    expect(text.stdout).not.toContain("replication factor 1");
    const json = JSON.parse((await cli(["status", "--json", ...spmFlag()])).stdout);
    expect(json.drains[0].blocked[0].reason).toBe("room");
    expect(await readAll()).toEqual([]);
  }, 90_000);

  test("with room again every chunk moves off, counted as moved (not healed, no failures); every ball reads back", async () => {
    const held = await heldBy("peer-0");
    // Both full peers down first, then both up with room: restarting one while the drain moves
    // chunks could kill the replica a move reads from, a failure this test does not mean to count.
    for (const index of [1, 2]) kill9(vss.peers[index]!);
    await Promise.all([1, 2].map((index) => vss.peers[index]!.exited));
    await vss.startPeer(1);
    await vss.startPeer(2);
    await eventually("the drain finishes", 30_000, async () => {
      const drain = (await spmStatus(vss)).drains.find((entry) => entry.peerId === "peer-0");
      return (drain?.remainingChunks === 0 && drain.blocked.length === 0) || JSON.stringify(drain);
    });
    const status = await spmStatus(vss);
    const drain = status.drains.find((entry) => entry.peerId === "peer-0")!;
    expect(drain.movedChunks).toBe(held.chunks);
    expect(status.healing.healedChunks).toBe(0);
    expect(status.healing.failures).toBe(0);
    expect(status.underReplicated).toBe(0);
    expect(status.events.some((event) => event.kind === "peer_drained")).toBe(true);
    expect((await heldBy("peer-0")).chunks).toBe(0);
    const text = await cli(["status", ...spmFlag()]);
    expect(text.stdout).toContain(`drain        peer-0: 0 chunks left, ${held.chunks} moved off (drained: mictlanx peer remove peer-0)`);
    expect(await readAll()).toEqual([]);

    // Undrained, the peer takes data again and status no longer lists a drain.
    expect((await cli(["peer", "undrain", "peer-0", ...spmFlag()])).code).toBe(0);
    await eventually("the drain is gone from status", 10_000, async () => (await spmStatus(vss)).drains.length === 0);
    expect((await cli(["status", ...spmFlag()])).stdout).toContain("peers 3/3 up  balls");
  }, 90_000);
});
