// Errors that name the cause and the fix, each with its exit code (issue 11 points 7 and 10),
// from the real program: a second `up` in a running VSS's dir or on a taken port; an address
// of the wrong kind of server; a key past its limit; a --data that cannot work; a rebuild with
// nothing to rebuild from; a --chunk-size under its floor; and `up --port 0`'s hint.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readVssFile } from "../../src/local/vss.ts";
import { limits } from "../../src/lib/limits.ts";
import { alive, cli, eventually, programCommand, startTestVss, tempDir } from "../support/vss.ts";
import { testCredentials } from "../support/security.ts";

let vss: Awaited<ReturnType<typeof startTestVss>>;
let dir: string;
beforeAll(async () => {
  vss = await startTestVss({ label: "cli-errors", peers: 2, routers: 1 });
  dir = tempDir("cli-errors-files");
});
afterAll(async () => {
  await vss?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A port this test process holds, so the error must name this pid. */
function holdPort(): { port: number; stop: () => void } {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: () => {} } });
  return { port: listener.port, stop: () => listener.stop(true) };
}

describe("the wrong kind of server says what it is (a hello on connect)", () => {
  test("--router pointed at the SPM or a peer, --spm at a router: exit 2, naming what the address is", async () => {
    const file = join(dir, "small.txt");
    writeFileSync(file, "hello");
    const atSpm = await cli(["put", "--router", vss.spm.address, "b/k", file]);
    expect(atSpm.code).toBe(2);
    expect(atSpm.stderr).toContain(`${vss.spm.address} is an SPM, not a router`);
    expect(atSpm.stderr).not.toContain("unknown operation");
    const atPeer = await cli(["ls", "--router", vss.peers[0]!.address]);
    expect(atPeer.code).toBe(2);
    expect(atPeer.stderr).toContain(`${vss.peers[0]!.address} is a peer, not a router`);
    const atRouter = await cli(["status", "--spm", vss.routers[0]!.address]);
    expect(atRouter.code).toBe(2);
    expect(atRouter.stderr).toContain(`${vss.routers[0]!.address} is a router, not an SPM`);
    // The right addresses still work.
    expect((await cli(["put", "--router", vss.routers[0]!.address, "b/k", file])).code).toBe(0);
    expect((await cli(["status", "--spm", vss.spm.address])).code).toBe(0);
  }, 30_000);
});

describe("names past their limit are usage errors that say the limit", () => {
  test(`a key of ${limits.keyBytesMax + 1} bytes: exit 2 for put, get and stat, before anything is sent`, async () => {
    const file = join(dir, "small.txt");
    writeFileSync(file, "hello");
    const key = "k".repeat(limits.keyBytesMax + 1);
    const router = ["--router", vss.routers[0]!.address];
    for (const args of [["put", `b/${key}`, file], ["get", `b/${key}`, "-o", "-"], ["stat", `b/${key}`]]) {
      const result = await cli([...args, ...router]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`the key is ${limits.keyBytesMax + 1} bytes long; a key may be at most ${limits.keyBytesMax} bytes`);
      expect(result.stderr).not.toContain("tags.fullname");
    }
    // Multi-byte characters count as their UTF-8 bytes; exactly the limit is fine.
    expect((await cli(["stat", `b/${"é".repeat(limits.keyBytesMax / 2 + 1)}`, ...router])).stderr).toContain(`${limits.keyBytesMax + 2} bytes long`);
    expect((await cli(["put", `b/${"k".repeat(limits.keyBytesMax)}`, file, ...router])).code).toBe(0);
  }, 30_000);
});

describe("--chunk-size has a floor", () => {
  test(`under ${limits.chunkSizeFlagBytesMin} B: exit 2 for put and bench, saying the range; at the floor a put works`, async () => {
    const file = join(dir, "small.txt");
    writeFileSync(file, "hello");
    const router = ["--router", vss.routers[0]!.address];
    const put = await cli(["put", "b/chunky", file, "--chunk-size", "4095", ...router]);
    expect(put.code).toBe(2);
    expect(put.stderr).toContain("--chunk-size must be 4.0 KiB to 8.0 MiB");
    const bench = await cli(["bench", "--count", "1", "--chunk-size", "1KiB", ...router]);
    expect(bench.code).toBe(2);
    expect(bench.stderr).toContain("--chunk-size must be 4.0 KiB");
    expect((await cli(["put", "b/chunky", file, "--chunk-size", "4KiB", ...router])).code).toBe(0);
  }, 30_000);
});

