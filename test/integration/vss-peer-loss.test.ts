// kill -9 one of three peers under a load of puts and gets: every acknowledged ball reads back
// exact, no get ever returns wrong bytes, status shows the peer down, healing brings every
// chunk back to rf on live peers, and the restarted peer's extra replicas are trimmed.
import { afterAll, expect, test } from "bun:test";
import { seededRandom } from "../support/random.ts";
import { cli, clientFor, eventually, kill9, spmStatus, startTestVss } from "../support/vss.ts";
import { Ledger, runLoad, verifyAll } from "../support/load.ts";

const { random, seed } = seededRandom("peer-loss");
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
afterAll(async () => vss?.cleanup());

test(`kill -9 a peer under load, heal to rf, restart it, trim (seed ${seed})`, async () => {
  vss = await startTestVss({ label: "peer-loss", peers: 3, routers: 2 });
  const client = clientFor(vss, { chunkSize: 256 * 1024 });
  const ledger = new Ledger();
  const victim = vss.peers[1]!;

  // Load for ~8 s; the peer dies 2 s in.
  const load = runLoad({ client, bucket: "loss", random, ledger, durationMs: 8_000, opsMax: 3_000, workers: 4, sizeMax: 2 * 1024 * 1024 });
  await Bun.sleep(2_000);
  kill9(victim);
  await load;
  expect(ledger.wrongBytes).toEqual([]);
  expect(ledger.acknowledged.size).toBeGreaterThan(20);
  expect(ledger.getErrors).toEqual([]); // rf 2: the other replica always answers

  // Status shows it down (down after 3 s in tests).
  await eventually("the SPM marks the killed peer down", 10_000, async () => {
    const status = await spmStatus(vss!);
    return status.peers.find((peer) => peer.id === victim.id)?.state === "down";
  });
  const { stdout } = await cli(["status", "--json", "--spm", vss.spm.address]);
  expect(JSON.parse(stdout).peers.find((peer: { id: string }) => peer.id === victim.id).state).toBe("down");

  // Healing: every chunk back at rf on live peers, checked chunk by chunk.
  const live = new Set(vss.peers.filter((peer) => peer !== victim).map((peer) => peer.id));
  await eventually("every chunk is back at rf on live peers", 60_000, async () => {
    for (const key of ledger.acknowledged.keys()) {
      const stat = await client.stat("loss", key);
      for (const chunk of stat.chunks) if (chunk.peers.filter((id) => live.has(id)).length < stat.rf) return `${key} chunk ${chunk.index} on ${chunk.peers.join(",")}`;
    }
    return true;
  });
  const someKey = [...ledger.acknowledged.keys()].find((key) => (ledger.acknowledged.get(key)?.byteLength ?? 0) > 300_000) ?? [...ledger.acknowledged.keys()][0]!;
  const statJson = await cli(["stat", `loss/${someKey}`, "--json", "--router", vss.routers[0]!.address]);
  expect(statJson.code).toBe(0);
  for (const chunk of JSON.parse(statJson.stdout).chunks) expect(chunk.peers.filter((id: string) => live.has(id)).length).toBeGreaterThanOrEqual(2);
  const healed = await spmStatus(vss);
  expect(healed.underReplicated).toBe(0);
  expect(healed.healing.healedChunks).toBeGreaterThan(0);
  expect(await verifyAll(client, "loss", ledger, "after heal")).toEqual([]);

  // The lost peer returns with its data: replicas beyond rf are trimmed.
  await vss.startPeer(1);
  await eventually("extra replicas are trimmed to rf", 30_000, async () => {
    for (const key of ledger.acknowledged.keys()) {
      const stat = await client.stat("loss", key);
      for (const chunk of stat.chunks) if (chunk.peers.length !== stat.rf) return `${key} chunk ${chunk.index} has ${chunk.peers.length} replicas`;
    }
    return true;
  });
  expect((await spmStatus(vss)).healing.trimmedReplicas).toBeGreaterThan(0);
  expect(await verifyAll(client, "loss", ledger, "after trim")).toEqual([]);
  expect(ledger.wrongBytes).toEqual([]);
  console.log(`[peer-loss] acknowledged ${ledger.acknowledged.size} balls, ${ledger.gets} gets, ${ledger.putErrors.length} put errors (not acknowledged)`);
  client.close();
}, 180_000);
