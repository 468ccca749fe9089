// Reconciliation with real processes: a peer that lost its shards but kept its identity, reads
// that meet a missing replica, chunks no ball uses (collected after the grace, but not when the
// catalog seems to be missing data). Every acknowledged ball is read back exactly.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { seededRandom, randomBytes } from "../support/random.ts";
import { clientFor, eventually, fastSpmArgs, kill9, spmStatus, startTestVss } from "../support/vss.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { peerOps } from "../../src/protocol/peer.ts";
import { chunkChecksum, checksumHex } from "../../src/lib/checksum.ts";
import type { Client } from "../../src/client/client.ts";
import { readBackAll } from "../support/load.ts";
import { asSpm } from "../support/security.ts";

const { random, seed } = seededRandom("reconcile");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let client: Client;
const pool = new RpcPool({ role: "peer", ...asSpm });
const balls = new Map<string, Uint8Array>();

beforeAll(async () => {
  vss = await startTestVss({
    label: "reconcile",
    peers: 3,
    routers: 1,
    spmArgs: [...fastSpmArgs, "--reconcile-every", "2s", "--orphan-grace", "1s"],
  });
  client = clientFor(vss, { chunkSize: 64 * 1024 });
  for (let n = 0; n < 20; n += 1) {
    const data = randomBytes(random, 1 + Math.floor(random() * 200_000));
    await client.put("rec", `ball-${n}`, data, { rf: 2 });
    balls.set(`ball-${n}`, data);
  }
});

afterAll(async () => {
  client?.close();
  pool.close();
  await vss?.cleanup();
});

const peer = (index: number) => new ServiceClient(peerOps, pool, parseAddress(vss.peers[index]!.address));

const readAll = () => readBackAll(client, "rec", balls);

async function holdsObject(index: number, bucket: string, objectId: string): Promise<number> {
  return (await peer(index).call("chunk.list", { bucket, ballPrefix: objectId, limit: 100 })).chunks.length;
}

describe(`the catalog against the peers' holdings (seed ${seed})`, () => {
  test("a peer that lost its shards but kept its identity: reconciliation finds the missing replicas and healing restores them", async () => {
    const victim = vss.peers[2]!;
    const recordsBefore = (await spmStatus(vss)).reconcile.missingReplicas;
    kill9(victim);
    await victim.exited;
    for (const name of readdirSync(victim.data)) if (name !== "peer.json") rmSync(join(victim.data, name), { recursive: true, force: true });
    await vss.startPeer(2);
    await eventually("reconciliation forgets the replicas the peer no longer holds", 30_000, async () => {
      const status = await spmStatus(vss);
      return status.reconcile.missingReplicas > recordsBefore || `missing ${status.reconcile.missingReplicas}, under ${status.underReplicated}`;
    });
    await eventually("healing brings every chunk back to rf", 60_000, async () => {
      const status = await spmStatus(vss);
      return status.underReplicated === 0 || `under ${status.underReplicated}`;
    });
    expect(await readAll()).toEqual([]);
    // The healed replicas are really on the peers the catalog names.
    for (const key of balls.keys()) {
      const stat = await client.stat("rec", key);
      for (const chunk of stat.chunks) {
        for (const id of chunk.peers) {
          const index = vss.peers.findIndex((p) => p.id === id);
          const meta = await peer(index).call("chunk.stat", { bucket: "rec", ball: stat.objectId, index: chunk.index });
          expect(meta.checksum).toBe(chunk.checksum);
        }
      }
    }
  }, 120_000);

  test("a chunk no ball uses is collected after the grace; one of a retired version too", async () => {
    const data = randomBytes(random, 1000);
    const checksum = checksumHex(chunkChecksum(data));
    const stray = "0190aaaa-0000-7000-8000-00000000beef";
    await peer(0).call("chunk.put", { bucket: "rec", ball: stray, index: 0, data, checksum });
    // A late write of a version that was overwritten: the catalog knows it is retired.
    const first = await client.put("rec", "late", randomBytes(random, 500));
    await client.put("rec", "late", randomBytes(random, 500));
    await peer(1).call("chunk.put", { bucket: "rec", ball: first.objectId, index: 3, data, checksum });
    await eventually("both strays are deleted from their peers", 40_000, async () => {
      const left = (await holdsObject(0, "rec", stray)) + (await holdsObject(1, "rec", first.objectId));
      return left === 0 || `${left} left`;
    });
    expect((await spmStatus(vss)).reconcile.orphansCollected).toBeGreaterThanOrEqual(2);
    expect(await readAll()).toEqual([]);
  }, 60_000);

  test("when many chunks on a peer are unknown to the catalog, none is deleted and status says why", async () => {
    const held = (await peer(1).call("peer.health", {})).chunks;
    const strays = Math.ceil(held * 0.2) + 5;
    const data = randomBytes(random, 100);
    const checksum = checksumHex(chunkChecksum(data));
    for (let index = 0; index < strays; index += 1) {
      await peer(1).call("chunk.put", { bucket: "lost-catalog", ball: "0190bbbb-0000-7000-8000-000000000001", index, data, checksum });
    }
    await eventually("status says why nothing is collected on that peer", 40_000, async () => {
      const blocked = (await spmStatus(vss)).reconcile.blocked;
      return blocked.some((entry) => entry.peerId === vss.peers[1]!.id && entry.message.includes("does not know")) || JSON.stringify(blocked);
    });
    // Two more full checks later the strays are all still there.
    const passes = (await spmStatus(vss)).reconcile.passes;
    await eventually("two more checks", 30_000, async () => (await spmStatus(vss)).reconcile.passes >= passes + 6);
    expect(await holdsObject(1, "lost-catalog", "0190bbbb-0000-7000-8000-000000000001")).toBe(strays);
    expect(await readAll()).toEqual([]);
  }, 90_000);
});
