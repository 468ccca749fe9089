// Drain, undrain and remove from the shell: a drain that could never finish is refused up front,
// a drain can be cancelled, a peer is removed only when it is down or draining and holds no
// chunk's only replica, and its replicas are healed elsewhere. Every ball reads back exactly.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, clientFor, eventually, kill9, spmStatus, startTestVss } from "../support/vss.ts";
import { wrongReads } from "../support/read-back.ts";
import type { Client } from "../../src/client/client.ts";

const { random, seed } = seededRandom("drain");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let client: Client;
const balls = new Map<string, Uint8Array>();

beforeAll(async () => {
  vss = await startTestVss({ label: "drain", peers: 4, routers: 1 });
  client = clientFor(vss, { chunkSize: 64 * 1024 });
  for (let n = 0; n < 12; n += 1) {
    const data = randomBytes(random, 1 + Math.floor(random() * 200_000));
    await client.put("dr", `ball-${n}`, data, { rf: 2 });
    balls.set(`ball-${n}`, data);
  }
});
afterAll(async () => {
  client?.close();
  await vss?.cleanup();
});

const spmFlag = () => ["--spm", vss.spm.address];

const readAll = () => wrongReads(client, "dr", balls);

describe(`drain, undrain, remove (seed ${seed})`, () => {
  test("a drain that could never finish is refused up front, saying what blocks it", async () => {
    await client.put("dr", "everywhere", randomBytes(random, 1000), { rf: 4 });
    const { code, stderr } = await cli(["peer", "drain", "peer-0", ...spmFlag()]);
    expect(code).toBe(1);
    expect(stderr).toContain("rf 4");
    expect(stderr).toContain("only 3 other peers");
    expect((await spmStatus(vss)).peers.find((peer) => peer.id === "peer-0")?.draining).toBe(false);
    await client.delete("dr", "everywhere");
  }, 30_000);

  test("undrain cancels a drain: the peer takes new data again", async () => {
    const drained = await cli(["peer", "drain", "peer-1", ...spmFlag()]);
    expect(drained.code).toBe(0);
    expect((await spmStatus(vss)).peers.find((peer) => peer.id === "peer-1")?.draining).toBe(true);
    const undrained = await cli(["peer", "undrain", "peer-1", "--json", ...spmFlag()]);
    expect(undrained.code).toBe(0);
    expect(JSON.parse(undrained.stdout)).toEqual({ id: "peer-1" });
    expect((await spmStatus(vss)).peers.find((peer) => peer.id === "peer-1")?.draining).toBe(false);
    // rf 4 on 4 peers: only possible if peer-1 takes placements again.
    await client.put("dr", "all-four", randomBytes(random, 500), { rf: 4 });
    expect((await client.stat("dr", "all-four")).chunks[0]!.peers).toContain("peer-1");
    await client.delete("dr", "all-four");
    expect(await readAll()).toEqual([]);
  }, 30_000);

  test("remove is refused for a peer that is up, and for one holding a chunk's only replica", async () => {
    const up = await cli(["peer", "remove", "peer-2", ...spmFlag()]);
    expect(up.code).toBe(1);
    expect(up.stderr).toContain("drain it first");
    await client.put("dr", "single", randomBytes(random, 800), { rf: 1 });
    const holder = (await client.stat("dr", "single")).chunks[0]!.peers[0]!;
    const index = vss.peers.findIndex((peer) => peer.id === holder);
    kill9(vss.peers[index]!);
    await eventually("the holder is down", 15_000, async () => (await spmStatus(vss)).peers.find((peer) => peer.id === holder)?.state === "down");
    const sole = await cli(["peer", "remove", holder, ...spmFlag()]);
    expect(sole.code).toBe(1);
    expect(sole.stderr).toContain("only replica of 1 chunks");
    expect((await spmStatus(vss)).peers.some((peer) => peer.id === holder)).toBe(true);
    await vss.startPeer(index);
    await eventually("the holder is back", 15_000, async () => (await spmStatus(vss)).peers.find((peer) => peer.id === holder)?.state === "up");
    await client.delete("dr", "single");
  }, 30_000);

  test("a peer that is down is removed; its replicas are healed to rf on the others and every ball reads back", async () => {
    const victim = vss.peers[3]!;
    kill9(victim);
    await eventually("the victim is down", 15_000, async () => (await spmStatus(vss)).peers.find((peer) => peer.id === victim.id)?.state === "down");
    const removed = await cli(["peer", "remove", victim.id, "--json", ...spmFlag()]);
    expect(removed.code).toBe(0);
    expect(JSON.parse(removed.stdout).id).toBe(victim.id);
    await eventually("the removed peer's replicas are healed", 60_000, async () => {
      const status = await spmStatus(vss);
      return (status.underReplicated === 0 && !status.peers.some((peer) => peer.id === victim.id)) || `under ${status.underReplicated}`;
    });
    for (const key of balls.keys()) {
      const stat = await client.stat("dr", key);
      for (const chunk of stat.chunks) {
        expect(chunk.peers).not.toContain(victim.id);
        expect(chunk.peers.length).toBeGreaterThanOrEqual(2);
      }
    }
    expect(await readAll()).toEqual([]);
  }, 90_000);
});
