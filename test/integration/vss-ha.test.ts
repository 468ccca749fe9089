// A local VSS with three SPMs on one catalog electing a leader on a real etcd (startLocalVss's
// `ha`, here on a shared sqlite catalog: on one host that works as PostgreSQL does across hosts),
// and its router and peers given all three. Routers and peers find the leader by themselves:
// puts and gets go through; every SPM sees every peer up; `status` shows one leader and two
// standbys; kill -9 of the leader and puts succeed again by themselves, through the same router,
// while gets of what was stored keep working.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, clientFor, clientPoolOptions, eventually, fastSpmArgs, kill9, startTestVss, tempDir } from "../support/vss.ts";
import { etcdUnavailable, startTestEtcd, type TestEtcd } from "../support/etcd.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { routerOps } from "../../src/protocol/router.ts";
import { spmOps } from "../../src/protocol/spm.ts";
import type { Client } from "../../src/client/client.ts";
import type { RoleProcess } from "../../src/local/process.ts";

if (etcdUnavailable) console.log(`[vss-ha] skipped: ${etcdUnavailable}`);
const { random, seed } = seededRandom("vss-ha");
let etcd: TestEtcd | undefined;
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
let client: Client | undefined;
let pool: RpcPool | undefined;

beforeAll(async () => {
  if (etcdUnavailable) return;
  etcd = await startTestEtcd("vss-ha");
  const catalog = tempDir("vss-ha-catalog");
  vss = await startTestVss({ label: "vss-ha", peers: 3, routers: 1, ha: { catalogUrl: `sqlite:${catalog}`, coordinationUrl: etcd.url }, spmArgs: [...fastSpmArgs, "--lease-ttl", "2s"] });
  client = clientFor(vss, { chunkSize: 64 * 1024, retryWindowMs: 30_000 });
  pool = new RpcPool({ role: "spm", connectAttempts: 1, connectTimeoutMs: 1_000, ...clientPoolOptions(vss) });
});
afterAll(async () => {
  client?.close();
  pool?.close();
  await vss?.cleanup();
  await etcd?.cleanup();
});

async function leadershipOf(spm: RoleProcess) {
  try {
    return (await new ServiceClient(spmOps, pool!, parseAddress(spm.address)).call("vss.status", {}, { timeoutMs: 2_000 })).leadership;
  } catch {
    return undefined;
  }
}

/** The one SPM of `among` that leads, once the others name it. */
async function soleLeader(among: RoleProcess[], minTerm = 0): Promise<{ leader: RoleProcess; term: number }> {
  let found: { leader: RoleProcess; term: number } | undefined;
  await eventually("one leader, the others standbys naming it", 30_000, async () => {
    const parts = await Promise.all(among.map(leadershipOf));
    const leaders = among.filter((_, i) => parts[i]?.role === "leader");
    const term = parts.find((part) => part?.role === "leader")?.term ?? 0;
    if (leaders.length !== 1 || term <= minTerm) return JSON.stringify(parts);
    const named = parts.every((part, i) => among[i] === leaders[0] || (part?.role === "standby" && part.leader === leaders[0]!.address));
    if (!named) return JSON.stringify(parts);
    found = { leader: leaders[0]!, term };
    return true;
  });
  return found!;
}

describe.skipIf(etcdUnavailable !== undefined)(`three SPMs, one leader (seed ${seed})`, () => {
  test("routers and peers find the leader by themselves; status shows each SPM; a killed leader is replaced and puts go on", async () => {
    const local = vss!;
    expect(local.spms).toHaveLength(3);
    const { leader, term } = await soleLeader(local.spms);
    console.log(`[vss-ha] leader ${leader.name} ${leader.address} term ${term}`);

    // Every SPM keeps its own registry: each sees every peer up (the peers heartbeat to all three).
    for (const spm of local.spms) {
      await eventually(`${spm.name} sees 3 peers up`, 15_000, async () => {
        const status = await new ServiceClient(spmOps, pool!, parseAddress(spm.address)).call("vss.status", {});
        return status.peers.filter((peer) => peer.state === "up").length === 3 || JSON.stringify(status.peers.map((peer) => peer.state));
      });
    }

    // …and its own router table: each lists the router (it heartbeats to all three).
    for (const spm of local.spms) {
      await eventually(`${spm.name} lists the router`, 10_000, async () => (await new ServiceClient(spmOps, pool!, parseAddress(spm.address)).call("vss.status", {})).routers.some((router) => router.address === local.routers[0]!.address));
    }

    const stored = new Map<string, Uint8Array>();
    for (let i = 0; i < 8; i += 1) {
      const data = randomBytes(random, 1 + Math.floor(random() * 200 * 1024));
      await client!.put("ha", `ball-${i}`, data);
      stored.set(`ball-${i}`, data);
    }
    for (const [key, data] of stored) expect(Buffer.from(await client!.get("ha", key)).equals(Buffer.from(data))).toBe(true);

    const routerPool = new RpcPool({ role: "router", ...clientPoolOptions(local) });
    try {
      const routerAt = new ServiceClient(routerOps, routerPool, parseAddress(local.routers[0]!.address));
      await eventually("the router asks the leader first", 10_000, async () => (await routerAt.call("router.health", {})).spmLeader === leader.address);
      expect((await routerAt.call("router.health", {})).spms).toEqual(local.spms.map((spm) => spm.address));
    } finally {
      routerPool.close();
    }

    const spmList = local.spms.map((spm) => spm.address).join(",");
    const shown = await cli(["status", "--json", "--spm", spmList]);
    expect(shown.code).toBe(0);
    const status = JSON.parse(shown.stdout) as { spm: string; spms: { address: string; role: string; term?: number }[] };
    expect(status.spm).toBe(leader.address);
    expect(status.spms.map((spm) => spm.role).sort()).toEqual(["leader", "standby", "standby"]);
    expect(new Set(status.spms.map((spm) => spm.term))).toEqual(new Set([term]));

    // The leader dies: the next put waits out the election (about a lease) and goes through by itself.
    kill9(leader);
    await leader.exited;
    const killedMs = performance.now();
    const data = randomBytes(random, 50 * 1024);
    await client!.put("ha", "after-failover", data);
    const gapMs = performance.now() - killedMs;
    stored.set("after-failover", data);
    let longestGetMs = 0;
    for (const [key, bytes] of stored) {
      const startedMs = performance.now();
      expect(Buffer.from(await client!.get("ha", key)).equals(Buffer.from(bytes))).toBe(true);
      longestGetMs = Math.max(longestGetMs, performance.now() - startedMs);
    }
    const survivors = local.spms.filter((spm) => spm !== leader);
    const next = await soleLeader(survivors, term);
    console.log(`[vss-ha] after kill -9 of the leader: a put went through ${gapMs.toFixed(0)} ms later; new leader ${next.leader.name} term ${next.term}; longest get after ${longestGetMs.toFixed(0)} ms`);
    expect(gapMs).toBeLessThan(30_000);
    const after = JSON.parse((await cli(["status", "--json", "--spm", spmList])).stdout) as { spms: { address: string; role: string }[] };
    expect(after.spms.find((spm) => spm.address === leader.address)?.role).toBe("down");
    expect(after.spms.filter((spm) => spm.role === "leader").map((spm) => spm.address)).toEqual([next.leader.address]);
  }, 180_000);
});

