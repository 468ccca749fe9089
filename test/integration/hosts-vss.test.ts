// A VSS on real hosts: 1 SPM, 2 routers and 3 peers, each in its own network namespace with its
// own address on a bridge (test/support/hosts.ts), some binding their address, some 0.0.0.0 with
// --advertise. The CLI runs on a seventh host, "client", as a user there would: put/get/ls/stat/
// del through either router byte-exact, rf 2 on distinct hosts, a packet capture on a peer's
// interface during a put, and a peer killed -9 on its host with its replicas still readable.
// Every link is TLS with certificates of a CA made for the run, and the CLI proves an access key:
// plaintext is refused on every port, a peer of another CA cannot register, a forged heartbeat
// changes nothing, and keys get only what their grants say.
// Skipped, saying why, where namespaces cannot be made (not root, no `ip`, EPERM).
import { afterAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { eventually, fastSpmArgs, tempDir } from "../support/vss.ts";
import { initCa, issueNodeCertificate, nodeFiles } from "../../src/certs/certs.ts";
import type { NodeRole } from "../../src/lib/node-identity.ts";
import { commandIn } from "../support/hosts.ts";
import { capture, captureHolds, cliIn, makeHosts, netnsUnavailable, sayWhySkipped, startRoleIn, tcpdumpUnavailable, type Host, type HostNetwork } from "../support/hosts.ts";
import type { RoleProcess } from "../../src/local/process.ts";
import { limits as limitsOf } from "../../src/lib/limits.ts";

/**
 * Whether a put's bytes cross the network as they are: with TLS on every link they do not, and
 * the capture test asserts the marker is NOT in the capture (while the capture is larger than
 * the payload, so it did see the put). With `true` the same test shows a capture sees plaintext.
 */
const plaintextOnTheWire = false;

function expectMarkerOnTheWire(captured: Uint8Array, marker: string): void {
  expect(captureHolds(captured, marker)).toBe(plaintextOnTheWire);
}

sayWhySkipped("hosts-vss", netnsUnavailable);
if (!netnsUnavailable) sayWhySkipped("hosts-vss capture", tcpdumpUnavailable);

const { random, seed } = seededRandom("hosts-vss");
const ports = { spm: 7200, router: 7201, peer: 7210 } as const;
const chunkSize = "256KiB";

interface HostsVss {
  network: HostNetwork;
  client: Host;
  spm: RoleProcess;
  routers: RoleProcess[];
  peers: Array<RoleProcess & { id: string; host: Host }>;
  /** What the CLI on the client host is given: both routers, the SPM, the admin key the SPM wrote. */
  env: Record<string, string>;
  dir: string;
  /** The run's CA: issues certificates for the nodes (and for the attacker tests' own). */
  caDir: string;
  tlsArgs(role: NodeRole, id: string, host: Host): Promise<string[]>;
}

let started: Promise<HostsVss> | undefined;
/** The VSS, started by the first test that needs it (so each test still runs if an earlier one failed). */
const hostsVss = () => (started ??= startHostsVss());

afterAll(async () => {
  const vss = await started?.catch(() => undefined);
  await vss?.network.cleanup();
});

async function startHostsVss(): Promise<HostsVss> {
  const network = await makeHosts(["spm", "router-0", "router-1", "peer-0", "peer-1", "peer-2", "client"]);
  const dir = network.dir; // removed with the network (kept with MICTLANX_KEEP=1, as its logs are)
  const host = (name: string) => network.host(name);
  // A CA for the run; each node's certificate names its id and its host's address.
  const caDir = join(dir, "ca");
  await initCa(caDir);
  const tlsArgs = async (role: NodeRole, id: string, on: Host) => {
    await issueNodeCertificate({ dir: caDir, role, id, hosts: [on.ip] });
    const files = nodeFiles(caDir, id);
    return ["--tls-cert", files.certPath, "--tls-key", files.keyPath, "--tls-ca", files.caPath];
  };
  // The SPM binds every address and advertises its own; peers and routers are given that.
  const spmHost = host("spm");
  const spm = await startRoleIn(spmHost, ["spm", "--host", "0.0.0.0", "--advertise", `${spmHost.ip}:${ports.spm}`, "--port", String(ports.spm), "--data", join(dir, "spm"), ...fastSpmArgs, ...(await tlsArgs("spm", "spm", spmHost))]);
  expect(spm.address).toBe(`${spmHost.ip}:${ports.spm}`);
  // peer-0 binds its address; peer-1 0.0.0.0 advertising host:port; peer-2 0.0.0.0 advertising its host alone.
  const peerBinds = (peer: Host, index: number) =>
    index === 0 ? ["--host", peer.ip] : index === 1 ? ["--host", "0.0.0.0", "--advertise", `${peer.ip}:${ports.peer}`] : ["--host", "0.0.0.0", "--advertise", peer.ip];
  const peers = await Promise.all(
    [0, 1, 2].map(async (index) => {
      const peerHost = host(`peer-${index}`);
      const id = `peer-${index}`;
      const role = await startRoleIn(peerHost, ["peer", ...peerBinds(peerHost, index), "--port", String(ports.peer), "--data", join(dir, id), "--id", id, "--spm", spm.address, "--capacity", "1GiB", "--shard-size", "64MiB", ...(await tlsArgs("peer", id, peerHost))]);
      return Object.assign(role, { id, host: peerHost });
    }),
  );
  const routerBinds = (router: Host, index: number) => (index === 0 ? ["--host", router.ip] : ["--host", "0.0.0.0", "--advertise", `${router.ip}:${ports.router}`]);
  const routers = await Promise.all(
    [0, 1].map(async (index) => {
      const routerHost = host(`router-${index}`);
      return startRoleIn(routerHost, ["router", ...routerBinds(routerHost, index), "--port", String(ports.router), "--spm", spm.address, ...(await tlsArgs("router", `router-${index}`, routerHost))]);
    }),
  );
  const client = host("client");
  // The SPM wrote its first admin key, with its CA's path, at its first start.
  const env = { MICTLANX_ROUTERS: routers.map((router) => router.address).join(","), MICTLANX_SPM: spm.address, MICTLANX_CREDENTIALS: join(dir, "spm", "credentials.json") };
  const vss: HostsVss = { network, client, spm, routers, peers, env, dir, caDir, tlsArgs };
  await eventually("the SPM has all three peers up, each at its host's address", 20_000, async () => {
    const status = await statusOf(vss);
    const up = status.peers.filter((peer) => peer.state === "up").map((peer) => `${peer.id}@${peer.address}`).sort();
    const expected = peers.map((peer) => `${peer.id}@${peer.host.ip}:${ports.peer}`).sort();
    return JSON.stringify(up) === JSON.stringify(expected) || `up: ${up.join(" ")}`;
  });
  return vss;
}

interface StatusJson {
  spm: string;
  peers: Array<{ id: string; address: string; state: string }>;
  routers: Array<{ address: string; state: string }>;
}

async function statusOf(vss: HostsVss): Promise<StatusJson> {
  const result = await cliIn(vss.client, ["status", "--json"], { env: vss.env });
  if (result.code !== 0) throw new Error(`status exited ${result.code}: ${result.stderr.trim()}`);
  return JSON.parse(result.stdout) as StatusJson;
}

/** The CLI on the client host; fails the test with its stderr unless it exits as expected. */
async function client(vss: HostsVss, args: string[], options: { stdin?: Uint8Array; code?: number; env?: Record<string, string> } = {}) {
  const result = await cliIn(vss.client, args, { env: { ...vss.env, ...options.env }, ...(options.stdin ? { stdin: options.stdin } : {}) });
  if (result.code !== (options.code ?? 0)) throw new Error(`mictlanx ${args.join(" ")} exited ${result.code}, expected ${options.code ?? 0}: ${result.stderr.trim()}`);
  return result;
}

const via = (vss: HostsVss, index: number) => ["--router", vss.routers[index]!.address];

async function getBytes(vss: HostsVss, ball: string, router: number, name: string): Promise<Uint8Array> {
  const out = join(vss.dir, `${name}.out`);
  await client(vss, ["get", ball, "-o", out, ...via(vss, router)]);
  return new Uint8Array(readFileSync(out));
}

function sameBytes(actual: Uint8Array, expected: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(actual), Buffer.from(expected)) === 0;
}

