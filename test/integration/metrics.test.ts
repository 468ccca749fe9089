// Every role serves valid Prometheus text, and its counters move under load.
import { afterAll, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { clientFor, startTestVss } from "../support/vss.ts";
import { parsePrometheus, total } from "../support/prometheus.ts";

const { random, seed } = seededRandom("metrics");
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
afterAll(async () => vss?.cleanup());

async function scrape(url: string | undefined) {
  expect(url).toBeDefined();
  const response = await fetch(url!);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/plain");
  return parsePrometheus(await response.text());
}

test(`metrics of every role are valid Prometheus text and move under load (seed ${seed})`, async () => {
  vss = await startTestVss({ label: "metrics", peers: 3, routers: 1 });
  const peerUrl = vss.peers[0]!.metricsUrl;
  const before = { spm: await scrape(vss.spm.metricsUrl), router: await scrape(vss.routers[0]!.metricsUrl), peer: await scrape(peerUrl) };
  expect(total(before.spm, "mictlanx_spm_peers", { state: "up" })).toBe(3);

  const writer = clientFor(vss, { chunkSize: 64 * 1024 });
  const reader = clientFor(vss); // its own (empty) cache: every chunk comes through the router
  for (let i = 0; i < 20; i += 1) {
    await writer.put("m", `k${i}`, randomBytes(random, 200_000), { rf: 3 });
    await reader.get("m", `k${i}`);
  }
  writer.close();
  reader.close();
  await Bun.sleep(1_200); // a heartbeat, so the SPM's view of peers is fresh

  const after = { spm: await scrape(vss.spm.metricsUrl), router: await scrape(vss.routers[0]!.metricsUrl), peer: await scrape(peerUrl) };
  // Router: requests by op and outcome, latency histogram, bytes both ways.
  expect(total(after.router, "mictlanx_router_requests_total", { op: "ball.putChunk", outcome: "ok" })).toBeGreaterThan(total(before.router, "mictlanx_router_requests_total", { op: "ball.putChunk", outcome: "ok" }));
  expect(total(after.router, "mictlanx_router_request_seconds_count", { op: "ball.getChunk" })).toBeGreaterThan(0);
  expect(total(after.router, "mictlanx_router_bytes_total", { direction: "in" })).toBe(20 * 200_000);
  expect(total(after.router, "mictlanx_router_bytes_total", { direction: "out" })).toBeGreaterThanOrEqual(20 * 200_000);
  // Peer (rf 3: every peer holds every chunk): puts, bytes, chunks, fsync batching.
  // Routers batch small chunks per peer, so count requests of both forms: 80 chunks in 1..80 requests.
  const peerPuts = total(after.peer, "mictlanx_peer_requests_total", { op: "chunk.put", outcome: "ok" }) + total(after.peer, "mictlanx_peer_requests_total", { op: "chunk.putMany", outcome: "ok" });
  expect(peerPuts).toBeGreaterThanOrEqual(1);
  expect(peerPuts).toBeLessThanOrEqual(20 * 4);
  expect(total(after.peer, "mictlanx_peer_chunks")).toBe(80);
  const live = total(after.peer, "mictlanx_peer_bytes", { kind: "live" }); // chunk bytes plus each record's header
  expect(live).toBeGreaterThanOrEqual(20 * 200_000);
  expect(live).toBeLessThan(20 * 200_000 + 80 * 512);
  expect(total(after.peer, "mictlanx_peer_fsyncs_total")).toBeGreaterThan(total(before.peer, "mictlanx_peer_fsyncs_total"));
  expect(total(after.peer, "mictlanx_peer_shards", { state: "active" })).toBe(1);
  // Every fsync is in the batch-size histogram, and the writes it counts add up to the counter's.
  expect(total(after.peer, "mictlanx_peer_fsync_batch_writes_count")).toBe(total(after.peer, "mictlanx_peer_fsyncs_total"));
  expect(total(after.peer, "mictlanx_peer_fsync_batch_writes_sum")).toBe(total(after.peer, "mictlanx_peer_fsync_batch_writes_total"));
  // SPM: balls and bytes, requests.
  expect(total(after.spm, "mictlanx_spm_balls")).toBe(20);
  expect(total(after.spm, "mictlanx_spm_stored_bytes")).toBe(20 * 200_000);
  const commits = total(after.spm, "mictlanx_spm_requests_total", { op: "ball.commit", outcome: "ok" }) + total(after.spm, "mictlanx_spm_requests_total", { op: "ball.commitMany", outcome: "ok" });
  expect(commits).toBeGreaterThanOrEqual(1);
  expect(commits).toBeLessThanOrEqual(20);
  expect(total(after.spm, "mictlanx_spm_under_replicated_chunks")).toBe(0);
});
