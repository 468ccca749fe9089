// A VSS of real processes: balls from 0 B to 200 MiB at rf 1, 2 and 3, written through one
// router and read back byte-exact through another; ls, stat, overwrite, delete, if-absent.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { clientFor, eventually, startTestVss } from "../support/vss.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { peerOps } from "../../src/protocol/peer.ts";
import { routerOps } from "../../src/protocol/router.ts";
import { rejection } from "../support/errors.ts";
import type { Client } from "../../src/client/client.ts";
import { asSpm, asAdmin } from "../support/security.ts";

const { random, seed } = seededRandom("vss-basic");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let viaA: Client;
let viaB: Client;
const MiB = 1024 * 1024;

beforeAll(async () => {
  vss = await startTestVss({ label: "basic", peers: 3, routers: 2 });
  viaA = clientFor(vss, { routers: [vss.routers[0]!.address], chunkSize: MiB });
  viaB = clientFor(vss, { routers: [vss.routers[1]!.address] });
});

afterAll(async () => {
  viaA?.close();
  viaB?.close();
  await vss?.cleanup();
});

async function readBack(client: Client, bucket: string, key: string, expected: Uint8Array): Promise<void> {
  const { meta, stream } = await client.getStream(bucket, key);
  expect(meta.size).toBe(expected.byteLength);
  let at = 0;
  for await (const piece of stream) {
    // Compare piece by piece: a mismatch names its offset instead of dumping 200 MiB.
    const want = expected.subarray(at, at + piece.byteLength);
    if (Buffer.compare(Buffer.from(piece), Buffer.from(want)) !== 0) throw new Error(`bytes differ in [${at}, ${at + piece.byteLength}) (seed ${seed})`);
    at += piece.byteLength;
  }
  expect(at).toBe(expected.byteLength);
}

