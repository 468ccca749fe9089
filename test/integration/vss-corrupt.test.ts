// A replica corrupted on disk: every get still returns the right bytes (the bad replica is
// refused by its checksum, another is read), and the bad replica is repaired from a good one.
import { afterAll, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { clientFor, eventually, spmStatus, startTestVss } from "../support/vss.ts";
import { flipByteOnDisk } from "../support/corrupt.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { peerOps } from "../../src/protocol/peer.ts";

const { random, seed } = seededRandom("corrupt");
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
afterAll(async () => vss?.cleanup());

test(`a corrupt replica is never served and is repaired (seed ${seed})`, async () => {
  vss = await startTestVss({ label: "corrupt", peers: 3, routers: 1 });
  const client = clientFor(vss, { chunkSize: 256 * 1024 });
  const data = randomBytes(random, 1024 * 1024);
  await client.put("c", "ball.bin", data, { rf: 2 });
  const stat = await client.stat("c", "ball.bin");
  const chunk = stat.chunks[1]!;
  const holder = vss.peers.find((peer) => peer.id === chunk.peers[0])!;
  const needle = data.subarray(256 * 1024 + 1000, 256 * 1024 + 1064); // inside chunk 1
  expect(flipByteOnDisk(holder.data, needle)).toBe(true);

  // The holder now refuses to serve its copy (the peer checks every read).
  const pool = new RpcPool({ role: "peer" });
  const direct = new ServiceClient(peerOps, pool, parseAddress(holder.address));
  const refused = await direct.call("chunk.get", { bucket: "c", ball: stat.objectId, index: 1 }).catch((error) => error);
  expect(refused.code).toBe("corrupt");

  // Gets return the right bytes every time, whichever replica the router tries first. A fresh
  // client each time, so no client-side cache stands between the read and the router.
  for (let i = 0; i < 10; i += 1) {
    const reader = clientFor(vss);
    expect(Buffer.compare(Buffer.from(await reader.get("c", "ball.bin")), Buffer.from(data))).toBe(0);
    reader.close();
  }

  // The SPM was told and rewrote the bad replica from the good one.
  await eventually("the corrupt replica is repaired", 20_000, async () => {
    const status = await spmStatus(vss!);
    return status.healing.repairedCorrupt >= 1 || `repaired ${status.healing.repairedCorrupt}`;
  });
  const repaired = await direct.call("chunk.get", { bucket: "c", ball: stat.objectId, index: 1 });
  expect(Buffer.compare(Buffer.from(repaired.data), Buffer.from(data.subarray(256 * 1024, 512 * 1024)))).toBe(0);
  expect((await spmStatus(vss)).events.some((event) => event.kind === "corrupt_repaired")).toBe(true);
  pool.close();
  client.close();
}, 60_000);
