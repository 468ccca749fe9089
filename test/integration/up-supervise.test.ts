// `mictlanx up` keeps its children alive: a child killed with kill -9 comes back on its port
// with a new pid in vss.json and the VSS serves; with --no-restart it stays dead; a child that
// cannot start stops `up` with exit 1 and the child's last log lines.
import { afterEach, expect, test } from "bun:test";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "../../src/client/client.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { spmOps } from "../../src/protocol/spm.ts";
import { readVssFile, type VssFile } from "../../src/local/vss.ts";
import { alive, eventually, programCommand, tempDir } from "../support/vss.ts";
import { clientSecurity, findCredentials } from "../../src/client/credentials.ts";

interface RunningUp {
  dir: string;
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  stderr: () => string;
  read: () => VssFile;
}

const started: RunningUp[] = [];
afterEach(async () => {
  for (const up of started.splice(0)) {
    const pids = existsSync(join(up.dir, "vss", "vss.json")) ? allPids(up.read()) : [];
    if (up.proc.exitCode === null && up.proc.signalCode === null) process.kill(up.proc.pid, "SIGKILL");
    await up.proc.exited;
    for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
    rmSync(up.dir, { recursive: true, force: true });
  }
});

async function startUp(label: string, extra: string[], peers = 2): Promise<RunningUp> {
  const dir = tempDir(label);
  const args = ["up", "--port", "0", "--peers", String(peers), "--routers", "1", "--data", join(dir, "vss"), "--suspect-after", "1s", "--down-after", "3s", ...extra];
  // If this test process dies, up (and so its VSS) stops by itself.
  const env = { ...process.env, MICTLANX_PARENT_PID: String(process.pid) };
  const proc = Bun.spawn([...programCommand(), ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env });
  let out = "";
  let err = "";
  void collect(proc.stdout, (text) => (out += text));
  void collect(proc.stderr, (text) => (err += text));
  const up: RunningUp = { dir, proc, stderr: () => err, read: () => readVssFile(join(dir, "vss")) };
  started.push(up);
  const exitedEarly = proc.exited.then((code) => {
    throw new Error(`up exited with code ${code} before the VSS was up: ${err}`);
  });
  await Promise.race([eventually("up prints that the VSS is up", 20_000, () => out.includes("VSS is up") || `stdout: ${out} stderr: ${err}`), exitedEarly]);
  exitedEarly.catch(() => {}); // a later exit is each test's business
  return up;
}