test.skipIf(netnsUnavailable !== undefined)(`put/get/ls/stat/del through either router, byte-exact; rf 2 on distinct hosts (seed ${seed})`, async () => {
  const vss = await hostsVss();
  const status = await statusOf(vss);
  expect(status.spm).toBe(vss.spm.address);
  await eventually("the SPM hears both routers at their hosts' addresses", 10_000, async () => {
    const routers = (await statusOf(vss)).routers.filter((router) => router.state === "up").map((router) => router.address).sort();
    return JSON.stringify(routers) === JSON.stringify(vss.routers.map((router) => router.address).sort()) || routers.join(" ");
  });

  const fileData = randomBytes(random, 5 * 256 * 1024 + 321);
  const file = join(vss.dir, "input.bin");
  writeFileSync(file, fileData);
  const piped = randomBytes(random, 200_000);
  await client(vss, ["put", "hosts/file.bin", file, "--rf", "2", "--chunk-size", chunkSize, ...via(vss, 0)]);
  await client(vss, ["put", "hosts/piped.bin", "-", "--rf", "2", ...via(vss, 1)], { stdin: piped });
  for (const router of [0, 1]) {
    expect(sameBytes(await getBytes(vss, "hosts/file.bin", router, `file-${router}`), fileData)).toBe(true);
    expect(sameBytes(await getBytes(vss, "hosts/piped.bin", router, `piped-${router}`), piped)).toBe(true);
    const ls = JSON.parse((await client(vss, ["ls", "hosts", "--json", ...via(vss, router)])).stdout) as Array<{ key: string }>;
    expect(ls.map((ball) => ball.key)).toEqual(["file.bin", "piped.bin"]);
  }

  // Every chunk's two replicas are on two peers whose addresses are two different hosts.
  const addressOf = new Map(status.peers.map((peer) => [peer.id, peer.address]));
  const peerIps = new Set(vss.peers.map((peer) => peer.host.ip));
  const stat = JSON.parse((await client(vss, ["stat", "hosts/file.bin", "--json", ...via(vss, 1)])).stdout) as { rf: number; chunks: Array<{ peers: string[] }> };
  expect(stat.rf).toBe(2);
  expect(stat.chunks.length).toBe(6);
  for (const chunk of stat.chunks) {
    const hosts = chunk.peers.map((id) => addressOf.get(id)?.split(":")[0]);
    expect(hosts.length).toBe(2);
    expect(new Set(hosts).size).toBe(2);
    for (const ip of hosts) expect(peerIps.has(ip ?? "")).toBe(true);
  }

  await client(vss, ["del", "hosts/piped.bin", ...via(vss, 1)]);
  await client(vss, ["get", "hosts/piped.bin", "-o", join(vss.dir, "gone.out"), ...via(vss, 0)], { code: 4 });
  const left = JSON.parse((await client(vss, ["ls", "hosts", "--json", ...via(vss, 0)])).stdout) as Array<{ key: string }>;
  expect(left.map((ball) => ball.key)).toEqual(["file.bin"]);
}, 60_000);

