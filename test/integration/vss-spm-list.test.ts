// `--spm a,b,c` with real processes, before several SPMs share a catalog: a router given an SPM
// that is down ahead of the VSS's passes it over (puts and gets byte-exact) and heartbeats to
// each; a peer heartbeats to every SPM of its list, joins its own VSS and is refused by another
// VSS's SPM (its identity keeps the first); `status` asks each SPM and shows the one down.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, clientFor, clientPoolOptions, eventually, kill9, programCommand, spmStatus, startRole, startTestVss, tempDir } from "../support/vss.ts";
import { freePort } from "../support/etcd.ts";
import type { NodeRole } from "../../src/lib/node-identity.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { routerOps } from "../../src/protocol/router.ts";
import type { RoleProcess } from "../../src/local/process.ts";

const { random, seed } = seededRandom("vss-spm-list");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let other: Awaited<ReturnType<typeof startTestVss>>;
/** An address nothing listens on. */
let down: string;
const started: RoleProcess[] = [];
let scratch: string;

beforeAll(async () => {
  [vss, other] = await Promise.all([
    startTestVss({ label: "spm-list", peers: 2, routers: 0 }),
    startTestVss({ label: "spm-list-other", peers: 0, routers: 0 }),
  ]);
  down = `127.0.0.1:${await freePort()}`;
  scratch = tempDir("spm-list-roles");
});
afterAll(async () => {
  for (const role of started) kill9(role);
  await Promise.all(started.map((role) => role.exited));
  await Promise.all([vss?.cleanup(), other?.cleanup()]);
});

/** A role of the test's own, with a certificate of the tests' shared CA (as the VSSs' roles have). */
async function role(name: string, kind: NodeRole, args: string[]): Promise<RoleProcess> {
  if (vss.security.insecure) throw new Error("the test VSS runs with TLS");
  const tls = await vss.security.roleArgs(kind, name);
  const process_ = await startRole(name, [kind, ...args, ...tls, "--metrics-port", "off"], join(scratch, `${name}.log`), programCommand());
  started.push(process_);
  return process_;
}

describe(`--spm lists (seed ${seed})`, () => {
  test("a router passes over an SPM that is down, heartbeats to the one up, and reports the list", async () => {
    // (Every SPM of a list getting heartbeats, and the leader preferred: vss-ha.test.ts, with SPMs of one VSS.)
    const router = await role("router-list", "router", ["--port", "0", "--spm", `${down},${vss.spm.address}`]);
    const client = clientFor(vss, { routers: [router.address], chunkSize: 64 * 1024 });
    try {
      const balls = new Map<string, Uint8Array>();
      for (let i = 0; i < 6; i += 1) {
        const data = randomBytes(random, 1 + Math.floor(random() * 200 * 1024));
        await client.put("list", `ball-${i}`, data);
        balls.set(`ball-${i}`, data);
      }
      for (const [key, data] of balls) expect(Buffer.from(await client.get("list", key)).equals(Buffer.from(data))).toBe(true);
      const pool = new RpcPool({ role: "router", ...clientPoolOptions(vss) });
      try {
        const health = await new ServiceClient(routerOps, pool, parseAddress(router.address)).call("router.health", {});
        expect(health.spms).toEqual([down, vss.spm.address]);
        expect(health.spm).toBe(`${down},${vss.spm.address}`);
        // An SPM without --coordination leads alone, and says so in its heartbeat replies.
        await eventually("the router asks the SPM that answers first", 10_000, async () => (await new ServiceClient(routerOps, pool, parseAddress(router.address)).call("router.health", {})).spmLeader === vss.spm.address);
      } finally {
        pool.close();
      }
      await eventually("the SPM lists the router", 10_000, async () => (await spmStatus(vss)).routers.some((entry) => entry.address === router.address));
    } finally {
      client.close();
    }
  });

  test("a peer heartbeats to every SPM of its list: its own VSS takes it, another VSS's refuses it, one down is logged", async () => {
    const data = join(scratch, "peer-list");
    // First alone with its VSS, so it is that VSS's peer whatever answers first later.
    const first = await role("peer-list", "peer", ["--port", "0", "--data", data, "--id", "peer-list", "--spm", vss.spm.address]);
    await eventually("peer-list joins its VSS", 10_000, async () => (await spmStatus(vss)).peers.some((peer) => peer.id === "peer-list" && peer.state === "up"));
    // The SPM lists it as soon as it takes the heartbeat; the peer writes the VSS id to its
    // identity file only once the reply is back. Killed between the two, it would restart
    // knowing no VSS and be taken by whichever SPM answers first.
    await eventually("peer-list keeps its VSS id on disk", 10_000, () => {
      try {
        return typeof (JSON.parse(readFileSync(join(data, "peer.json"), "utf8")) as { vssId?: unknown }).vssId === "string";
      } catch {
        return false;
      }
    });
    kill9(first);
    await first.exited;
    const peer = await role("peer-list", "peer", ["--port", "0", "--data", data, "--id", "peer-list", "--spm", `${vss.spm.address},${down},${other.spm.address}`]);
    const log = () => readFileSync(join(scratch, "peer-list.log"), "utf8");
    await eventually("the other VSS's SPM refuses it, and the one down is said", 15_000, () => {
      const text = log();
      return (text.includes(`SPM ${other.spm.address} refused this peer`) && text.includes(`cannot reach SPM ${down}`)) || text.slice(-400);
    });
    expect(log()).toContain(`belongs to VSS ${(await spmStatus(vss)).vssId}`);
    const ownStatus = await spmStatus(vss);
    expect(ownStatus.peers.find((entry) => entry.id === "peer-list")?.address).toBe(peer.address);
    expect((await spmStatus(other)).peers.map((entry) => entry.id)).not.toContain("peer-list");
    const identity = JSON.parse(readFileSync(join(data, "peer.json"), "utf8")) as { vssId: string };
    expect(identity.vssId).toBe(ownStatus.vssId);
  });

  test("status asks each SPM: one down is shown as down, the rest from the one that answers; none answering fails naming both", async () => {
    const json = await cli(["status", "--json", "--spm", `${down},${vss.spm.address}`]);
    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as { spm: string; spms: { address: string; role: string; error?: string }[]; peers: unknown[] };
    expect(status.spm).toBe(vss.spm.address);
    expect(status.spms.map(({ address, role: part }) => ({ address, role: part }))).toEqual([
      { address: down, role: "down" },
      { address: vss.spm.address, role: "leader" }, // an SPM without --coordination leads alone
    ]);
    expect(status.spms[0]?.error).toContain("refused the connection");
    const text = await cli(["status", "--spm", `${down},${vss.spm.address}`]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`spms         ${down} DOWN  ${vss.spm.address} leader`);
    const none = await cli(["status", "--spm", `${down},127.0.0.1:${await freePort()}`]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`no SPM answered (tried ${down}, 127.0.0.1:`);
    const bad = await cli(["status", "--spm", `${vss.spm.address},nonsense`]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"nonsense" is not an address');
  });
});
