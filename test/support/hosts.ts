// Real hosts on one machine: one network namespace per host, joined by a bridge that lives in a
// "switch" namespace of its own, so the root namespace's networking is never touched. Each host
// gets a veth pair (eth0 in the host, the other end enslaved to the bridge), an address from a
// 10.X.Y.0/24 chosen at random per run, and `lo` up. Roles of the real program run in a host with
// `ip netns exec NS …`, which execs (same pid), so kill -9 by the pid a test started works.
//
// Everything made here is removed by `cleanup()` (call it in afterAll) and, should a test
// runner die first, by a process 'exit' hook; namespaces left by an earlier run whose owner is
// dead (their names carry its pid) are removed when the next network is made.
//
// Where namespaces cannot be made (not root, no `ip`, EPERM in a container), `netnsUnavailable`
// says why: tests print it and skip with test.skipIf, so the skip shows in the summary.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRole, type RoleProcess } from "../../src/local/process.ts";
import { programCommand } from "./vss.ts";

/** Every namespace of this harness: `mxh-<owner pid>-<run>-<host>`. */
const namespacePrefix = "mxh-";
const namespacePattern = /^mxh-(\d+)-/;
/** Linux's IFNAMSIZ less the NUL. */
const interfaceNameBytesMax = 15;
/** The interface each host sees its network on. */
export const hostInterface = "eth0";
const bridgeName = "br0";
/** Host addresses start here in the /24, so .1 (often a gateway by habit) is never a host. */
const firstHostOctet = 10;
const hostsMax = 200;
/** How long a capture waits for tcpdump to listen, and for its file to catch up with the wire. */
const captureReadyTimeoutMs = 10_000;
const captureFlushTimeoutMs = 10_000;
const captureStopTimeoutMs = 5_000;
/** A link-layer address nobody has, for the capture's flush marker (see Capture.stop). */
const nowhereMac = "02:00:00:00:00:fe";
const nowhereOctet = 254;

export interface Host {
  /** The name a test gave it, e.g. "peer-1". */
  name: string;
  /** Its network namespace. */
  netns: string;
  /** Its address on the bridge. */
  ip: string;
  /** Its interface (one end of its veth pair); the other end is `bridgePort` in the switch. */
  iface: string;
  bridgePort: string;
  network: HostNetwork;
}

export interface HostNetwork {
  /** Per-run prefix of every namespace name. */
  prefix: string;
  /** e.g. 10.87.3.0/24 */
  subnet: string;
  switchNetns: string;
  hosts: Host[];
  host(name: string): Host;
  /** Kill what still runs in its namespaces, remove them (links go with them) and the temp dir. */
  cleanup(): Promise<void>;
  /** @internal processes started in its hosts, killed by cleanup */
  processes: Set<Bun.Subprocess>;
  /** @internal where captures are written */
  dir: string;
}

/** Why network namespaces cannot be made here, or undefined when they can (probed once, at import). */
export const netnsUnavailable: string | undefined = probeNetns();
/** Why captures cannot be made here (no tcpdump), or undefined. */
export const tcpdumpUnavailable: string | undefined =
  netnsUnavailable ?? (Bun.which("tcpdump") ? undefined : "tcpdump is not installed (Debian's package tcpdump; .ci/run installs it)");

/** Print why a test file's real-host tests are skipped, so the skip is seen, not only counted. */
export function sayWhySkipped(file: string, reason: string | undefined): void {
  if (reason !== undefined) console.warn(`[${file}] SKIPPED on this machine: ${reason}`);
}

function run(argv: string[], options: { allowFail?: boolean } = {}): { ok: boolean; stdout: string; stderr: string } {
  const result = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const out = { ok: result.exitCode === 0, stdout: result.stdout.toString(), stderr: result.stderr.toString().trim() };
  if (!out.ok && !options.allowFail) throw new Error(`${argv.join(" ")} failed (exit ${result.exitCode}): ${out.stderr}`);
  return out;
}