test.skipIf(tcpdumpUnavailable !== undefined)("a capture on a peer's interface during a put of a marked file holds none of it: every link is TLS", async () => {
  const vss = await hostsVss();
  const marker = `MICTLANX-WIRE-MARKER-${Math.floor(random() * 2 ** 32).toString(16)}`;
  // The marker many times over, so some copy lies whole inside one packet whatever the segmenting.
  const repeats = 4_000;
  const payload = new TextEncoder().encode(Array.from({ length: repeats }, (_, i) => `${marker} ${i}\n`).join(""));
  const peer = vss.peers[1]!; // bound to 0.0.0.0
  const captured = await capture(peer.host, peer.host.iface);
  let bytes: Uint8Array;
  try {
    // rf 3: every peer, this one too, receives every chunk.
    await client(vss, ["put", "hosts/marked.txt", "-", "--rf", "3", ...via(vss, 0)], { stdin: payload });
  } finally {
    bytes = await captured.stop();
  }
  expect(bytes.byteLength).toBeGreaterThan(payload.byteLength); // the put's bytes crossed this interface, in whatever form
  expectMarkerOnTheWire(bytes, marker);
  expect(sameBytes(await getBytes(vss, "hosts/marked.txt", 1, "marked"), payload)).toBe(true);
}, 60_000);

