// --advertise through the real program on loopback: a peer that binds 0.0.0.0 registers with
// the address it advertises, takes replicas and serves them alone; a router that binds 0.0.0.0
// heartbeats its advertised address and takes puts; a wildcard bind with nothing to advertise
// exits 2 saying what to pass. (On real hosts, in network namespaces: hosts-vss.test.ts.)
import { afterAll, expect, test } from "bun:test";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, clientFor, eventually, kill9, programCommand, spmStatus, startRole, startTestVss, tempDir } from "../support/vss.ts";
import { Client } from "../../src/client/client.ts";
import type { RoleProcess } from "../../src/local/process.ts";
import { testCredentials, tlsArgs } from "../support/security.ts";

const { random, seed } = seededRandom("hosts-advertise");
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
const extra: RoleProcess[] = [];
afterAll(async () => {
  for (const role of extra) kill9(role);
  await Promise.all(extra.map((role) => role.exited));
  await vss?.cleanup();
});

/** A port free on every address now; the role binds it a moment later (the test must name it, as an operator would). */
function freePort(): number {
  const probe = Bun.listen({ hostname: "0.0.0.0", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

test(`a peer on 0.0.0.0 with --advertise 127.0.0.1:P registers as 127.0.0.1:P and serves puts and gets (seed ${seed})`, async () => {
  vss = await startTestVss({ label: "hosts-advertise", peers: 2, routers: 1 });
  const port = freePort();
  const advertised = `127.0.0.1:${port}`;
  const peer = await startRole(
    "peer-wide",
    ["peer", "--host", "0.0.0.0", "--advertise", advertised, "--port", String(port), "--metrics-port", "off", "--data", join(vss.dir, "peers", "peer-wide"), "--id", "peer-wide", "--spm", vss.spm.address, ...(await tlsArgs("peer", "peer-wide"))],
    join(vss.dir, "logs", "peer-wide.log"),
    programCommand(),
  );
  extra.push(peer);
  expect(peer.address).toBe(advertised); // the ready line leads with what others dial

  await eventually("the SPM has peer-wide up at its advertised address", 10_000, async () => {
    const found = (await spmStatus(vss!)).peers.find((candidate) => candidate.id === "peer-wide");
    return found?.state === "up" && found.address === advertised ? true : JSON.stringify(found);
  });

  // A router on 0.0.0.0 advertising a host alone: its port is the one it bound.
  const router = await startRole("router-wide", ["router", "--host", "0.0.0.0", "--advertise", "127.0.0.1", "--port", "0", "--metrics-port", "off", "--spm", vss.spm.address, ...(await tlsArgs("router", "router-wide"))], join(vss.dir, "logs", "router-wide.log"), programCommand());
  extra.push(router);
  expect(router.address).toMatch(/^127\.0\.0\.1:\d+$/);
  await eventually("the SPM hears router-wide at its advertised address", 10_000, async () => (await spmStatus(vss!)).routers.some((seen) => seen.address === router.address && seen.state === "up"));

  // rf 3 on three peers: every chunk has a replica on peer-wide, written through either router.
  const data = randomBytes(random, 3 * 256 * 1024 + 99);
  const wide = new Client({ ...testCredentials, routers: [router.address], cacheBytes: 0, chunkSize: 256 * 1024 });
  const plain = clientFor(vss, { chunkSize: 256 * 1024 });
  try {
    await wide.put("adv", "through-wide-router.bin", data, { rf: 3 });
    await plain.put("adv", "through-plain-router.bin", data, { rf: 3 });
    for (const key of ["through-wide-router.bin", "through-plain-router.bin"]) {
      const stat = await plain.stat("adv", key);
      expect(stat.chunks.length).toBe(4);
      for (const chunk of stat.chunks) expect(chunk.peers).toContain("peer-wide");
      expect(stat.peers.find((located) => located.id === "peer-wide")?.address).toBe(advertised);
    }

    // With the other two peers killed, peer-wide alone serves the gets, byte-exact.
    for (const other of vss.peers) kill9(other);
    await Promise.all(vss.peers.map((other) => other.exited));
    for (const client of [wide, plain]) {
      for (const key of ["through-wide-router.bin", "through-plain-router.bin"]) {
        expect(Buffer.compare(Buffer.from(await client.get("adv", key)), Buffer.from(data))).toBe(0);
      }
    }
  } finally {
    wide.close();
    plain.close();
  }
}, 60_000);

test("a role that binds every address with nothing to advertise exits 2 and says what to pass", async () => {
  const dir = tempDir("hosts-advertise-refused");
  const refusals = [
    ["peer", "--host", "0.0.0.0", "--port", "0", "--data", join(dir, "peer"), "--insecure"],
    ["router", "--host", "0.0.0.0", "--port", "0", "--spm", "127.0.0.1:7200", "--insecure"],
    ["spm", "--host", "::", "--port", "0", "--data", join(dir, "spm"), "--insecure"],
  ];
  try {
    for (const args of refusals) {
      const result = await cli(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`${args[0]}: --host ${args[2]} listens on every address, which no other host can dial; pass --advertise HOST:PORT`);
    }
    const wildcard = await cli(["peer", "--host", "0.0.0.0", "--advertise", "0.0.0.0:7210", "--port", "0", "--data", join(dir, "peer"), "--insecure"]);
    expect(wildcard.code).toBe(2);
    expect(wildcard.stderr).toContain("names every address");
    expect(readdirSync(dir)).toEqual([]); // refused before --data was created
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
