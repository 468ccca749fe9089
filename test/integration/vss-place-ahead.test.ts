// A multi-chunk put asks the SPM for placements in runs (1, 2, 4, … up to placeAheadChunksMax)
// instead of once per chunk; the ball reads back exact, every chunk is on rf distinct peers,
// and the placements it did not use are collected, leaving exactly rf copies of each chunk.
import { afterAll, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { clientFor, eventually, spmStatus, startTestVss } from "../support/vss.ts";
import { parsePrometheus, total } from "../support/prometheus.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { peerOps } from "../../src/protocol/peer.ts";
import { vssLimits } from "../../src/lib/limits.ts";

const { random, seed } = seededRandom("place-ahead");
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
afterAll(async () => vss?.cleanup());

async function placeCalls(): Promise<number> {
  const text = await (await fetch(vss!.spm.metricsUrl!)).text();
  return total(parsePrometheus(text), "mictlanx_spm_requests_total", { op: "ball.place" });
}

test(`placements are asked for in runs; unused ones are collected (seed ${seed})`, async () => {
  vss = await startTestVss({ label: "place-ahead", peers: 3, routers: 1 });
  const client = clientFor(vss, { chunkSize: 16 * 1024 });
  const chunks = 40;
  const data = randomBytes(random, chunks * 16 * 1024 - 100); // 40 chunks, the last one short
  const before = await placeCalls();
  const put = await client.put("ahead", "forty.bin", data, { rf: 2 });
  const calls = (await placeCalls()) - before;
  // Runs of 1, 2, 4, 8, 16, 16 cover 47 indexes; one call per chunk would be 40.
  expect(put.numChunks).toBe(chunks);
  expect(calls).toBeLessThanOrEqual(Math.ceil(Math.log2(vssLimits.placeAheadChunksMax)) + Math.ceil(chunks / vssLimits.placeAheadChunksMax) + 1);
  console.log(`[place-ahead] ${chunks} chunks placed with ${calls} ball.place calls`);

  expect(Buffer.compare(Buffer.from(await client.get("ahead", "forty.bin")), Buffer.from(data))).toBe(0);
  const stat = await client.stat("ahead", "forty.bin");
  for (const chunk of stat.chunks) expect(new Set(chunk.peers).size).toBe(2);

  // The placements past the last chunk became garbage at the commit and are gone again.
  await eventually("no garbage is left", 15_000, async () => {
    const status = await spmStatus(vss!);
    return status.garbage === 0 || `garbage ${status.garbage}`;
  });
  const pool = new RpcPool({ role: "peer" });
  let copies = 0;
  for (const peer of vss.peers) {
    const listed = await new ServiceClient(peerOps, pool, parseAddress(peer.address)).call("chunk.list", { bucket: "ahead", ballPrefix: put.objectId, limit: 1000 });
    for (const chunk of listed.chunks) {
      expect(chunk.index).toBeLessThan(chunks); // nothing was written for an unused placement
      copies += 1;
    }
  }
  expect(copies).toBe(chunks * 2);
  pool.close();
  client.close();
}, 60_000);
