// A peer that stops answering (SIGSTOP: a hung process, a stalled disk) while it holds a replica:
// reads fail over to the other replica after the router's per-replica timeout, long before the
// request's own 30 s timeout or the SPM's down grace, and return the right bytes.
import { afterAll, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { clientFor, startTestVss } from "../support/vss.ts";
import { vssTimings } from "../../src/lib/limits.ts";

const { random, seed } = seededRandom("stopped-peer");
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
let stopped: number | undefined;
afterAll(async () => {
  if (stopped !== undefined) process.kill(stopped, "SIGCONT");
  await vss?.cleanup();
});

test(`reads fail over from a stopped peer within the per-replica timeout (seed ${seed})`, async () => {
  // A long down grace: the stopped peer stays "up" in the SPM's eyes the whole time.
  vss = await startTestVss({ label: "stopped-peer", peers: 2, routers: 1, spmArgs: ["--suspect-after", "30s", "--down-after", "60s"] });
  const writer = clientFor(vss, { chunkSize: 128 * 1024 });
  const small = randomBytes(random, 10_000); // one chunk: batched reads (getMany)
  const large = randomBytes(random, 600_000); // chunks of 128 KiB: single reads
  await writer.put("st", "small", small, { rf: 2 });
  await writer.put("st", "large", large, { rf: 2 });
  writer.close();
  stopped = vss.peers[0]!.pid;
  process.kill(stopped, "SIGSTOP");
  for (const [key, data] of [["small", small], ["large", large]] as const) {
    for (let n = 0; n < 3; n += 1) {
      const reader = clientFor(vss, { concurrency: 2 });
      const startedMs = performance.now();
      expect(Buffer.compare(Buffer.from(await reader.get("st", key)), Buffer.from(data))).toBe(0);
      expect(performance.now() - startedMs).toBeLessThan(vssTimings.replicaReadTimeoutMs * 3);
      reader.close();
    }
  }
  process.kill(stopped, "SIGCONT");
  stopped = undefined;
}, 120_000);
