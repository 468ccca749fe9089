// The shell as a user meets it: `mictlanx up` on a temp dir, then put/get/ls/stat/del/status
// with their exit codes and --json shapes; SIGTERM stops every process; `up` on the same dir
// brings the same data back.
import { afterAll, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { alive, cli, programCommand, tempDir } from "../support/vss.ts";

const { random, seed } = seededRandom("cli");
const dir = tempDir("cli");
let up: Bun.Subprocess | undefined;
afterAll(() => {
  if (up && up.exitCode === null) up.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

async function startUp(): Promise<{ proc: Bun.Subprocess; vss: { spm: string; routers: string[]; peers: Array<{ id: string; address: string; pid: number; data: string }>; spmPid: number; routerPids: number[] } }> {
  const proc = Bun.spawn([...programCommand(), "up", "--data", join(dir, "vss"), "--port", "0", "--peers", "3", "--routers", "2"], { stdout: "pipe", stderr: "pipe" });
  const reader = proc.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 30_000;
  while (!text.includes("VSS is up") && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  expect(text).toContain("VSS is up");
  reader.releaseLock();
  return { proc, vss: JSON.parse(readFileSync(join(dir, "vss", "vss.json"), "utf8")) };
}

test(`up, the client commands, exit codes, JSON shapes, stop, up again (seed ${seed})`, async () => {
  const first = await startUp();
  up = first.proc;
  const { vss } = first;
  expect(vss.peers.length).toBe(3);
  expect(vss.routers.length).toBe(2);
  for (const peer of vss.peers) expect(Object.keys(peer).sort()).toEqual(["address", "data", "id", "pid"]);
  for (const pid of [vss.spmPid, ...vss.routerPids, ...vss.peers.map((peer) => peer.pid)]) expect(alive(pid)).toBe(true);
  // up made its own CA and admin key: the CLI is pointed at its credentials file (from where up
  // ran with its default dir it would find it by itself: .ci/smoke-vss.sh runs it that way).
  const env = { MICTLANX_ROUTERS: vss.routers.join(","), MICTLANX_SPM: vss.spm, MICTLANX_CREDENTIALS: join(dir, "vss", "credentials.json") };

  // put from a file and from stdin; get to a file and to stdout.
  const file = join(dir, "input.bin");
  const data = randomBytes(random, 3 * 1024 * 1024 + 17);
  writeFileSync(file, data);
  const put = await cli(["put", "docs/input.bin", file, "--rf", "2", "--chunk-size", "512KiB", "--tag", "team=storage", "--json"], { env });
  expect(put.code).toBe(0);
  const putJson = JSON.parse(put.stdout);
  expect(putJson).toMatchObject({ bucket: "docs", key: "input.bin", size: data.byteLength, numChunks: 7 });
  const piped = randomBytes(random, 100_000);
  expect((await cli(["put", "docs/piped.bin", "-"], { env, stdin: piped })).code).toBe(0);
  const out = join(dir, "out.bin");
  expect((await cli(["get", "docs/input.bin", "-o", out], { env })).code).toBe(0);
  expect(Buffer.compare(readFileSync(out), Buffer.from(data))).toBe(0);
  const toStdout = Bun.spawn([...programCommand(), "get", "docs/piped.bin", "-o", "-"], { stdout: "pipe", env: { ...process.env, ...env } });
  const stdoutBytes = new Uint8Array(await new Response(toStdout.stdout).arrayBuffer());
  expect(await toStdout.exited).toBe(0);
  expect(Buffer.compare(Buffer.from(stdoutBytes), Buffer.from(piped))).toBe(0);

  // stat --json: the shape the VSS issue names.
  const stat = await cli(["stat", "docs/input.bin", "--json"], { env });
  expect(stat.code).toBe(0);
  const statJson = JSON.parse(stat.stdout);
  expect(statJson).toMatchObject({ bucket: "docs", key: "input.bin", ballId: "input.bin", size: data.byteLength, rf: 2, checksum: putJson.checksum });
  expect(statJson.chunks.length).toBe(7);
  for (const chunk of statJson.chunks) expect(Object.keys(chunk).sort()).toEqual(["checksum", "index", "peers", "size"]);
  expect(statJson.tags).toMatchObject({ team: "storage", fullname: "input.bin", extension: "bin", num_chunks: "7", full_checksum: putJson.checksum });

  // ls and status.
  const ls = await cli(["ls", "docs", "--json"], { env });
  expect(JSON.parse(ls.stdout).map((ball: { key: string }) => ball.key)).toEqual(["input.bin", "piped.bin"]);
  const buckets = await cli(["ls"], { env });
  expect(buckets.stdout).toContain("docs");
  const status = await cli(["status", "--json"], { env });
  const statusJson = JSON.parse(status.stdout);
  expect(statusJson.peers.length).toBe(3);
  for (const peer of statusJson.peers) {
    expect(peer.state).toBe("up");
    for (const field of ["id", "address", "usedBytes", "capacityBytes", "chunks"]) expect(peer).toHaveProperty(field);
  }
  expect(statusJson).toHaveProperty("routers");
  expect(statusJson.balls).toBe(2);
  expect(statusJson.underReplicated).toBe(0);
  expect(statusJson).toHaveProperty("healing");
  expect((await cli(["status"], { env })).stdout).toContain("peers 3/3 up");

  // Exit codes: not found 4, usage 2, failure 1.
  const missing = await cli(["get", "docs/nope", "-o", join(dir, "nope")], { env });
  expect(missing.code).toBe(4);
  expect(missing.stderr).toContain("docs/nope does not exist");
  expect(existsSync(join(dir, "nope"))).toBe(false);
  expect((await cli(["stat", "docs/nope"], { env })).code).toBe(4);
  expect((await cli(["put", "no-slash", file], { env })).code).toBe(2);
  expect((await cli(["put", "docs/x", file, "--chunk-size", "lots"], { env })).code).toBe(2);
  expect((await cli(["get"], { env })).code).toBe(2);
  const conflict = await cli(["put", "docs/input.bin", file, "--if-absent"], { env });
  expect(conflict.code).toBe(1);
  expect(conflict.stderr).toContain("already exists");
  const refused = await cli(["ls", "--router", "127.0.0.1:1"]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain("router 127.0.0.1:1 refused the connection");

  // del, then the ball is gone.
  expect((await cli(["del", "docs/piped.bin"], { env })).code).toBe(0);
  expect((await cli(["del", "docs/piped.bin"], { env })).code).toBe(4);

  // SIGTERM stops every process of the VSS.
  up.kill("SIGTERM");
  expect(await up.exited).toBe(0);
  for (const pid of [vss.spmPid, ...vss.routerPids, ...vss.peers.map((peer) => peer.pid)]) expect(alive(pid)).toBe(false);

  // up on the same dir brings back the same data.
  const second = await startUp();
  up = second.proc;
  const env2 = { MICTLANX_ROUTERS: second.vss.routers.join(","), MICTLANX_CREDENTIALS: join(dir, "vss", "credentials.json") };
  const again = join(dir, "again.bin");
  expect((await cli(["get", "docs/input.bin", "-o", again], { env: env2 })).code).toBe(0);
  expect(Buffer.compare(readFileSync(again), Buffer.from(data))).toBe(0);

  // kill -9 of `up` itself: no signal handler runs, yet its roles notice and stop by themselves.
  up.kill("SIGKILL");
  await up.exited;
  const roles = [second.vss.spmPid, ...second.vss.routerPids, ...second.vss.peers.map((peer) => peer.pid)];
  for (let i = 0; i < 50 && roles.some(alive); i += 1) await Bun.sleep(100);
  expect(roles.filter(alive)).toEqual([]);
}, 120_000);
