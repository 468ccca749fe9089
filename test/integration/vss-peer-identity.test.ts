// Peers that come back different: a wiped data dir under the same id, a twin with the same id,
// and an SPM started on an empty catalog. Real processes; every acknowledged byte read back.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { seededRandom, randomBytes } from "../support/random.ts";
import { clientFor, eventually, fastSpmArgs, kill9, spmStatus, startRole, startTestVss, programCommand, tempDir } from "../support/vss.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { peerOps } from "../../src/protocol/peer.ts";
import type { Client } from "../../src/client/client.ts";
import type { RoleProcess } from "../../src/local/process.ts";
import { readBackAll } from "../support/load.ts";
import { asSpm, sharedSecurity, tlsArgs } from "../support/security.ts";

const { random, seed } = seededRandom("peer-identity");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let client: Client;
const extra: RoleProcess[] = [];
const balls = new Map<string, Uint8Array>();

beforeAll(async () => {
  vss = await startTestVss({ label: "peer-identity", peers: 3, routers: 1 });
  client = clientFor(vss, { chunkSize: 64 * 1024 });
  for (let n = 0; n < 30; n += 1) {
    const data = randomBytes(random, 1 + Math.floor(random() * 300_000));
    await client.put("ids", `ball-${n}`, data, { rf: 2 });
    balls.set(`ball-${n}`, data);
  }
});

afterAll(async () => {
  client?.close();
  for (const role of extra) kill9(role);
  await Promise.all(extra.map((role) => role.exited));
  await vss?.cleanup();
});

const readAll = (phase?: string) => readBackAll(client, "ids", balls, phase);

function peerClient(address: string, pool: RpcPool) {
  return new ServiceClient(peerOps, pool, parseAddress(address));
}

describe(`peers that come back different (seed ${seed})`, () => {
  test("a peer wiped and restarted under its id is a new disk: its replicas are healed, and losing another peer then loses nothing", async () => {
    const wiped = vss.peers[1]!;
    kill9(wiped);
    await wiped.exited;
    rmSync(wiped.data, { recursive: true, force: true });
    await vss.startPeer(1);
    await eventually("the SPM sees the new disk and finds chunks under-replicated or already healed", 20_000, async () => {
      const status = await spmStatus(vss);
      return status.events.some((event) => event.kind === "peer_replaced") || status.events.map((event) => event.message).join(" | ");
    });
    await eventually("healing brings every chunk back to rf", 60_000, async () => {
      const status = await spmStatus(vss);
      return (status.underReplicated === 0 && status.healing.healedChunks > 0) || `under ${status.underReplicated}, healed ${status.healing.healedChunks}`;
    });
    expect(await readAll("after the wipe")).toEqual([]);
    // The second loss: with the wiped peer's replicas really back, every ball still has one.
    kill9(vss.peers[2]!);
    expect(await readAll("after losing a second peer")).toEqual([]);
    await vss.startPeer(2);
  }, 120_000);

  test("a twin (another process, same --id, another data dir) is refused with the other's address, and nothing moves", async () => {
    const original = vss.peers[0]!;
    const before = (await spmStatus(vss)).peers.find((peer) => peer.id === original.id)!;
    const twinDir = tempDir("twin");
    const log = join(twinDir, "twin.log");
    const twin = await startRole(
      "twin",
      // A copied data dir or a mistaken --id on another host: with the same certificate too.
      ["peer", "--port", "0", "--data", join(twinDir, "data"), "--id", original.id, "--spm", vss.spm.address, ...(await tlsArgs("peer", original.id))],
      log,
      programCommand(),
    );
    extra.push(twin);
    await eventually("the twin is told it is refused, naming the other's address", 15_000, () => {
      const text = readFileSync(log, "utf8");
      return (text.includes("refused") && text.includes(original.address)) || text.slice(-300);
    });
    for (let n = 0; n < 5; n += 1) {
      const data = randomBytes(random, 50_000);
      await client.put("ids", `after-twin-${n}`, data, { rf: 3 });
      balls.set(`after-twin-${n}`, data);
    }
    const after = (await spmStatus(vss)).peers.find((peer) => peer.id === original.id)!;
    expect(after.address).toBe(before.address);
    expect(after.state).toBe("up");
    const pool = new RpcPool({ role: "peer", ...asSpm });
    expect((await peerClient(twin.address, pool).call("peer.health", {})).chunks).toBe(0);
    pool.close();
    expect(await readAll("with a twin about")).toEqual([]);
    kill9(twin);
    await twin.exited;
    rmSync(twinDir, { recursive: true, force: true });
  }, 60_000);

  test("an SPM started on an empty catalog gets no peers and no say over their data; the real one gets them back", async () => {
    const held = async () => {
      const pool = new RpcPool({ role: "peer", ...asSpm });
      try {
        let sum = 0;
        for (const peer of vss.peers) sum += (await peerClient(peer.address, pool).call("peer.health", {})).chunks;
        return sum;
      } finally {
        pool.close();
      }
    };
    const chunksBefore = await held();
    kill9(vss.spm);
    await vss.spm.exited;
    const emptyDir = tempDir("empty-spm");
    const port = vss.spm.address.split(":")[1]!;
    const impostor = await startRole("empty-spm", ["spm", "--port", port, "--data", emptyDir, ...fastSpmArgs, ...(await tlsArgs("spm", "spm")), "--credentials", sharedSecurity.credentialsPath], join(emptyDir, "spm.log"), programCommand());
    extra.push(impostor);
    const pool = new RpcPool({ role: "spm" });
    await eventually("the empty SPM refuses every peer", 15_000, async () => {
      const status = await spmStatus({ ...vss, spm: impostor });
      const refused = status.events.filter((event) => event.kind === "peer_refused").length;
      return (status.peers.length === 0 && refused >= 3) || `${status.peers.length} peers, ${refused} refusals`;
    });
    // An order from a VSS the peer does not belong to is refused by the peer itself.
    const peerPool = new RpcPool({ role: "peer", ...asSpm });
    const victim = peerClient(vss.peers[0]!.address, peerPool);
    const listed = (await victim.call("chunk.list", { limit: 1 })).chunks[0]!;
    const order = await victim.call("chunk.delete", { bucket: listed.bucket, ball: listed.ball, index: listed.index, vssId: "another-vss" }).then(
      () => "accepted",
      (error: Error) => error.message,
    );
    expect(order).toContain("takes no orders");
    peerPool.close();
    pool.close();
    kill9(impostor);
    await impostor.exited;
    rmSync(emptyDir, { recursive: true, force: true });
    await vss.startSpm();
    await eventually("the real SPM has its peers back", 20_000, async () => (await spmStatus(vss)).peers.filter((peer) => peer.state === "up").length === 3);
    expect(await held()).toBe(chunksBefore);
    expect(await readAll("after the empty SPM")).toEqual([]);
  }, 90_000);
});
