// Several SPMs, one leader (issue 14): two SPM processes of the real binary share one catalog
// and elect a leader on a real etcd. The standby serves reads and refuses writes naming the
// leader; kill -9 of the leader makes the standby lead at a larger term within about a lease;
// a leader frozen (SIGSTOP) past its lease is replaced, and once resumed takes no write, says it
// lost leadership, and serves as a standby. (Two SPMs on one host share a sqlite catalog here;
// across hosts they share PostgreSQL: docs/ha.md.)
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRole, type RoleProcess } from "../../src/local/process.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { spmOps } from "../../src/protocol/spm.ts";
import { toMictlanxError } from "../../src/lib/errors.ts";
import { Catalog, leaderTermKey } from "../../src/catalog/index.ts";
import { etcdUnavailable, startTestEtcd, type TestEtcd } from "../support/etcd.ts";
import { eventually, programCommand } from "../support/vss.ts";

const leaseTtl = "2s";
let etcd: TestEtcd | undefined;
let dir: string;
const spms: RoleProcess[] = [];
const pool = new RpcPool({ role: "spm", expectRole: "spm", connectAttempts: 1, connectTimeoutMs: 1_000 });

if (etcdUnavailable) console.log(`[spm-ha] SKIPPED: ${etcdUnavailable}`);

beforeAll(async () => {
  if (etcdUnavailable) return;
  etcd = await startTestEtcd("spm-ha");
  dir = mkdtempSync(join(tmpdir(), "mictlanx-spm-ha-"));
});
afterAll(async () => {
  for (const spm of spms) if (spm.proc.exitCode === null && spm.proc.signalCode === null) process.kill(spm.pid, "SIGKILL");
  await Promise.all(spms.map((spm) => spm.exited));
  pool.close();
  await etcd?.cleanup();
  if (dir && !process.env.MICTLANX_KEEP) rmSync(dir, { recursive: true, force: true });
});

async function startSpm(name: string): Promise<RoleProcess> {
  const args = ["spm", "--port", "0", "--metrics-port", "off", "--data", join(dir, name), "--insecure", "--catalog", `sqlite:${join(dir, "catalog")}`, "--coordination", etcd!.url, "--lease-ttl", leaseTtl];
  const spm = await startRole(name, args, join(dir, `${name}.log`), programCommand());
  spms.push(spm);
  return spm;
}

const spmAt = (spm: RoleProcess) => new ServiceClient(spmOps, pool, parseAddress(spm.address));

async function leadershipOf(spm: RoleProcess) {
  try {
    return (await spmAt(spm).call("vss.status", {}, { timeoutMs: 2_000 })).leadership;
  } catch {
    return undefined;
  }
}

/** The one leader among `candidates` (and the others standbys that name it), once there is one. */
async function soleLeader(candidates: RoleProcess[], minTerm = 0): Promise<{ leader: RoleProcess; term: number }> {
  let found: { leader: RoleProcess; term: number } | undefined;
  await eventually(`one leader among ${candidates.map((spm) => spm.name).join(", ")} above term ${minTerm}`, 30_000, async () => {
    const views = await Promise.all(candidates.map(leadershipOf));
    const leaders = candidates.filter((_, i) => views[i]?.role === "leader");
    if (leaders.length !== 1) return `leaders: ${leaders.length} (${JSON.stringify(views)})`;
    const term = views[candidates.indexOf(leaders[0]!)]!.term ?? 0;
    if (term <= minTerm) return `term ${term}`;
    if (!views.every((view) => view?.role === "leader" || view?.leader === leaders[0]!.address)) return `standbys do not name it yet: ${JSON.stringify(views)}`;
    found = { leader: leaders[0]!, term };
    return true;
  });
  return found!;
}

async function writeError(spm: RoleProcess, bucket: string) {
  return toMictlanxError(await spmAt(spm).call("bucket.create", { bucket }).then(() => undefined, (error: unknown) => error));
}

describe.skipIf(etcdUnavailable !== undefined)("two SPMs on one etcd", () => {
  test("one leads, the standby refuses writes naming it and serves reads; kill -9 of the leader: the standby leads at a larger term", async () => {
    const a = await startSpm("spm-a");
    const b = await startSpm("spm-b");
    const first = await soleLeader([a, b]);
    const standby = first.leader === a ? b : a;
    await spmAt(first.leader).call("bucket.create", { bucket: "made-by-leader" });
    const refused = await writeError(standby, "made-by-standby");
    expect(refused.code).toBe("unavailable");
    expect(refused.message).toContain(`is a standby and takes no writes: the leader is ${first.leader.address} (term ${first.term})`);
    // Reads: the standby answers from the shared catalog.
    const buckets = await spmAt(standby).call("bucket.list", { limit: 100 });
    expect(buckets.buckets.map((bucket) => bucket.name)).toEqual(["made-by-leader"]);

    const killedMs = performance.now();
    process.kill(first.leader.pid, "SIGKILL");
    await first.leader.exited;
    const second = await soleLeader([standby], first.term);
    const failoverMs = performance.now() - killedMs;
    await spmAt(standby).call("bucket.create", { bucket: "after-failover" });
    console.log(`[spm-ha] failover after kill -9 of the leader: ${failoverMs.toFixed(0)} ms (lease ${leaseTtl}); terms ${first.term} → ${second.term}`);
    expect(failoverMs).toBeLessThan(30_000);

    // The old leader, started again, serves as a standby of the new one.
    const again = await startSpm(first.leader.name);
    await soleLeader([standby, again], first.term);
    expect((await leadershipOf(again))?.role).toBe("standby");
  }, 120_000);

  test("a leader frozen past its lease is replaced; resumed, it takes no write, says it lost leadership, and is a standby", async () => {
    const live = spms.filter((spm) => spm.proc.exitCode === null && spm.proc.signalCode === null);
    const { leader, term } = await soleLeader(live);
    const other = live.find((spm) => spm !== leader)!;
    process.kill(leader.pid, "SIGSTOP");
    let resumed = false;
    try {
      // Sent while it is frozen: it reads the request only once resumed, after another leads.
      const late = spmAt(leader).call("bucket.create", { bucket: "late-from-old-leader" }, { timeoutMs: 60_000 }).then(() => "written", (error: unknown) => toMictlanxError(error));
      const next = await soleLeader([other], term);
      await spmAt(other).call("bucket.create", { bucket: "by-new-leader" });
      process.kill(leader.pid, "SIGCONT");
      resumed = true;
      const outcome = await late;
      expect(outcome).not.toBe("written");
      expect((outcome as ReturnType<typeof toMictlanxError>).code).toBe("unavailable");
      await soleLeader([other, leader], term);
      expect((await leadershipOf(leader))?.role).toBe("standby");
      const status = await spmAt(leader).call("vss.status", {});
      expect(status.events.some((event) => event.kind === "spm_demoted")).toBe(true);
      const names = (await spmAt(other).call("bucket.list", { limit: 100 })).buckets.map((bucket) => bucket.name);
      expect(names).toContain("by-new-leader");
      expect(names).not.toContain("late-from-old-leader");
      const catalog = Catalog.open(join(dir, "catalog", "catalog.sqlite"));
      try {
        expect(Number(catalog.getMeta(leaderTermKey))).toBe(next.term);
      } finally {
        catalog.close();
      }
    } finally {
      if (!resumed) process.kill(leader.pid, "SIGCONT");
    }
  }, 120_000);
});