test.skipIf(netnsUnavailable !== undefined)("plaintext is refused on every port: a client without a key is told so, by the SPM, each router and each peer", async () => {
  const vss = await hostsVss();
  const nowhere = tempDir("hosts-no-credentials"); // a cwd with no .mictlanx/credentials.json
  const plain = { MICTLANX_CREDENTIALS: "", MICTLANX_ACCESS_KEY: "", MICTLANX_SECRET_KEY: "", MICTLANX_CA: "" };
  const addresses = [vss.spm.address, ...vss.routers.map((router) => router.address), ...vss.peers.map((peer) => peer.address)];
  for (const address of addresses) {
    // `status` speaks plain TCP to whatever --spm names (a peer or router too): each answers with TLS only.
    const result = await cliIn(vss.client, ["status", "--spm", address], { env: { ...vss.env, ...plain }, cwd: nowhere });
    expect(`${result.code} ${result.stderr}`).toContain(`3 mictlanx: no access key: spm ${address} speaks TLS`);
  }
  const ls = await cliIn(vss.client, ["ls", "hosts"], { env: { ...vss.env, ...plain }, cwd: nowhere });
  expect(ls.code).toBe(3);
  expect(ls.stderr).toContain("no access key");
}, 60_000);

test.skipIf(netnsUnavailable !== undefined)("a peer with a certificate of another CA cannot register", async () => {
  const vss = await hostsVss();
  const otherCa = join(vss.dir, "other-ca");
  await initCa(otherCa);
  await issueNodeCertificate({ dir: otherCa, role: "peer", id: "peer-x", hosts: [vss.client.ip] });
  const files = nodeFiles(otherCa, "peer-x");
  const log = join(vss.dir, "peer-x.log");
  // It trusts the real CA (so it would take the SPM's certificate); its own is of another CA.
  const stranger = await startRoleIn(vss.client, ["peer", "--host", vss.client.ip, "--port", String(ports.peer), "--data", join(vss.dir, "peer-x"), "--spm", vss.spm.address, "--tls-cert", files.certPath, "--tls-key", files.keyPath, "--tls-ca", join(vss.caDir, "ca.crt")], { name: "peer-x", logFile: log });
  try {
    await eventually("the stranger is told its certificate is refused", 15_000, () => readFileSync(log, "utf8").includes("certificate refused") || "not yet");
    expect((await statusOf(vss)).peers.map((peer) => peer.id)).not.toContain("peer-x");
  } finally {
    process.kill(stranger.pid, "SIGKILL");
    await stranger.exited;
  }
}, 60_000);

test.skipIf(netnsUnavailable !== undefined)("a forged heartbeat for peer-1 from another host is refused; peer-1 keeps its address and its replicas", async () => {
  const vss = await hostsVss();
  await client(vss, ["put", "forged/ball", "-", "--rf", "3"], { stdin: randomBytes(random, 100_000) }); // a replica on every peer
  const before = (await statusOf(vss)).peers.find((peer) => peer.id === "peer-1")!;
  // The attacker holds a real certificate of this VSS, of another node (peer-9, on the client host).
  await issueNodeCertificate({ dir: vss.caDir, role: "peer", id: "peer-9", hosts: [vss.client.ip] });
  const files = nodeFiles(vss.caDir, "peer-9");
  const script = join(import.meta.dir, "fixtures", "forge-heartbeat.ts");
  const forger = Bun.spawn(commandIn(vss.client, [process.execPath, script, vss.spm.address, files.certPath, files.keyPath, files.caPath, "peer-1", `${vss.client.ip}:${ports.peer}`, "peer-9"]), { stdout: "pipe", stderr: "pipe" });
  vss.network.processes.add(forger);
  const [out, err] = await Promise.all([new Response(forger.stdout).text(), new Response(forger.stderr).text(), forger.exited]);
  const outcome = JSON.parse(out.trim() || `{"stderr": ${JSON.stringify(err)}}`) as { ok: boolean; code?: string; message?: string };
  expect(outcome.ok).toBe(false);
  expect(outcome.code).toBe("forbidden");
  expect(outcome.message).toContain("peer peer-9 may not speak for peer-1");
  const after = (await statusOf(vss)).peers.find((peer) => peer.id === "peer-1")!;
  expect(after.address).toBe(before.address);
  expect(after.state).toBe("up");
  const stat = JSON.parse((await client(vss, ["stat", "forged/ball", "--json"])).stdout) as { chunks: Array<{ peers: string[] }> };
  for (const chunk of stat.chunks) expect(chunk.peers).toContain("peer-1");
}, 60_000);

