// The scrub end to end with real processes: a replica damaged on one peer's disk, that no
// client reads, is found by that peer's own background scrub, reported to the SPM, and
// rewritten from a good replica; the peer's copy verifies again, reads through a router give
// the right bytes, and the peer's health, metrics and the SPM's events say what happened.
import { afterAll, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, clientFor, eventually, spmStatus, startTestVss, tempDir } from "../support/vss.ts";
import { xorByteAt } from "../support/corrupt.ts";
import { parsePrometheus, total } from "../support/prometheus.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { peerOps } from "../../src/protocol/peer.ts";
import { asSpm } from "../support/security.ts";

const { random, seed } = seededRandom("scrub");
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
const pool = new RpcPool({ role: "peer", ...asSpm });
afterAll(async () => {
  pool.close();
  await vss?.cleanup();
});

/** The shard file and offset where `needle` sits on a peer's disk. */
function findOnDisk(dataDir: string, needle: Uint8Array): { file: string; at: number } {
  const shards = join(dataDir, "shards");
  for (const name of readdirSync(shards).filter((file) => file.endsWith(".shard"))) {
    const at = readFileSync(join(shards, name)).indexOf(Buffer.from(needle));
    if (at >= 0) return { file: join(shards, name), at };
  }
  throw new Error(`the bytes are not on ${dataDir}`);
}

async function scrape(url: string | undefined) {
  expect(url).toBeDefined();
  return parsePrometheus(await (await fetch(url ?? "")).text());
}

test(`a peer's scrub finds a damaged replica nobody reads, and the SPM repairs it (seed ${seed})`, async () => {
  vss = await startTestVss({ label: "scrub", peers: 3, routers: 1, peerArgs: ["--scrub-rate", "64MiB", "--scrub-interval", "200ms"] });
  const client = clientFor(vss, { chunkSize: 256 * 1024 });
  const data = randomBytes(random, 1024 * 1024);
  await client.put("s", "cold.bin", data, { rf: 2 });
  const stat = await client.stat("s", "cold.bin");
  const holderId = stat.chunks[2]?.peers[0];
  const holder = vss.peers.find((peer) => peer.id === holderId);
  if (!holder) throw new Error(`no peer ${String(holderId)}`);
  const chunk = data.subarray(512 * 1024, 768 * 1024);
  const where = findOnDisk(holder.data, chunk.subarray(4096, 4160));
  xorByteAt(where.file, where.at + 7, 0x5a);

  const peer = new ServiceClient(peerOps, pool, parseAddress(holder.address));
  const ref = { bucket: "s", ball: stat.objectId, index: 2 };
  // Found by the scrub, not by a read: nothing reads the ball until the repair is seen.
  await eventually("the SPM repairs the replica the scrub reported", 30_000, async () => {
    const status = await spmStatus(vss!);
    return status.healing.repairedCorrupt >= 1 || `repairedCorrupt ${status.healing.repairedCorrupt}`;
  });
  const events = (await spmStatus(vss)).events;
  expect(events.some((event) => event.kind === "corrupt_reported" && event.message.includes("scrub pass") && event.message.includes(holder.id))).toBe(true);
  expect(events.some((event) => event.kind === "corrupt_repaired")).toBe(true);

  // The peer's own copy verifies again, straight from the peer.
  const direct = await peer.call("chunk.get", ref);
  expect(Buffer.from(direct.data).equals(Buffer.from(chunk))).toBe(true);
  // And through a router, a fresh client with no cache.
  const reader = clientFor(vss);
  expect(Buffer.from(await reader.get("s", "cold.bin")).equals(Buffer.from(data))).toBe(true);
  reader.close();

  // What the peer says about it: health (the TUI's detail pane) and metrics.
  const health = await peer.call("peer.health", {});
  expect(health.scrub.corruptFound).toBeGreaterThanOrEqual(1);
  expect(health.scrub.ratePerSec).toBe(64 * 1024 * 1024);
  expect(health.recentErrors.some((error) => error.op === "scrub" && error.code === "corrupt" && error.message.includes(`${stat.objectId}_2`))).toBe(true);
  const metrics = await scrape(holder.metricsUrl);
  expect(total(metrics, "mictlanx_peer_scrub_corrupt_total")).toBeGreaterThanOrEqual(1);
  expect(total(metrics, "mictlanx_peer_scrub_chunks_total")).toBeGreaterThan(0);
  expect(total(metrics, "mictlanx_peer_scrub_bytes_total")).toBeGreaterThan(0);

  // Later passes read the repaired copy and find nothing more.
  const found = health.scrub.corruptFound;
  const passes = health.scrub.passes;
  await eventually("two more scrub passes", 15_000, async () => {
    const now = await peer.call("peer.health", {});
    return now.scrub.passes >= passes + 2 || `passes ${now.scrub.passes}`;
  });
  const after = await peer.call("peer.health", {});
  expect(after.scrub.corruptFound).toBe(found);
  expect(after.scrub.lastPassMs).toBeDefined();
  const again = await scrape(holder.metricsUrl);
  expect(total(again, "mictlanx_peer_scrub_passes_total")).toBeGreaterThanOrEqual(passes + 2);
  expect(total(again, "mictlanx_peer_scrub_pass_progress_ratio")).toBeGreaterThanOrEqual(0);
  client.close();
}, 90_000);

test("the scrub flags are checked: a bad rate or too short an interval is a usage error", async () => {
  const dir = tempDir("scrub-flags");
  const rate = await cli(["peer", "--port", "0", "--data", dir, "--scrub-rate", "fast", "--insecure"]);
  expect(rate.code).toBe(2);
  expect(rate.stderr).toContain("is not a size");
  const interval = await cli(["peer", "--port", "0", "--data", dir, "--scrub-interval", "10ms", "--insecure"]);
  expect(interval.code).toBe(2);
  expect(interval.stderr).toContain("--scrub-interval must be at least 100ms");
  expect(readdirSync(dir)).toEqual([]); // refused before anything was written
  rmSync(dir, { recursive: true, force: true });
}, 30_000);