describe(`put/get through two routers (seed ${seed})`, () => {
  const sizes = [0, 1, 4095, MiB, MiB + 1, Math.floor(7.3 * MiB)];
  for (const rf of [1, 2, 3]) {
    test(`rf ${rf}: sizes ${sizes.join(", ")} read back exact, each chunk on rf distinct peers`, async () => {
      for (const size of sizes) {
        const data = randomBytes(random, size);
        const key = `rf${rf}/size-${size}.bin`;
        const put = await viaA.put("basic", key, data, { rf });
        expect(put.size).toBe(size);
        await readBack(viaB, "basic", key, data);
        const stat = await viaB.stat("basic", key);
        expect(stat.rf).toBe(rf);
        expect(stat.numChunks).toBe(Math.ceil(size / MiB));
        expect(stat.checksum).toBe(new Bun.CryptoHasher("sha256").update(data).digest("hex"));
        for (const chunk of stat.chunks) expect(new Set(chunk.peers).size).toBe(rf);
      }
    });
  }

  test("200 MiB at rf 3: written through one router, read back exact through the other", async () => {
    const size = 200 * MiB;
    const data = randomBytes(random, size);
    await viaA.put("big", "200MiB.bin", data, { rf: 3, chunkSize: 4 * MiB });
    await readBack(viaB, "big", "200MiB.bin", data);
    const stat = await viaA.stat("big", "200MiB.bin");
    expect(stat.numChunks).toBe(50);
    // The chunks of a large ball spread over the pool: with 3 peers and rf 3 every peer has all.
    expect(new Set(stat.chunks.flatMap((chunk) => chunk.peers)).size).toBe(3);
  }, 180_000);

  test("a large ball's chunks spread over the pool at rf 1", async () => {
    const data = randomBytes(random, 24 * MiB);
    await viaA.put("spread", "rf1.bin", data, { rf: 1, chunkSize: MiB });
    const stat = await viaB.stat("spread", "rf1.bin");
    const perPeer = new Map<string, number>();
    for (const chunk of stat.chunks) for (const peer of chunk.peers) perPeer.set(peer, (perPeer.get(peer) ?? 0) + 1);
    expect(perPeer.size).toBe(3);
    // 24 chunks over 3 peers: 8 each on average. Placement is random (two choices by free
    // space), so a peer with as few as 2 happens now and then (~1 % of runs, seen in CI);
    // with 1 or none the chunks would not be spreading.
    for (const count of perPeer.values()) expect(count).toBeGreaterThanOrEqual(2);
  });

  test("rf above the number of peers the VSS has is refused at once with a clear error and writes nothing", async () => {
    const error = await rejection(viaA.put("basic", "too-many.bin", randomBytes(random, 10), { rf: 4 }));
    expect(error.code).toBe("bad_request");
    expect(error.message).toContain("replication factor 4");
    expect((await rejection(viaB.stat("basic", "too-many.bin"))).code).toBe("not_found");
  });

  test("overwrite swaps versions atomically; the old version's replicas are collected", async () => {
    const first = randomBytes(random, 3 * MiB);
    const second = randomBytes(random, 2 * MiB + 5);
    const one = await viaA.put("ow", "k", first);
    const two = await viaB.put("ow", "k", second);
    expect(two.version).toBe(one.version + 1);
    await readBack(viaA, "ow", "k", second); // read-after-write through the other router
    expect((await viaA.stat("ow", "k")).objectId).toBe(two.objectId);
    // The old version's chunks disappear from every peer (garbage collection), the new stay.
    const pool = new RpcPool({ role: "peer", ...asSpm });
    const peers = vss.peers.map((peer) => new ServiceClient(peerOps, pool, parseAddress(peer.address)));
    const held = async (objectId: string) => {
      let count = 0;
      for (const peer of peers) count += (await peer.call("chunk.list", { bucket: "ow", ballPrefix: objectId, limit: 100 })).chunks.length;
      return count;
    };
    await eventually("the old version's replicas are deleted from the peers", 20_000, async () => (await held(one.objectId)) === 0 || `${await held(one.objectId)} left`);
    expect(await held(two.objectId)).toBe(3 * 2); // 3 chunks at rf 2
    // A deleted ball's replicas go the same way.
    await viaA.delete("ow", "k");
    await eventually("a deleted ball's replicas are deleted from the peers", 20_000, async () => (await held(two.objectId)) === 0);
    pool.close();
  }, 60_000);

  test("--if-absent is atomic: the second put of the same key fails and changes nothing", async () => {
    const data = randomBytes(random, 1000);
    await viaA.put("ia", "once", data, { ifAbsent: true });
    const error = await rejection(viaB.put("ia", "once", randomBytes(random, 1000), { ifAbsent: true }));
    expect(error.code).toBe("conflict");
    await readBack(viaB, "ia", "once", data);
  });

  test("a retried put (same request id, first reply lost) is the same version, not a second one or a false conflict", async () => {
    const router = new ServiceClient(routerOps, new RpcPool({ role: "router", ...asAdmin }), parseAddress(vss.routers[0]!.address));
    const data = randomBytes(random, 5000);
    const args = {
      bucket: "retry",
      key: "once",
      size: data.byteLength,
      checksum: new Bun.CryptoHasher("sha256").update(data).digest("hex"),
      contentType: "application/octet-stream",
      tags: {},
      rf: 2,
      chunkSize: 1 << 20,
      ifAbsent: true,
      data,
      requestId: crypto.randomUUID(),
    };
    const first = await router.call("ball.put", args);
    const again = await router.call("ball.put", args); // as if the first reply had been lost
    expect(again).toEqual(first);
    expect(first.version).toBe(1);
    const other = await rejection(router.call("ball.put", { ...args, requestId: crypto.randomUUID() }));
    expect(other.code).toBe("conflict");
    await readBack(viaB, "retry", "once", data);
  });

  test("ls by prefix and by ball id, paginated; delete; buckets", async () => {
    for (let i = 0; i < 25; i += 1) await viaA.put("ls", `dir/${String(i).padStart(2, "0")}`, randomBytes(random, 10), { ballId: i % 2 === 0 ? "even" : "odd" });
    await viaA.put("ls", "other", randomBytes(random, 10));
    const keys: string[] = [];
    for await (const page of viaB.list("ls", { prefix: "dir/", pageSize: 7 })) keys.push(...page.map((ball) => ball.key));
    expect(keys).toEqual(Array.from({ length: 25 }, (_, i) => `dir/${String(i).padStart(2, "0")}`));
    const evens: string[] = [];
    for await (const page of viaB.list("ls", { ballId: "even", pageSize: 4 })) evens.push(...page.map((ball) => ball.key));
    expect(evens.length).toBe(13);
    await viaB.delete("ls", "other");
    expect((await rejection(viaA.stat("ls", "other"))).code).toBe("not_found");
    expect((await rejection(viaA.delete("ls", "other"))).code).toBe("not_found");
    const buckets: string[] = [];
    for await (const page of viaA.buckets()) buckets.push(...page.map((bucket) => bucket.name));
    expect(buckets).toContain("ls");
    expect(buckets).toContain("big");
  });
});