function probeNetns(): string | undefined {
  if (process.platform !== "linux") return `network namespaces are Linux's; this is ${process.platform}`;
  if (process.getuid?.() !== 0) return "making network namespaces needs root (CI runs as root); run the tests as root to include these";
  if (!Bun.which("ip")) return "the ip command is missing (Debian's package iproute2; .ci/run installs it)";
  const probe = `${namespacePrefix}${process.pid}-probe`;
  try {
    const steps = [
      ["ip", "netns", "add", probe],
      ["ip", "-n", probe, "link", "add", "probe-br", "type", "bridge"],
      ["ip", "-n", probe, "link", "add", "probe-a", "type", "veth", "peer", "name", "probe-b"],
      ["ip", "netns", "exec", probe, "true"],
    ];
    for (const step of steps) {
      const result = run(step, { allowFail: true });
      if (!result.ok) return `cannot make network namespaces here: \`${step.join(" ")}\` said "${result.stderr}"`;
    }
    return undefined;
  } finally {
    run(["ip", "netns", "del", probe], { allowFail: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

function harnessNamespaces(): string[] {
  const listed = run(["ip", "netns", "list"], { allowFail: true }).stdout;
  return listed
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[0] ?? "")
    .filter((name) => name.startsWith(namespacePrefix));
}

/** kill -9 every process in a namespace (only ever one of ours), then remove it; its links go with it. */
function removeNamespace(netns: string): void {
  const pids = run(["ip", "netns", "pids", netns], { allowFail: true }).stdout.split(/\s+/).filter((pid) => /^\d+$/.test(pid));
  for (const pid of pids) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // gone already
    }
  }
  run(["ip", "netns", "del", netns], { allowFail: true });
}

/** Namespaces of earlier runs of this harness whose owning process is dead. */
export function removeLeftovers(): string[] {
  const removed: string[] = [];
  for (const netns of harnessNamespaces()) {
    const owner = Number(namespacePattern.exec(netns)?.[1]);
    if (!Number.isInteger(owner) || owner === process.pid || alive(owner)) continue;
    removeNamespace(netns);
    removed.push(netns);
  }
  return removed;
}

/** Networks made and not yet cleaned up, with their exit hooks. */
const networksMade = new Map<HostNetwork, () => void>();

function randomOctet(low: number, high: number): number {
  return low + Math.floor(Math.random() * (high - low + 1));
}

/**
 * Make one namespace per name, each on the bridge with its own address. Throws (having removed
 * what it made) when any step fails; check `netnsUnavailable` first.
 */
export async function makeHosts(names: string[]): Promise<HostNetwork> {
  if (netnsUnavailable) throw new Error(`no network namespaces here: ${netnsUnavailable}`);
  if (names.length === 0 || names.length > hostsMax) throw new Error(`makeHosts takes 1 to ${hostsMax} hosts, got ${names.length}`);
  if (new Set(names).size !== names.length) throw new Error(`host names must differ: ${names.join(", ")}`);
  const leftovers = removeLeftovers();
  if (leftovers.length > 0) console.warn(`[hosts] removed ${leftovers.length} namespace(s) left by an earlier run: ${leftovers.join(", ")}`);

  const runId = Math.floor(Math.random() * 0x10000).toString(16).padStart(4, "0");
  const prefix = `${namespacePrefix}${process.pid}-${runId}-`;
  const net24 = `10.${randomOctet(16, 250)}.${randomOctet(0, 255)}`;
  const network: HostNetwork = {
    prefix,
    subnet: `${net24}.0/24`,
    switchNetns: `${prefix}switch`,
    hosts: [],
    host: (name) => {
      const found = network.hosts.find((host) => host.name === name);
      if (!found) throw new Error(`no host ${name}; hosts: ${network.hosts.map((host) => host.name).join(", ")}`);
      return found;
    },
    cleanup: async () => cleanupNetwork(network),
    processes: new Set(),
    dir: mkdtempSync(join(tmpdir(), "mictlanx-hosts-")),
  };
  const onExit = () => cleanupNetworkSync(network);
  process.on("exit", onExit);
  networksMade.set(network, onExit);
  try {
    const sw = network.switchNetns;
    run(["ip", "netns", "add", sw]);
    run(["ip", "-n", sw, "link", "add", bridgeName, "type", "bridge"]);
    run(["ip", "-n", sw, "link", "set", bridgeName, "up"]);
    names.forEach((name, index) => network.hosts.push(addHost(network, name, index, `${net24}.${firstHostOctet + index}`)));
  } catch (error) {
    await network.cleanup();
    throw error;
  }
  console.log(`[hosts] ${names.length} hosts on ${network.subnet} in namespaces ${prefix}*: ${network.hosts.map((host) => `${host.name}=${host.ip}`).join(" ")}; logs and captures in ${network.dir}`);
  return network;
}

function addHost(network: HostNetwork, name: string, index: number, ip: string): Host {
  const netns = `${network.prefix}${name.replace(/[^A-Za-z0-9_.-]/g, "_")}`;
  const bridgePort = `vh${index}`;
  for (const iface of [bridgePort, hostInterface, bridgeName]) {
    if (Buffer.byteLength(iface) > interfaceNameBytesMax) throw new Error(`interface name ${iface} is longer than ${interfaceNameBytesMax} bytes`);
  }
  const sw = network.switchNetns;
  run(["ip", "netns", "add", netns]);
  // Made inside the switch, one end moved straight into the host: never a link in the root namespace.
  run(["ip", "-n", sw, "link", "add", bridgePort, "type", "veth", "peer", "name", hostInterface, "netns", netns]);
  run(["ip", "-n", sw, "link", "set", bridgePort, "master", bridgeName, "up"]);
  run(["ip", "-n", netns, "addr", "add", `${ip}/24`, "dev", hostInterface]);
  run(["ip", "-n", netns, "link", "set", hostInterface, "up"]);
  run(["ip", "-n", netns, "link", "set", "lo", "up"]);
  return { name, netns, ip, iface: hostInterface, bridgePort, network };
}

function cleanupNetworkSync(network: HostNetwork): void {
  for (const proc of network.processes) {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(proc.pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
  }
  for (const host of network.hosts) removeNamespace(host.netns);
  removeNamespace(network.switchNetns);
  if (!process.env.MICTLANX_KEEP) rmSync(network.dir, { recursive: true, force: true }); // logs and captures, kept on request

}

async function cleanupNetwork(network: HostNetwork): Promise<void> {
  const processes = [...network.processes];
  cleanupNetworkSync(network);
  await Promise.all(processes.map((proc) => proc.exited));
  network.processes.clear();
  const hook = networksMade.get(network);
  if (hook) process.off("exit", hook);
  networksMade.delete(network);
}

/** argv run inside a host: `ip netns exec NS argv…` (exec: the pid is the command's). */
export function commandIn(host: Host, argv: string[]): string[] {
  return ["ip", "netns", "exec", host.netns, ...argv];
}

/**
 * Start `mictlanx <args…>` in a host and wait for its ready line, as src/local/process.ts does
 * for `up` and the tests; its stderr goes to a log in the network's temp dir (named in errors).
 */
export async function startRoleIn(host: Host, args: string[], options: { name?: string; logFile?: string } = {}): Promise<RoleProcess> {
  const name = options.name ?? host.name;
  const logFile = options.logFile ?? join(host.network.dir, `${name}.log`);
  const role = await startRole(name, args, logFile, commandIn(host, programCommand()));
  host.network.processes.add(role.proc);
  return role;
}

/** Run the CLI in a host as a user there would; exit code, stdout and stderr. */
export async function cliIn(host: Host, args: string[], options: { env?: Record<string, string>; stdin?: Uint8Array; cwd?: string } = {}) {
  const proc = Bun.spawn(commandIn(host, [...programCommand(), ...args]), {
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdin: options.stdin ? new Blob([options.stdin]) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...options.env },
  });
  host.network.processes.add(proc);
  try {
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, stdout, stderr };
  } finally {
    host.network.processes.delete(proc);
  }
}