async function collect(stream: ReadableStream<Uint8Array>, add: (text: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  for await (const piece of stream) add(decoder.decode(piece, { stream: true }));
}

const allPids = (file: VssFile) => [file.spmPid, ...file.routerPids, ...file.peers.map((peer) => peer.pid)];

/** What a client of up's VSS connects with: up's own admin key (DIR/credentials.json) and CA. */
function upCredentials(up: RunningUp) {
  const credentials = findCredentials({ credentials: join(up.dir, "vss", "credentials.json") });
  if (!credentials) throw new Error("up wrote no credentials");
  return credentials;
}

async function peerStates(up: RunningUp, spm: string): Promise<Record<string, string>> {
  const security = clientSecurity(upCredentials(up));
  const pool = new RpcPool({ role: "spm", ...(security ? { security } : {}) });
  try {
    const { peers } = await new ServiceClient(spmOps, pool, parseAddress(spm)).call("peers.list", {});
    return Object.fromEntries(peers.map((peer) => [peer.id, peer.state]));
  } finally {
    pool.close();
  }
}

test("up restarts a peer and the SPM killed with kill -9: new pids in vss.json, same ports, the VSS serves", async () => {
  const up = await startUp("up-restart", []);
  const before = up.read();
  const peer = before.peers[0]!;
  process.kill(peer.pid, "SIGKILL");
  await eventually("peer-0 restarted with a new pid in vss.json", 10_000, () => {
    const now = up.read().peers[0]!;
    return (now.pid !== peer.pid && alive(now.pid)) || `pid ${now.pid}; stderr: ${up.stderr()}`;
  });
  const afterPeer = up.read();
  expect(afterPeer.peers[0]!.address).toBe(peer.address);
  expect(afterPeer.peers[0]!.data).toBe(peer.data);
  expect(up.stderr()).toContain(`peer-0 (pid ${peer.pid}) was killed by SIGKILL; restarting it in`);
  expect(up.stderr()).toContain(`peer-0 restarted as pid ${afterPeer.peers[0]!.pid} on ${peer.address}`);

  process.kill(before.spmPid, "SIGKILL");
  await eventually("the spm restarted with a new pid in vss.json", 10_000, () => {
    const now = up.read();
    return (now.spmPid !== before.spmPid && alive(now.spmPid)) || `spm pid ${now.spmPid}`;
  });
  expect(up.read().spm).toBe(before.spm);
  await eventually("both peers up at the restarted spm", 10_000, async () => {
    const states = await peerStates(up, before.spm);
    return (states["peer-0"] === "up" && states["peer-1"] === "up") || JSON.stringify(states);
  });
  // rf 2 on 2 peers: the put needs the restarted peer, the commit the restarted SPM.
  const client = new Client({ ...upCredentials(up), routers: before.routers, cacheBytes: 0 });
  try {
    const data = new TextEncoder().encode("after the restarts");
    await client.put("supervise", "hello", data, { rf: 2 });
    expect(Buffer.from(await client.get("supervise", "hello")).equals(Buffer.from(data))).toBe(true);
  } finally {
    client.close();
  }
  expect(up.proc.exitCode).toBeNull();
}, 30_000);

test("up --no-restart leaves a dead peer dead and says so", async () => {
  const up = await startUp("up-no-restart", ["--no-restart"]);
  const peer = up.read().peers[0]!;
  process.kill(peer.pid, "SIGKILL");
  await eventually("up reports the dead peer", 10_000, () => up.stderr().includes(`peer-0 (pid ${peer.pid}) was killed by SIGKILL`) || up.stderr());
  // Down comes 3 s after the last heartbeat; a restart would have been back within 250 ms.
  await eventually("the spm sees peer-0 down", 15_000, async () => (await peerStates(up, up.read().spm))["peer-0"] === "down");
  expect(up.read().peers[0]!.pid).toBe(peer.pid);
  expect(alive(peer.pid)).toBe(false);
  expect(up.stderr()).toContain("not restarting it (--no-restart)");
  expect(up.stderr()).not.toContain("restarting it in");
  expect(up.proc.exitCode).toBeNull();
}, 30_000);

test("a peer that cannot start again stops up with exit 1 and the peer's last log lines", async () => {
  const up = await startUp("up-give-up", [], 1);
  const before = up.read();
  const peer = before.peers[0]!;
  // Stopped first, so nothing writes into the directory while it is swapped for a file.
  process.kill(peer.pid, "SIGSTOP");
  renameSync(peer.data, `${peer.data}.moved`);
  writeFileSync(peer.data, "a file where the peer's data dir was\n");
  process.kill(peer.pid, "SIGKILL");
  const code = await Promise.race([up.proc.exited, Bun.sleep(20_000).then(() => "still running")]);
  expect(code).toBe(1);
  const stderr = up.stderr();
  expect(stderr).toContain("peer-0 died 5 times within 60 s");
  expect(stderr).toContain(`last lines of ${join(up.dir, "vss", "logs", "peer-0.log")}:`);
  const logLines = readFileSync(join(up.dir, "vss", "logs", "peer-0.log"), "utf8").trim().split("\n");
  expect(stderr).toContain(`  | ${logLines[logLines.length - 1]}`);
  // up stopped the rest of the VSS before it exited.
  for (const pid of allPids(up.read())) expect(alive(pid)).toBe(false);
}, 30_000);

test("up started with MICTLANX_PARENT_PID stops its VSS when that process dies by kill -9", async () => {
  const dir = tempDir("up-parent");
  // A shell starts up, naming itself as the parent, and is then killed: nothing may linger.
  const upArgs = ["up", "--port", "0", "--peers", "1", "--routers", "1", "--data", join(dir, "vss")].map((arg) => `'${arg}'`).join(" ");
  const command = programCommand().map((part) => `'${part}'`).join(" ");
  const shell = Bun.spawn(["bash", "-c", `MICTLANX_PARENT_PID=$$ ${command} ${upArgs} > '${dir}/up.out' 2> '${dir}/up.err' & echo $! > '${dir}/up.pid'; wait`], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  let pids: number[] = [];
  try {
    await eventually("up writes vss.json", 20_000, () => existsSync(join(dir, "vss", "vss.json")) && readFileSync(join(dir, "up.out"), "utf8").includes("VSS is up"));
    pids = [Number(readFileSync(join(dir, "up.pid"), "utf8")), ...allPids(readVssFile(join(dir, "vss")))];
    expect(pids.every(alive)).toBe(true);
    process.kill(shell.pid, "SIGKILL");
    await shell.exited;
    await eventually("up and every role it started are gone", 15_000, () => pids.every((pid) => !alive(pid)) || `alive: ${pids.filter(alive).join(", ")}`);
    expect(readFileSync(join(dir, "up.err"), "utf8")).toContain("the loss of the process that started up");
  } finally {
    for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

test("up starts each router's S3 endpoint and writes it to vss.json: https with TLS, http with --insecure", async () => {
  for (const [extra, scheme] of [[[], "https"], [["--insecure"], "http"]] as const) {
    const up = await startUp(`up-s3-${scheme}`, [...extra], 1);
    const file = up.read();
    expect(file.s3).toMatch(new RegExp(`^${scheme}://127\\.0\\.0\\.1:\\d+$`));
    expect(file.s3Endpoints).toEqual([file.s3 ?? ""]);
    const ca = scheme === "https" ? readFileSync(upCredentials(up).ca, "utf8") : undefined;
    const response = await fetch(`${file.s3}/`, ca === undefined ? {} : { tls: { ca } });
    const body = await response.text();
    // With keys, an unsigned request is refused as S3 refuses it; without, it is believed (no buckets yet).
    if (scheme === "https") expect([response.status, body]).toEqual([403, expect.stringContaining("<Code>AccessDenied</Code>")]);
    else expect([response.status, body]).toEqual([200, expect.stringContaining("<ListAllMyBucketsResult")]);
  }
}, 60_000);