test.skipIf(netnsUnavailable !== undefined)("keys get what their grants say: no write, no other bucket, no admin; a revoked key is refused within keyRevocationMs", async () => {
  const vss = await hostsVss();
  await client(vss, ["put", "bucket-b/secret.txt", "-"], { stdin: new TextEncoder().encode("b's data") });
  await client(vss, ["mb", "bucket-a"]);
  const reader = JSON.parse((await client(vss, ["key", "create", "--bucket", "bucket-a", "--allow", "read,list", "--json"])).stdout) as { accessKey: string; secretKey: string };
  const as = (key: { accessKey: string; secretKey: string }) => ({ MICTLANX_CREDENTIALS: "", MICTLANX_ACCESS_KEY: key.accessKey, MICTLANX_SECRET_KEY: key.secretKey, MICTLANX_CA: join(vss.caDir, "ca.crt") });
  const put = await client(vss, ["put", "bucket-a/x.txt", "-"], { stdin: new TextEncoder().encode("x"), env: as(reader), code: 3 });
  expect(put.stderr).toContain(`key ${reader.accessKey} may not write to bucket bucket-a`);
  expect((await client(vss, ["get", "bucket-b/secret.txt", "-o", "-"], { env: as(reader), code: 3 })).stderr).toContain("may not read bucket bucket-b");
  expect((await client(vss, ["ls", "bucket-b"], { env: as(reader), code: 3 })).stderr).toContain("may not list bucket bucket-b");
  expect((await client(vss, ["ls"], { env: as(reader) })).stdout).not.toContain("bucket-b"); // the buckets it may not list are not shown
  expect((await client(vss, ["peer", "drain", "peer-0"], { env: as(reader), code: 3 })).stderr).toContain("is not an admin key");
  expect((await client(vss, ["key", "create"], { env: as(reader), code: 3 })).stderr).toContain("is not an admin key");
  expect((await client(vss, ["ls", "bucket-a"], { env: as(reader) })).code).toBe(0);

  await client(vss, ["key", "revoke", reader.accessKey]);
  const revokedMs = performance.now();
  await eventually("the revoked key is refused", limitsOf.keyRevocationMs + 10_000, async () => {
    const result = await cliIn(vss.client, ["ls", "bucket-a"], { env: { ...vss.env, ...as(reader) } });
    return (result.code === 3 && result.stderr.includes("was revoked")) || `exit ${result.code}`;
  });
  console.log(`[hosts-vss] a revoked key was refused ${Math.round(performance.now() - revokedMs)} ms after key revoke (bound: ${limitsOf.keyRevocationMs} ms)`);
}, 60_000);

test.skipIf(netnsUnavailable !== undefined)("a peer killed -9 on its host: every ball still reads back from the other replica", async () => {
  const vss = await hostsVss();
  const balls = new Map<string, Uint8Array>();
  for (let i = 0; i < 3; i += 1) {
    const data = randomBytes(random, 300_000 + Math.floor(random() * 300_000));
    await client(vss, ["put", `survive/ball-${i}`, "-", "--rf", "2", "--chunk-size", chunkSize, ...via(vss, i % 2)], { stdin: data });
    balls.set(`survive/ball-${i}`, data);
  }
  // The victim holds a replica of the first ball's first chunk, so reads must fail over.
  const stat = JSON.parse((await client(vss, ["stat", "survive/ball-0", "--json"])).stdout) as { chunks: Array<{ peers: string[] }> };
  const victimId = stat.chunks[0]?.peers[0];
  const victim = vss.peers.find((peer) => peer.id === victimId);
  if (!victim) throw new Error(`no peer ${victimId} among ${vss.peers.map((peer) => peer.id).join(", ")}`);
  process.kill(victim.pid, "SIGKILL"); // the pid the harness started: `ip netns exec` kept it
  await victim.exited;

  let index = 0;
  for (const [ball, data] of balls) {
    for (const router of [0, 1]) expect(sameBytes(await getBytes(vss, ball, router, `survive-${index}-${router}`), data)).toBe(true);
    index += 1;
  }
  await eventually(`the SPM marks ${victim.id} down`, 15_000, async () => (await statusOf(vss)).peers.find((peer) => peer.id === victim.id)?.state === "down");
}, 60_000);