export interface Capture {
  file: string;
  pid: number;
  /** Wait until every packet sent before it is in the file, stop tcpdump, return the pcap's bytes. */
  stop(): Promise<Uint8Array>;
}

/**
 * `tcpdump -i IFACE -w FILE -U` in a host's namespace, running once this returns (it has said
 * "listening on"). Packets handed to the kernel may reach tcpdump's file a little later, so
 * stop() first sends a datagram with a fresh flush marker out of the same interface and waits
 * until the file holds it: every packet before it is then in the file too.
 */
export async function capture(host: Host, iface: string = host.iface): Promise<Capture> {
  if (tcpdumpUnavailable) throw new Error(`no capture here: ${tcpdumpUnavailable}`);
  const file = join(host.network.dir, `${host.name}-${iface}-${Date.now()}.pcap`);
  // -Z root: Debian's tcpdump otherwise drops to its own user before it opens FILE.
  const proc = Bun.spawn(commandIn(host, ["tcpdump", "-i", iface, "-w", file, "-U", "-n", "-Z", "root", "--immediate-mode"]), { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  host.network.processes.add(proc);
  const said = await waitForListening(proc, host);
  const stop = async (): Promise<Uint8Array> => {
    try {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`tcpdump on ${host.name} ${iface} ended early: ${said()}`);
      await flushCapture(host, iface, file);
      proc.kill("SIGINT");
      const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(captureStopTimeoutMs).then(() => false)]);
      if (!exited) proc.kill("SIGKILL");
      await proc.exited;
      return new Uint8Array(readFileSync(file));
    } finally {
      host.network.processes.delete(proc);
    }
  };
  return { file, pid: proc.pid, stop };
}