describe("--data paths that cannot work say why (exit 2), for spm, peer and up", () => {
  const roles = (data: string) => [
    ["spm", "--port", "0", "--data", data, "--insecure"],
    ["peer", "--port", "0", "--data", data, "--insecure"],
    ["up", "--port", "0", "--data", data],
  ];

  test("a file in the way, and a directory that cannot be made", async () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "not a directory");
    for (const data of [file, join(file, "below")]) {
      for (const args of roles(data)) {
        const result = await cli(args);
        expect(result.code).toBe(2);
        expect(result.stderr).toContain(`${file} is a file, not a directory`);
        expect(result.stderr).not.toMatch(/EEXIST|ENOTDIR/);
      }
    }
    for (const args of roles("/proc/mictlanx-cannot-be-here")) {
      const result = await cli(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("cannot be created: /proc does not take new directories");
    }
  }, 60_000);

  test("a directory this user cannot write: what to do, not a raw EACCES", async () => {
    const locked = join(dir, "locked");
    mkdirSync(locked, { recursive: true });
    chmodSync(locked, 0o500);
    // Root writes anywhere: run the program as nobody when this test runs as root.
    const asRoot = process.getuid?.() === 0;
    const prefix = asRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
    if (asRoot) chmodSync(dir, 0o755);
    const proc = Bun.spawn([...prefix, ...programCommand(), "spm", "--port", "0", "--data", join(locked, "spm"), "--insecure"], { stdout: "pipe", stderr: "pipe" });
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${join(locked, "spm")} is not writable by this user (EACCES); give a directory this user can write`);
    chmodSync(locked, 0o700);
  }, 30_000);
});

describe("-o paths that cannot work say why (exit 2), for get and get --recursive", () => {
  test("a file in the way of -o, and a directory this user cannot write", async () => {
    const router = ["--router", vss.routers[0]!.address];
    expect((await cli(["put", "out/f", "-", ...router], { stdin: new TextEncoder().encode("hello") })).code).toBe(0);
    const file = join(dir, "a-file");
    writeFileSync(file, "x");
    for (const args of [["get", "out/f", "-o", join(file, "inside")], ["get", "out", "--recursive", "-o", join(file, "inside")]]) {
      const result = await cli([...args, ...router]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`${file} is a file, not a directory`);
      expect(result.stderr).not.toContain("ENOTDIR:");
    }
    const locked = join(dir, "locked-out");
    mkdirSync(locked, { recursive: true });
    chmodSync(locked, 0o500);
    const asRoot = process.getuid?.() === 0;
    const prefix = asRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
    if (asRoot) chmodSync(dir, 0o755);
    // That user cannot read the test's credentials file (0600, root's): it is given the key in
    // its environment, and a copy of the CA certificate (public) it can read.
    const caCopy = join(dir, "ca.crt");
    copyFileSync(testCredentials.ca, caCopy);
    chmodSync(caCopy, 0o644);
    const env = { ...process.env, MICTLANX_CREDENTIALS: "", MICTLANX_ACCESS_KEY: testCredentials.accessKey, MICTLANX_SECRET_KEY: testCredentials.secretKey, MICTLANX_CA: caCopy };
    for (const args of [["get", "out/f", "-o", join(locked, "x")], ["get", "out", "--recursive", "-o", join(locked, "x")]]) {
      const proc = Bun.spawn([...prefix, ...programCommand(), ...args, ...router], { stdout: "pipe", stderr: "pipe", env });
      const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
      expect(code).toBe(2);
      expect(stderr).toContain("is not writable by this user (EACCES)");
      expect(stderr).not.toContain("permission denied, ");
    }
    chmodSync(locked, 0o700);
  }, 60_000);
});

describe("peer --rebuild-index with nothing to rebuild from", () => {
  test("an empty or missing dir: refused with exit 1, nothing created", async () => {
    const empty = join(dir, "empty-peer");
    mkdirSync(empty, { recursive: true });
    const refused = await cli(["peer", "--data", empty, "--rebuild-index"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("it holds no shard files");
    expect(existsSync(join(empty, "index.sqlite"))).toBe(false);
    const missing = join(dir, "no-such-peer");
    expect((await cli(["peer", "--data", missing, "--rebuild-index"])).code).toBe(1);
    expect(existsSync(missing)).toBe(false);
  }, 30_000);
});

describe("a second VSS where one runs", () => {
  test("a taken port: the role's own error names the port and the pid holding it (exit 1), for spm and up", async () => {
    const held = holdPort();
    try {
      const spm = await cli(["spm", "--port", String(held.port), "--data", join(dir, "spm-busy"), "--insecure"]);
      expect(spm.code).toBe(1);
      expect(spm.stderr).toContain(`cannot listen on 127.0.0.1:${held.port}: the port is taken by pid ${process.pid}`);
      const up = await cli(["up", "--port", String(held.port), "--data", join(dir, "up-busy")]);
      expect(up.code).toBe(1);
      expect(up.stderr).toContain(`spm could not start: cannot listen on 127.0.0.1:${held.port}: the port is taken by pid ${process.pid}`);
      expect(up.stderr).not.toContain("closed its output");
      // A dir whose vss.json names pids that are alive, whose SPM does not answer (hung, or
      // starting): the taken port is said, and that a VSS may be running there.
      const stale = join(dir, "up-stale");
      mkdirSync(stale, { recursive: true });
      const file = { spm: `127.0.0.1:${held.port}`, routers: [], peers: [], spmPid: process.pid, routerPids: [] };
      writeFileSync(join(stale, "vss.json"), JSON.stringify(file));
      const again = await cli(["up", "--port", String(held.port), "--data", stale]);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain(`the port is taken by pid ${process.pid}`);
      expect(again.stderr).toContain(`${stale}/vss.json lists pids that are alive (${process.pid}): a VSS may already be running in that dir`);
    } finally {
      held.stop();
    }
  }, 30_000);

  test("up in the dir of a running VSS is refused before it starts anything (exit 1); the running one is untouched", async () => {
    const before = readVssFile(vss.dir);
    const again = await cli(["up", "--port", "0", "--data", vss.dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`a VSS is already running in ${vss.dir}: its SPM answers at ${vss.spm.address}`);
    expect(readVssFile(vss.dir)).toEqual(before);
    expect(alive(vss.spm.pid)).toBe(true);
    expect((await cli(["status", "--spm", vss.spm.address])).code).toBe(0);
  }, 30_000);
});

describe("up --port 0 says where its VSS is", () => {
  test("the hint carries the --router and --spm it picked", async () => {
    const data = join(dir, "up-port-0");
    const env = { ...process.env, MICTLANX_PARENT_PID: String(process.pid) };
    const proc = Bun.spawn([...programCommand(), "up", "--port", "0", "--peers", "2", "--data", data], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env });
    let out = "";
    void (async () => {
      const decoder = new TextDecoder();
      for await (const piece of proc.stdout) out += decoder.decode(piece, { stream: true });
    })();
    try {
      await eventually("up prints its hint", 30_000, () => out.includes("once for this shell") || out);
      const file = readVssFile(data);
      const router = file.routers[0]!;
      expect(out).toContain(`mictlanx put --router ${router} demo/hello.txt`);
      expect(out).toContain(`mictlanx status --spm ${file.spm}`);
      // Its admin key is not where the CLI looks by itself (./.mictlanx): the export names it.
      expect(out).toContain(`export MICTLANX_ROUTERS=${router} MICTLANX_SPM=${file.spm} MICTLANX_CREDENTIALS=${join(data, "credentials.json")}`);
      // And the hint works as printed.
      const readme = join(dir, "hello.txt");
      writeFileSync(readme, "hi");
      expect((await cli(["put", "--router", router, "demo/hello.txt", readme], { env: { MICTLANX_CREDENTIALS: join(data, "credentials.json") } })).code).toBe(0);
    } finally {
      const file = existsSync(join(data, "vss.json")) ? readVssFile(data) : undefined;
      process.kill(proc.pid, "SIGKILL");
      await proc.exited;
      // Its children stop by themselves once up is gone (MICTLANX_PARENT_PID); wait for that.
      const pids = file ? [file.spmPid, ...file.routerPids, ...file.peers.map((peer) => peer.pid)] : [];
      await eventually("up's children stop", 15_000, () => pids.every((pid) => !alive(pid)) || `alive: ${pids.filter(alive)}`);
    }
  }, 60_000);
});
