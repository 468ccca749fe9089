// A replica corrupted on disk: every get still returns the right bytes (the bad replica is
// refused by its checksum, another is read), and the bad replica is repaired from a good one.
import { afterAll, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { clientFor, eventually, spmStatus, startTestVss } from "../support/vss.ts";
import { flipByteOnDisk } from "../support/corrupt.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { peerOps } from "../../src/protocol/peer.ts";
import { spmOps } from "../../src/protocol/spm.ts";
import { asRouter, asSpm } from "../support/security.ts";

const { random, seed } = seededRandom("corrupt");
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
let second: Awaited<ReturnType<typeof startTestVss>> | undefined;
afterAll(async () => {
  await vss?.cleanup();
  await second?.cleanup();
});

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
  const pool = new RpcPool({ role: "peer", ...asSpm });
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

// When the repair itself fails (here: the only other replica is corrupt too, so the copy is
// refused by its checksum), the reported replica is dropped from the catalog instead of being
// left listed as good, healing never spreads the bad bytes, and reads fail loudly.
test(`a repair that fails drops the bad replica; no corrupt byte is copied or served (seed ${seed})`, async () => {
  second = await startTestVss({ label: "corrupt-fail", peers: 3, routers: 1 });
  const client = clientFor(second, { chunkSize: 256 * 1024 });
  const data = randomBytes(random, 512 * 1024);
  await client.put("c", "both-bad.bin", data, { rf: 2 });
  const stat = await client.stat("c", "both-bad.bin");
  const chunk = stat.chunks[1]!;
  expect(chunk.peers.length).toBe(2);
  const [reportedId, otherId] = chunk.peers as [string, string];
  const needle = data.subarray(256 * 1024 + 5000, 256 * 1024 + 5064); // inside chunk 1
  for (const id of [reportedId, otherId]) {
    const peer = second.peers.find((candidate) => candidate.id === id)!;
    expect(flipByteOnDisk(peer.data, needle)).toBe(true);
  }

  const pool = new RpcPool({ role: "spm", ...asRouter });
  const spm = new ServiceClient(spmOps, pool, parseAddress(second.spm.address));
  const failuresBefore = (await spmStatus(second)).healing.failures;
  // What a router sends when a replica fails its checksum.
  const reply = await spm.call("replica.corrupt", { objectId: stat.objectId, index: 1, peerId: reportedId, detail: "test: checksum mismatch" });
  expect(reply.accepted).toBe(false);
  const located = await spm.call("chunk.locate", { objectId: stat.objectId, index: 1 });
  expect(located.peers.map((peer) => peer.id)).toEqual([otherId]); // dropped, not left listed as good
  expect((await spmStatus(second)).healing.failures).toBeGreaterThan(failuresBefore);

  // Healing tries to restore rf from the remaining replica; every copy is refused by its checksum.
  await eventually("healing has tried and failed to copy the corrupt replica", 15_000, async () => {
    const status = await spmStatus(second!);
    return status.healing.failures >= failuresBefore + 2 || `failures ${status.healing.failures}`;
  });
  const after = await spm.call("chunk.locate", { objectId: stat.objectId, index: 1 });
  expect(after.peers.map((peer) => peer.id)).toEqual([otherId]);

  // A read never returns the damaged bytes: it fails and says why.
  const reader = clientFor(second);
  const error = await reader.get("c", "both-bad.bin").then(
    () => undefined,
    (failure: unknown) => failure as { code?: string; message?: string },
  );
  expect(error).toBeDefined();
  expect(["corrupt", "unavailable"]).toContain(error?.code ?? "");
  expect(error?.message ?? "").toContain("chunk 1");
  reader.close();
  pool.close();
  client.close();
}, 60_000);

// A replica its peer no longer has (here deleted behind the SPM's back) is found by a read and
// reported like a corrupt one: the read still returns the right bytes and the SPM puts the
// replica back, long before the next reconciliation would have noticed.
test(`a replica missing on its peer is reported by a read and restored (seed ${seed})`, async () => {
  const client = clientFor(vss!, { chunkSize: 256 * 1024 });
  const data = randomBytes(random, 600 * 1024);
  await client.put("c", "missing.bin", data, { rf: 2 });
  const stat = await client.stat("c", "missing.bin");
  const holder = vss!.peers.find((peer) => peer.id === stat.chunks[2]!.peers[0])!;
  const pool = new RpcPool({ role: "peer", ...asSpm });
  const direct = new ServiceClient(peerOps, pool, parseAddress(holder.address));
  const { vssId } = await spmStatus(vss!);
  expect((await direct.call("chunk.delete", { bucket: "c", ball: stat.objectId, index: 2, vssId })).deleted).toBe(true);
  const before = (await spmStatus(vss!)).healing.repairedCorrupt;
  await eventually("a read meets the missing replica and the SPM restores it", 30_000, async () => {
    const reader = clientFor(vss!);
    try {
      expect(Buffer.compare(Buffer.from(await reader.get("c", "missing.bin")), Buffer.from(data))).toBe(0);
    } finally {
      reader.close();
    }
    const back = await direct.call("chunk.stat", { bucket: "c", ball: stat.objectId, index: 2 }).then(
      (meta) => meta.checksum === stat.chunks[2]!.checksum,
      () => false,
    );
    return back || "not back yet";
  });
  const status = await spmStatus(vss!);
  expect(status.healing.repairedCorrupt).toBeGreaterThan(before);
  expect(status.events.some((event) => event.kind === "missing_reported")).toBe(true);
  pool.close();
  client.close();
}, 60_000);
