// Uploads longer than the intent lifetime: one that keeps making progress, however slowly, never
// expires; an idle one does, its late chunks are refused before they reach a peer, and nothing
// it wrote stays behind. The SPM runs with a 2 s upload lifetime so "long" takes seconds.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { clientFor, eventually, fastSpmArgs, startTestVss } from "../support/vss.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { routerOps } from "../../src/protocol/router.ts";
import { peerOps } from "../../src/protocol/peer.ts";
import { chunkChecksum, checksumHex } from "../../src/lib/checksum.ts";
import { rejection } from "../support/errors.ts";
import { asAdmin, asSpm } from "../support/security.ts";

const { random, seed } = seededRandom("uploads");
const ttlMs = 2_000;
let vss: Awaited<ReturnType<typeof startTestVss>>;
const pool = new RpcPool({ role: "test", ...asAdmin });
/** To the peers, as the SPM would call them. */
const peerPool = new RpcPool({ role: "test", ...asSpm });

beforeAll(async () => {
  vss = await startTestVss({ label: "uploads", peers: 3, routers: 1, spmArgs: [...fastSpmArgs, "--upload-ttl", `${ttlMs}ms`] });
});
afterAll(async () => {
  pool.close();
  peerPool.close();
  await vss?.cleanup();
});


describe(`uploads that outlive the intent lifetime (seed ${seed})`, () => {
  test("a put that trickles in over several lifetimes succeeds and reads back exactly", async () => {
    const chunkSize = 64 * 1024;
    const pieces = Array.from({ length: 9 }, () => randomBytes(random, chunkSize));
    let next = 0;
    // One chunk every 1.2 s: 10 s in all, 5 lifetimes, and 4.8 s between the placement runs of
    // chunks 3 and 7: only touching keeps the upload alive across that gap.
    const slow = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (next === pieces.length) return controller.close();
        if (next > 0) await Bun.sleep(1_200);
        controller.enqueue(pieces[next]!);
        next += 1;
      },
    });
    const client = clientFor(vss, { chunkSize, concurrency: 2 });
    const result = await client.put("up", "slow.bin", slow);
    expect(result.numChunks).toBe(9);
    expect(Buffer.compare(Buffer.from(await client.get("up", "slow.bin")), Buffer.concat(pieces))).toBe(0);
    client.close();
  }, 60_000);

  test("an idle upload expires: its next chunk is refused before any peer sees it, its commit fails, and its chunks are deleted", async () => {
    const router = new ServiceClient(routerOps, pool, parseAddress(vss.routers[0]!.address));
    const { objectId } = await router.call("ball.begin", { bucket: "up", key: "idle.bin", rf: 2 });
    const chunk = (index: number) => {
      const data = randomBytes(random, 1000 + index);
      return { bucket: "up", key: "idle.bin", objectId, index, rf: 2, data, checksum: checksumHex(chunkChecksum(data)) };
    };
    const written = [await router.call("ball.putChunk", chunk(0)), await router.call("ball.putChunk", chunk(1))];
    await Bun.sleep(ttlMs + 2_500); // idle past the lifetime and the SPM's next look at intents
    const late = await rejection(router.call("ball.putChunk", chunk(2)));
    expect(late.code).toBe("conflict");
    expect(late.message).toContain("start the put again");
    const commit = await rejection(
      router.call("ball.commit", { bucket: "up", key: "idle.bin", size: 2001, checksum: "0".repeat(64), contentType: "", tags: {}, rf: 2, chunkSize: 4096, objectId, chunks: written }),
    );
    expect(commit.code).toBe("conflict");
    const peers = vss.peers.map((peer) => new ServiceClient(peerOps, peerPool, parseAddress(peer.address)));
    await eventually("no chunk of the expired upload is left on any peer", 20_000, async () => {
      let left = 0;
      for (const peer of peers) left += (await peer.call("chunk.list", { bucket: "up", ballPrefix: objectId, limit: 100 })).chunks.length;
      return left === 0 || `${left} left`;
    });
  }, 60_000);

  test("a commit naming replicas the SPM never placed, or more bytes than its chunks hold, is a bad_request that harms nothing else", async () => {
    const client = clientFor(vss);
    await client.put("up", "bystander", randomBytes(random, 10_000));
    const router = new ServiceClient(routerOps, pool, parseAddress(vss.routers[0]!.address));
    const { objectId } = await router.call("ball.begin", { bucket: "up", key: "forged", rf: 2 });
    const data = randomBytes(random, 4096);
    const record = await router.call("ball.putChunk", { bucket: "up", key: "forged", objectId, index: 0, rf: 2, data, checksum: checksumHex(chunkChecksum(data)) });
    const unplaced = vss.peers.map((peer) => peer.id).find((id) => !record.peers.includes(id))!;
    const sha256 = new Bun.CryptoHasher("sha256").update(data).digest("hex");
    const declaration = { bucket: "up", key: "forged", checksum: sha256, contentType: "", rf: 2, chunkSize: 4096, objectId };
    const forged = await rejection(router.call("ball.commit", { ...declaration, size: 4096, tags: {}, chunks: [{ ...record, peers: [record.peers[0]!, unplaced] }] }));
    expect(forged.code).toBe("bad_request");
    expect(forged.message).toContain("never placed");
    const huge = await rejection(router.call("ball.commit", { ...declaration, size: Number.MAX_SAFE_INTEGER, tags: { compression: "zstd" }, chunks: [record] }));
    expect(huge.code).toBe("bad_request");
    // Nothing else is harmed: the status and listings work, the honest commit still goes in.
    expect((await router.call("ball.commit", { ...declaration, size: 4096, tags: {}, chunks: [record] })).version).toBe(1);
    const listed = [];
    for await (const page of client.list("up")) listed.push(...page.map((ball) => ball.key));
    expect(listed).toContain("bystander");
    expect(Buffer.compare(Buffer.from(await client.get("up", "forged")), Buffer.from(data))).toBe(0);
    client.close();
  }, 30_000);
});

