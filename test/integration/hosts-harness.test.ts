// The real-hosts harness itself (test/support/hosts.ts): what it makes, that the root
// namespace's links and addresses are untouched, that it removes everything it made (by
// cleanup, and by its exit hook when a runner exits without it), that it removes what a dead
// run left and keeps what a live one holds, and that a role started in a host keeps its pid.
import { afterAll, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { cliIn, hostInterface, makeHosts, netnsUnavailable, removeLeftovers, sayWhySkipped, startRoleIn, type HostNetwork } from "../support/hosts.ts";
import { tempDir } from "../support/vss.ts";

sayWhySkipped("hosts-harness", netnsUnavailable);
const skip = netnsUnavailable !== undefined;
const made: HostNetwork[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const network of made) await network.cleanup();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function sh(argv: string[]): string {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${result.stderr.toString()}`);
  return result.stdout.toString();
}
/** A live process, not a zombie waiting for whoever reaps orphans here. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
const namespaces = () => sh(["ip", "netns", "list"]).split("\n").map((line) => line.split(" ")[0] ?? "").filter((name) => name.length > 0);
/** The root namespace's links and addresses, without counters that move on their own. */
const rootNetworking = () => `${sh(["ip", "-o", "link", "show"])}\n${sh(["ip", "-o", "addr", "show"])}`.replace(/valid_lft \S+ preferred_lft \S+/g, "");

test.skipIf(skip)("hosts on a bridge in a switch namespace, addresses from one random /24, the root namespace untouched, all removed by cleanup", async () => {
  const rootBefore = rootNetworking();
  const network = await makeHosts(["a", "b"]);
  made.push(network);
  expect(rootNetworking()).toBe(rootBefore);
  expect(network.subnet).toMatch(/^10\.\d+\.\d+\.0\/24$/);
  const net24 = network.subnet.replace(/\.0\/24$/, "");
  const listed = namespaces();
  for (const netns of [network.switchNetns, ...network.hosts.map((host) => host.netns)]) {
    expect(netns.startsWith(`${network.prefix}`)).toBe(true);
    expect(netns).toContain(`-${process.pid}-`); // the owner's pid, for leftovers
    expect(listed).toContain(netns);
  }
  for (const host of network.hosts) {
    expect(host.ip.startsWith(`${net24}.`)).toBe(true);
    const links = sh(["ip", "-n", host.netns, "-o", "addr", "show"]);
    expect(links).toMatch(new RegExp(`^\\d+: ${hostInterface}\\s+inet ${host.ip.replaceAll(".", "\\.")}/24 `, "m"));
    expect(links).toMatch(/^\d+: lo\s+inet 127\.0\.0\.1\/8 /m);
    // The other end of its veth is a port of the bridge in the switch.
    expect(sh(["ip", "-n", network.switchNetns, "-o", "link", "show", host.bridgePort])).toContain("master br0");
  }
  expect(new Set(network.hosts.map((host) => host.ip)).size).toBe(2);

  // Host a reaches b over the bridge: the real program, b's SPM, a's CLI.
  const [a, b] = [network.host("a"), network.host("b")];
  const spm = await startRoleIn(b, ["spm", "--host", b.ip, "--port", "7200", "--data", join(network.dir, "spm"), "--insecure"]);
  expect(spm.address).toBe(`${b.ip}:7200`);
  expect(sh(["ip", "netns", "identify", String(spm.pid)]).trim()).toBe(b.netns); // the pid we hold is the role's, in b
  const plain = { env: { MICTLANX_CREDENTIALS: "" } }; // this SPM runs --insecure: no key to prove
  const status = await cliIn(a, ["status", "--json", "--spm", spm.address], plain);
  expect(status.code).toBe(0);
  expect(JSON.parse(status.stdout).spm).toBe(spm.address);
  // …and not the root namespace's loopback: a's 127.0.0.1 is its own.
  expect((await cliIn(a, ["status", "--spm", `127.0.0.1:7200`], plain)).code).toBe(1);

  await network.cleanup();
  expect(spm.proc.exitCode !== null || spm.proc.signalCode !== null).toBe(true);
  expect(running(spm.pid)).toBe(false);
  const after = namespaces();
  for (const host of network.hosts) expect(after).not.toContain(host.netns);
  expect(after).not.toContain(network.switchNetns);
  expect(rootNetworking()).toBe(rootBefore);
}, 30_000);

test.skipIf(skip)("namespaces of a dead run are removed; a live run's are kept", async () => {
  const ended = Bun.spawn(["true"]);
  await ended.exited;
  const live = Bun.spawn(["sleep", "30"]);
  const deadNetns = `mxh-${ended.pid}-dead-x`;
  const liveNetns = `mxh-${live.pid}-live-x`;
  try {
    sh(["ip", "netns", "add", deadNetns]);
    sh(["ip", "netns", "add", liveNetns]);
    const removed = removeLeftovers();
    expect(removed).toContain(deadNetns);
    expect(removed).not.toContain(liveNetns);
    expect(namespaces()).not.toContain(deadNetns);
    expect(namespaces()).toContain(liveNetns);
    live.kill("SIGKILL");
    await live.exited;
    expect(removeLeftovers()).toContain(liveNetns);
    expect(namespaces()).not.toContain(liveNetns);
  } finally {
    if (live.exitCode === null) live.kill("SIGKILL");
    for (const netns of [deadNetns, liveNetns]) Bun.spawnSync(["ip", "netns", "del", netns], { stderr: "ignore" });
  }
});

test.skipIf(skip)("a runner that exits without cleanup leaves nothing: the exit hook removes its namespaces and kills its roles", async () => {
  const dir = tempDir("hosts-exit");
  dirs.push(dir);
  const script = join(dir, "leave.ts");
  const hosts = resolve(import.meta.dir, "../support/hosts.ts");
  writeFileSync(
    script,
    `import { makeHosts, startRoleIn } from ${JSON.stringify(hosts)};\n` +
      `const network = await makeHosts(["x", "y"]);\n` +
      `const x = network.host("x");\n` +
      `const spm = await startRoleIn(x, ["spm", "--host", x.ip, "--port", "7200", "--data", ${JSON.stringify(join(dir, "spm"))}, "--insecure"]);\n` +
      `console.log(JSON.stringify({ prefix: network.prefix, pid: spm.pid }));\n` +
      `process.exit(3);\n`,
  );
  const child = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect(code).toBe(3);
  const line = stdout.split("\n").find((candidate) => candidate.startsWith("{"));
  if (!line) throw new Error(`the script printed no result: ${stdout} ${stderr}`);
  const { prefix, pid } = JSON.parse(line) as { prefix: string; pid: number };
  expect(namespaces().filter((netns) => netns.startsWith(prefix))).toEqual([]);
  expect(running(pid)).toBe(false);
});