async function waitForListening(proc: Bun.Subprocess<"ignore", "ignore", "pipe">, host: Host): Promise<() => string> {
  const reader = proc.stderr.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + captureReadyTimeoutMs;
  const timeout = Bun.sleep(captureReadyTimeoutMs).then(() => "timeout" as const);
  while (!text.includes("listening on")) {
    const next = await Promise.race([reader.read(), timeout]);
    if (next === "timeout" || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`tcpdump in ${host.name} did not start listening within ${captureReadyTimeoutMs} ms: ${text.trim()}`);
    }
    if (next.done) throw new Error(`tcpdump in ${host.name} ended before it listened: ${text.trim()}`);
    text += decoder.decode(next.value, { stream: true });
  }
  void (async () => {
    try {
      for (;;) {
        const next = await reader.read();
        if (next.done) return;
        text += decoder.decode(next.value, { stream: true });
      }
    } catch {
      // tcpdump is gone
    }
  })();
  return () => text.trim();
}

/**
 * Send a UDP datagram holding a fresh marker out of `iface` (to an address of the subnet that a
 * fixed neighbour entry sends straight out, so no ARP waits) until it shows in the capture file.
 */
async function flushCapture(host: Host, iface: string, file: string): Promise<void> {
  const nowhere = host.ip.replace(/\.\d+$/, `.${nowhereOctet}`);
  run(["ip", "-n", host.netns, "neigh", "replace", nowhere, "lladdr", nowhereMac, "dev", iface, "nud", "permanent"]);
  const marker = `mictlanx-capture-flush-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const needle = Buffer.from(marker);
  const deadline = Date.now() + captureFlushTimeoutMs;
  while (Date.now() < deadline) {
    run(commandIn(host, ["bash", "-c", `printf %s "$1" > /dev/udp/${nowhere}/9`, "flush", marker]));
    for (let polls = 0; polls < 10; polls += 1) {
      if (existsSync(file) && readFileSync(file).indexOf(needle) >= 0) return;
      await Bun.sleep(50);
    }
  }
  throw new Error(`the capture on ${host.name} ${iface} did not catch up with the wire within ${captureFlushTimeoutMs} ms`);
}

/** Whether the captured bytes hold `text` anywhere (a pcap keeps each packet's bytes whole). */
export function captureHolds(bytes: Uint8Array, text: string): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(Buffer.from(text)) >= 0;
}
