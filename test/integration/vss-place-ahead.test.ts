// A multi-chunk put asks the SPM for placements in runs (1, 2, 4, … up to placeAheadChunksMax)
// instead of once per chunk. When the client knows the size, no run goes past the last chunk;
// from a stream it cannot, and the placements it did not use are collected. Either way the ball
// reads back exact, each chunk is on rf distinct peers, and exactly rf copies of each are left.
import { afterAll, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { clientFor, eventually, spmStatus, startTestVss } from "../support/vss.ts";
import { parsePrometheus, total } from "../support/prometheus.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { peerOps } from "../../src/protocol/peer.ts";
import { vssLimits } from "../../src/lib/limits.ts";
import { asSpm } from "../support/security.ts";

const { random, seed } = seededRandom("place-ahead");
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
afterAll(async () => vss?.cleanup());

const chunkBytes = 16 * 1024;
const chunks = 40;

async function requests(url: string | undefined, op: string): Promise<number> {
  const text = await (await fetch(url!)).text();
  return total(parsePrometheus(text), `mictlanx_${url === vss!.spm.metricsUrl ? "spm" : "peer"}_requests_total`, { op });
}

async function peerDeletes(): Promise<number> {
  let sum = 0;
  for (const peer of vss!.peers) sum += await requests(peer.metricsUrl, "chunk.delete");
  return sum;
}

/** Copies of the object's chunks on all peers; fails on any index past the ball's end. */
async function copiesOf(bucket: string, objectId: string): Promise<number> {
  const pool = new RpcPool({ role: "peer", ...asSpm });
  let copies = 0;
  for (const peer of vss!.peers) {
    const listed = await new ServiceClient(peerOps, pool, parseAddress(peer.address)).call("chunk.list", { bucket, ballPrefix: objectId, limit: 1000 });
    for (const chunk of listed.chunks) {
      expect(chunk.index).toBeLessThan(chunks); // nothing is written for a placement a chunk did not use
      copies += 1;
    }
  }
  pool.close();
  return copies;
}

function streamOf(data: Uint8Array, pieceBytes: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= data.byteLength) return controller.close();
      controller.enqueue(data.slice(at, at + pieceBytes));
      at += pieceBytes;
    },
  });
}

test(`placements are asked for in runs; a known size wastes none, a stream's extras are collected (seed ${seed})`, async () => {
  vss = await startTestVss({ label: "place-ahead", peers: 3, routers: 1 });
  const client = clientFor(vss, { chunkSize: chunkBytes });
  const data = randomBytes(random, chunks * chunkBytes - 100); // 40 chunks, the last one short
  const runsMax = Math.ceil(Math.log2(vssLimits.placeAheadChunksMax)) + Math.ceil(chunks / vssLimits.placeAheadChunksMax) + 1;

  // Bytes in memory: the size is known, so the runs (1, 2, 4, 8, 16, 9) stop at chunk 39.
  const deletesBefore = await peerDeletes();
  let before = await requests(vss.spm.metricsUrl, "ball.place");
  const known = await client.put("ahead", "known.bin", data, { rf: 2 });
  const knownCalls = (await requests(vss.spm.metricsUrl, "ball.place")) - before;
  expect(known.numChunks).toBe(chunks);
  expect(knownCalls).toBeLessThanOrEqual(runsMax);
  expect(Buffer.compare(Buffer.from(await client.get("ahead", "known.bin")), Buffer.from(data))).toBe(0);
  for (const chunk of (await client.stat("ahead", "known.bin")).chunks) expect(new Set(chunk.peers).size).toBe(2);
  expect(await copiesOf("ahead", known.objectId)).toBe(chunks * 2);
  // Garbage is collected within a maintenance pass or two (250 ms each); none was made, so no deletes.
  await Bun.sleep(1_000);
  expect(await peerDeletes()).toBe(deletesBefore);

  // A stream: the size is unknown until it ends, so the last run overshoots; the extras are garbage.
  before = await requests(vss.spm.metricsUrl, "ball.place");
  const streamed = await client.put("ahead", "stream.bin", streamOf(data, 10_000), { rf: 2 });
  const streamCalls = (await requests(vss.spm.metricsUrl, "ball.place")) - before;
  expect(streamCalls).toBeLessThanOrEqual(runsMax);
  console.log(`[place-ahead] ${chunks} chunks placed with ${knownCalls} ball.place calls (size known), ${streamCalls} (stream)`);
  expect(Buffer.compare(Buffer.from(await client.get("ahead", "stream.bin")), Buffer.from(data))).toBe(0);
  await eventually("the unused placements are collected", 15_000, async () => {
    const status = await spmStatus(vss!);
    return status.garbage === 0 || `garbage ${status.garbage}`;
  });
  expect(await copiesOf("ahead", streamed.objectId)).toBe(chunks * 2);

  // The stream's overshoot was garbage, deleted from the peers (a no-op for chunks never written).
  const deletes = (await peerDeletes()) - deletesBefore;
  expect(deletes).toBeGreaterThan(0);
  expect(deletes).toBeLessThanOrEqual(vssLimits.placeAheadChunksMax * 2);
  client.close();
}, 60_000);
