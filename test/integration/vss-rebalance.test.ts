// A new peer joins and receives data until the spread is even within the bound; drain empties
// a peer while every ball stays readable throughout.
import { afterAll, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, clientFor, eventually, spmStatus, startTestVss } from "../support/vss.ts";
import { Ledger, checkGet, verifyAll } from "../support/load.ts";
import { vssLimits } from "../../src/lib/limits.ts";

const { random, seed } = seededRandom("rebalance");
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
afterAll(async () => vss?.cleanup());
const MiB = 1024 * 1024;

async function liveBytesByPeer(): Promise<Map<string, number>> {
  // The catalog's view: bytes of replicas each peer holds, summed from every ball's chunks.
  const client = clientFor(vss!);
  const byPeer = new Map<string, number>(vss!.peers.map((peer) => [peer.id, 0]));
  for await (const page of client.list("rb")) {
    for (const ball of page) {
      const stat = await client.stat("rb", ball.key);
      for (const chunk of stat.chunks) for (const id of chunk.peers) byPeer.set(id, (byPeer.get(id) ?? 0) + chunk.size);
    }
  }
  client.close();
  return byPeer;
}

test(`an empty peer joins and gets its share; drain empties a peer with every ball readable (seed ${seed})`, async () => {
  vss = await startTestVss({ label: "rebalance", peers: 3, routers: 1, peerArgs: ["--capacity", "1GiB"] });
  const client = clientFor(vss, { chunkSize: MiB });
  const ledger = new Ledger();
  for (let i = 0; i < 40; i += 1) {
    const data = randomBytes(random, 4 * MiB);
    await client.put("rb", `ball-${i}`, data, { rf: 2 });
    ledger.acknowledged.set(`ball-${i}`, data);
  }

  // Join: peer-3 starts empty.
  await vss.startPeer(3);
  const bound = vssLimits.rebalanceSlackBytes + 2 * MiB; // the SPM's bound, plus a chunk in flight each way
  await eventually("the spread of live bytes is even within the bound", 60_000, async () => {
    const bytes = [...(await liveBytesByPeer()).values()];
    const spread = Math.max(...bytes) - Math.min(...bytes);
    return spread <= bound || `spread ${spread} bytes: ${bytes.join(", ")}`;
  });
  const afterJoin = await liveBytesByPeer();
  expect(afterJoin.get("peer-3")).toBeGreaterThan(40 * MiB);
  expect((await spmStatus(vss)).healing.movedChunks).toBeGreaterThan(0);
  expect(await verifyAll(client, "rb", ledger, "after rebalance")).toEqual([]);

  // Drain peer-0 while a reader reads every ball over and over.
  const drained = await cli(["peer", "drain", "peer-0", "--spm", vss.spm.address, "--json"]);
  expect(drained.code).toBe(0);
  expect(JSON.parse(drained.stdout)).toMatchObject({ id: "peer-0" });
  expect((await cli(["peer", "drain", "no-such-peer", "--spm", vss.spm.address])).code).toBe(4);
  let reading = true;
  const reader = (async () => {
    const keys = [...ledger.acknowledged.keys()];
    for (let i = 0; reading; i += 1) await checkGet(client, "rb", keys[i % keys.length]!, ledger, "during drain");
  })();
  await eventually("peer-0 holds no replica", 90_000, async () => {
    const held = (await liveBytesByPeer()).get("peer-0") ?? 0;
    return held === 0 || `peer-0 still holds ${held} bytes`;
  });
  reading = false;
  await reader;
  expect(ledger.getErrors).toEqual([]);
  expect(ledger.wrongBytes).toEqual([]);
  expect(ledger.gets).toBeGreaterThan(40);
  for (const key of ledger.acknowledged.keys()) {
    const stat = await client.stat("rb", key);
    for (const chunk of stat.chunks) {
      expect(chunk.peers).not.toContain("peer-0");
      expect(chunk.peers.length).toBe(2);
    }
  }
  expect(await verifyAll(client, "rb", ledger, "after drain")).toEqual([]);
  client.close();
}, 240_000);
