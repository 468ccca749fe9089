// `mictlanx up --ha` as a user runs it: PostgreSQL and etcd from the machine's packages, three
// SPMs on them, a router and peers given all three. `status` shows one leader and two standbys
// of one term, a put and a get go through, and Ctrl-C (SIGINT) leaves no process of the VSS
// running: not a role, not PostgreSQL (nor its backends), not etcd.
//
// It needs the SPM's --coordination and a postgres:// --catalog (issue 14's SPM side and its
// PostgreSQL engine): until this build's SPM takes both (its --help names postgres), the test
// says so and is skipped, as it is without PostgreSQL or etcd.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { findEtcd, findPostgres } from "../../src/local/ha-services.ts";
import { upHaPortOffsets } from "../../src/lib/defaults.ts";
import { readVssFile, type VssFile } from "../../src/local/vss.ts";
import { alive, cli, eventually, programCommand, tempDir } from "../support/vss.ts";
import { randomBytes, seededRandom } from "../support/random.ts";

function servicesMissing(): string | undefined {
  try {
    findPostgres();
    findEtcd();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
const noServices = servicesMissing();

function whyNot(): string | undefined {
  if (noServices) return noServices;
  const help = Bun.spawnSync([...programCommand(), "spm", "--help"], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
  if (!help.includes("--coordination")) return "this build's SPM has no --coordination yet (the SPM side of issue 14)";
  if (!/postgres/i.test(help)) return "this build's SPM opens no postgres:// catalog yet (the PostgreSQL engine of issue 14); test/integration/vss-ha.test.ts runs three SPMs on a shared sqlite catalog meanwhile";
  return undefined;
}
const skipped = whyNot();
if (skipped) console.log(`[up-ha] skipped: ${skipped}`);

const { random, seed } = seededRandom("up-ha");
const dir = tempDir("up-ha");
const failedDir = tempDir("up-ha-failed");
let up: Bun.Subprocess<"ignore", "pipe", "pipe"> | undefined;
afterAll(async () => {
  // A failed test must not leave the VSS running: SIGINT (up stops everything), then -9 by pid.
  if (up && up.exitCode === null) {
    up.kill("SIGINT");
    await Promise.race([up.exited, Bun.sleep(30_000)]);
    if (up.exitCode === null) up.kill("SIGKILL");
  }
  if (!process.env.MICTLANX_KEEP) for (const path of [dir, failedDir]) rmSync(path, { recursive: true, force: true });
});

/** Processes whose command line names the VSS's DIR (every role, postgres and its backends, etcd). */
function processesIn(path: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(path)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

type SpmEntry = { address: string; role: string; term?: number };

describe.skipIf(skipped !== undefined)(`up --ha (seed ${seed})`, () => {
  test("3 SPMs: one leader, two standbys; put and get work; Ctrl-C leaves no process", async () => {
    up = Bun.spawn([...programCommand(), "up", "--ha", "--port", "0", "--data", dir, "--no-restart", "--peers", "3"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    let banner = "";
    const reader = up.stdout.getReader();
    const decoder = new TextDecoder();
    const deadline = Date.now() + 120_000;
    while (!banner.includes("mictlanx VSS is up")) {
      const next = await Promise.race([reader.read(), Bun.sleep(Math.max(0, deadline - Date.now())).then(() => ({ done: true, value: undefined }))]);
      if (next.done) throw new Error(`up --ha did not come up; stderr:\n${await new Response(up.stderr).text()}`);
      banner += decoder.decode(next.value, { stream: true });
    }
    const file: VssFile = readVssFile(dir);
    expect(file.spms).toHaveLength(3);
    expect(file.spm).toBe(file.spms?.[0]?.address ?? "");
    expect(file.services).toBeDefined();
    for (const spm of file.spms ?? []) expect(banner).toContain(`spm      ${spm.address}`);
    const spmList = (file.spms ?? []).map((spm) => spm.address).join(",");
    const env = { MICTLANX_CREDENTIALS: join(dir, "credentials.json"), MICTLANX_SPM: spmList, MICTLANX_ROUTERS: file.routers.join(",") };

    let spms: SpmEntry[] = [];
    await eventually("one leader and two standbys of one term", 60_000, async () => {
      const status = await cli(["status", "--json"], { env });
      if (status.code !== 0) return status.stderr;
      spms = (JSON.parse(status.stdout) as { spms: SpmEntry[] }).spms;
      const roles = spms.map((spm) => spm.role).sort();
      const terms = new Set(spms.map((spm) => spm.term));
      return (JSON.stringify(roles) === JSON.stringify(["leader", "standby", "standby"]) && terms.size === 1 && !terms.has(undefined)) || JSON.stringify(spms);
    });
    console.log(`[up-ha] ${spms.map((spm) => `${spm.address} ${spm.role} (term ${spm.term})`).join(", ")}`);

    const data = randomBytes(random, 300 * 1024);
    const source = join(dir, "payload.bin");
    writeFileSync(source, data);
    const put = await cli(["put", "ha/payload.bin", source], { env });
    expect(put.stderr).toBe("");
    expect(put.code).toBe(0);
    const get = await cli(["get", "ha/payload.bin", "-o", join(dir, "back.bin")], { env });
    expect(get.code).toBe(0);
    expect(Buffer.from(readFileSync(join(dir, "back.bin"))).equals(Buffer.from(data))).toBe(true);

    const pids = [...(file.spms ?? []).map((spm) => spm.pid), ...file.routerPids, ...file.peers.map((peer) => peer.pid), file.services!.postgres.pid, file.services!.etcd.pid];
    up.kill("SIGINT");
    expect(await Promise.race([up.exited, Bun.sleep(60_000).then(() => "still running")])).toBe(0);
    for (const pid of pids) expect({ pid, alive: alive(pid) }).toEqual({ pid, alive: false });
    await eventually("no process of the VSS's DIR is left", 10_000, () => processesIn(dir).length === 0 || `still running: ${processesIn(dir).join(", ")}`);
    expect(existsSync(join(dir, "postgres", "PG_VERSION"))).toBe(true);
  }, 240_000);
});

/** A listener on a port P whose BASE (P - 100) leaves etcd's and PostgreSQL's ports (BASE+110…112) free right now. */
function blockedSpmPort(): Bun.TCPSocketListener<undefined> {
  const free = (port: number) => {
    try {
      Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } }).stop(true);
      return true;
    } catch {
      return false;
    }
  };
  for (let attempt = 0; ; attempt += 1) {
    const blocker = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const base = blocker.port - upHaPortOffsets.spm;
    if ([upHaPortOffsets.etcdClient, upHaPortOffsets.postgres, upHaPortOffsets.etcdPeer].every((offset) => free(base + offset)) || attempt >= 20) return blocker;
    blocker.stop(true);
  }
}

describe.skipIf(noServices !== undefined)("up --ha that cannot start an SPM", () => {
  test("exits 1 naming it, having started PostgreSQL and etcd and stopped them again: no process left", async () => {
    // The first SPM's port is taken (held here), so up fails after PostgreSQL and etcd are up,
    // whatever this build's SPM takes.
    const blocker = blockedSpmPort();
    try {
      const base = blocker.port - upHaPortOffsets.spm;
      const failed = Bun.spawn([...programCommand(), "up", "--ha", "--port", String(base), "--data", failedDir, "--no-restart"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const [code, stderr] = await Promise.all([failed.exited, new Response(failed.stderr).text()]);
      expect(code).not.toBe(0);
      expect(stderr).toContain("spm-0");
      expect(readFileSync(join(failedDir, "logs", "postgres.log"), "utf8")).toContain("database system is ready to accept connections");
      expect(readFileSync(join(failedDir, "logs", "postgres.log"), "utf8")).toContain("database system is shut down");
      expect(readFileSync(join(failedDir, "logs", "etcd.log"), "utf8")).toContain("ready to serve client requests");
      await eventually("no process of the VSS's DIR is left", 10_000, () => processesIn(failedDir).length === 0 || `still running: ${processesIn(failedDir).join(", ")}`);
    } finally {
      blocker.stop(true);
    }
  }, 120_000);
});
