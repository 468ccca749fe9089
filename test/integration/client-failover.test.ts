// A client with two routers; one is killed (kill -9) in the middle of a large put. The put still
// succeeds — its chunks go on through the other router, each retried alone — and the ball reads
// back byte-exact through a client that still lists the dead router first.
import { afterAll, expect, test } from "bun:test";
import { Client } from "../../src/client/index.ts";
import { randomBytes, seededRandom } from "../support/random.ts";
import { kill9, startTestVss } from "../support/vss.ts";
import { parsePrometheus, total } from "../support/prometheus.ts";
import { testCredentials } from "../support/security.ts";

const { random, seed } = seededRandom("client-failover");
const MiB = 1024 * 1024;
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
const clients: Client[] = [];
afterAll(async () => {
  for (const client of clients) client.close();
  await vss?.cleanup();
});

async function putChunksServed(metricsUrl: string | undefined): Promise<number> {
  expect(metricsUrl).toBeDefined();
  return total(parsePrometheus(await (await fetch(metricsUrl!)).text()), "mictlanx_router_requests_total", { op: "ball.putChunk", outcome: "ok" });
}

test(`a router killed mid-put: the put succeeds through the other and reads back exact (seed ${seed})`, async () => {
  vss = await startTestVss({ label: "client-failover", peers: 3, routers: 2 });
  const [doomed, survivor] = vss.routers as [(typeof vss.routers)[0], (typeof vss.routers)[0]];
  const size = 96 * MiB + 12_345;
  const data = randomBytes(random, size);
  const writer = new Client({ ...testCredentials, routers: [doomed.address, survivor.address], chunkSize: 256 * 1024, concurrency: 4 });
  clients.push(writer);

  let acknowledged = 0;
  const progress: number[] = [];
  const put = writer.put("failover", "big.bin", data, { rf: 2, onProgress: (done) => (acknowledged = done) });
  put.catch(() => {});

  // Kill the first router once a quarter is acknowledged and both routers have served chunks.
  while (acknowledged < size / 4) await Bun.sleep(5);
  const doomedServed = await putChunksServed(doomed.metricsUrl);
  const survivorBefore = await putChunksServed(survivor.metricsUrl);
  expect(doomedServed).toBeGreaterThan(0);
  kill9(doomed);
  const killedAt = acknowledged;
  progress.push(killedAt);
  expect(killedAt).toBeLessThan(size); // it was killed mid-put

  const result = await put;
  expect(result.size).toBe(size);
  expect(result.checksum).toBe(new Bun.CryptoHasher("sha256").update(data).digest("hex"));
  expect(await doomed.exited).not.toBe(0);
  // The rest went through the survivor.
  const survivorAfter = await putChunksServed(survivor.metricsUrl);
  expect(survivorAfter - survivorBefore).toBeGreaterThanOrEqual(Math.floor((size - killedAt) / (256 * 1024)) - 4);
  const states = writer.stats().routers;
  expect(states.find((state) => state.address === doomed.address)?.failuresInARow).toBeGreaterThan(0);
  expect(writer.stats().retries).toBeGreaterThan(0);
  console.log(`[client-failover] killed ${doomed.address} at ${(killedAt / MiB).toFixed(1)} of ${(size / MiB).toFixed(1)} MiB; ${writer.stats().retries} retries`);

  // Read back through a fresh client that lists the dead router first.
  const reader = new Client({ ...testCredentials, routers: [doomed.address, survivor.address], cacheBytes: 0 });
  clients.push(reader);
  const { meta, stream } = await reader.getStream("failover", "big.bin");
  expect(meta.size).toBe(size);
  let at = 0;
  for await (const piece of stream) {
    if (Buffer.compare(Buffer.from(piece), Buffer.from(data.subarray(at, at + piece.byteLength))) !== 0) throw new Error(`bytes differ in [${at}, ${at + piece.byteLength}) (seed ${seed})`);
    at += piece.byteLength;
  }
  expect(at).toBe(size);
  const stat = await reader.stat("failover", "big.bin");
  expect(stat.numChunks).toBe(Math.ceil(size / (256 * 1024)));
  for (const chunk of stat.chunks) expect(new Set(chunk.peers).size).toBe(2);
}, 120_000);
