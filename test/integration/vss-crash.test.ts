// kill -9 the SPM and a router mid-load and mid-healing, restart them: no committed ball is
// lost, and healing resumes by itself from the catalog.
import { afterAll, expect, test } from "bun:test";
import { seededRandom } from "../support/random.ts";
import { clientFor, eventually, fastSpmArgs, kill9, spmStatus, startTestVss } from "../support/vss.ts";
import { Ledger, runLoad, verifyAll } from "../support/load.ts";

const { random, seed } = seededRandom("crash");
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
afterAll(async () => vss?.cleanup());

test(`kill -9 SPM and router mid-load and mid-heal; restart; nothing committed is lost (seed ${seed})`, async () => {
  // Healing is throttled to 2 MiB/s so the SPM can be killed while it is under way.
  vss = await startTestVss({ label: "crash", peers: 3, routers: 2, spmArgs: [...fastSpmArgs, "--heal-rate", "2MiB"] });
  const client = clientFor(vss, { chunkSize: 128 * 1024 });
  const ledger = new Ledger();

  // Phase 1: load, and kill -9 the SPM and router-0 in the middle of it.
  const load = runLoad({ client, bucket: "crash", random, ledger, durationMs: 6_000, opsMax: 2_000, workers: 4, sizeMax: 512 * 1024 });
  await Bun.sleep(1_500);
  kill9(vss.spm);
  kill9(vss.routers[0]!);
  await Bun.sleep(1_000);
  await vss.startSpm();
  await vss.startRouter(0);
  await load;
  expect(ledger.wrongBytes).toEqual([]);
  expect(ledger.acknowledged.size).toBeGreaterThan(10);
  // Every acknowledged ball survived the crash (puts while the SPM was away failed, unacknowledged).
  expect(await verifyAll(client, "crash", ledger, "after SPM crash")).toEqual([]);

  // Phase 2: lose a peer, let healing start, kill -9 the SPM mid-heal, restart: healing resumes.
  const victim = vss.peers[2]!;
  kill9(victim);
  await eventually("healing starts", 20_000, async () => {
    const status = await spmStatus(vss!);
    return status.healing.healedChunks > 0 || `healed ${status.healing.healedChunks}, queued ${status.healing.queued}`;
  });
  const before = await spmStatus(vss);
  expect(before.underReplicated).toBeGreaterThan(0);
  kill9(vss.spm);
  await vss.startSpm();
  await eventually("healing resumes after the SPM restart and completes", 120_000, async () => {
    const status = await spmStatus(vss!);
    return (status.underReplicated === 0 && status.peers.find((peer) => peer.id === victim.id)?.state === "down") || `under-replicated ${status.underReplicated}`;
  });
  const live = new Set(vss.peers.filter((peer) => peer !== victim).map((peer) => peer.id));
  for (const key of ledger.acknowledged.keys()) {
    const stat = await client.stat("crash", key);
    for (const chunk of stat.chunks) expect(chunk.peers.filter((id) => live.has(id)).length).toBeGreaterThanOrEqual(stat.rf);
  }
  expect(await verifyAll(client, "crash", ledger, "after heal")).toEqual([]);
  expect(ledger.wrongBytes).toEqual([]);
  console.log(`[crash] acknowledged ${ledger.acknowledged.size}, put errors while the SPM was away ${ledger.putErrors.length}`);
  client.close();
}, 240_000);
