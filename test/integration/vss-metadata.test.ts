// Metadata that outgrows one frame, through the real binary: a bucket of balls with the largest
// tag sets lists, groups and deletes; a ball of more chunks than one page of records puts
// (records staged ahead of the commit), stats and gets back byte-exact.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, clientFor, startTestVss } from "../support/vss.ts";
import { limits } from "../../src/lib/limits.ts";
import type { Client } from "../../src/client/client.ts";

const { random, seed } = seededRandom("metadata");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let client: Client;
beforeAll(async () => {
  vss = await startTestVss({ label: "metadata", peers: 3, routers: 2 });
  client = clientFor(vss, { chunkSize: 4096, concurrency: 16 });
});
afterAll(async () => {
  client?.close();
  await vss?.cleanup();
});

const sha = (bytes: Uint8Array) => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");

/** 60 tags with ~1 KiB names and values: ~120 KiB of metadata per ball. */
function heavyTags(n: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`t${i}-${String(n).padStart(3, "0")}-${"n".repeat(900)}`, "v".repeat(limits.tagBytesMax)]));
}

describe(`metadata bigger than a frame (seed ${seed})`, () => {
  test("a bucket of 90 balls with the largest tag sets lists (ls --json), lists by group, and deletes by group", async () => {
    for (let n = 0; n < 90; n += 1) await client.put("tags", `k${String(n).padStart(3, "0")}`, randomBytes(random, 10), { tags: heavyTags(n), ballId: "heavy" });
    const listed = await cli(["ls", "tags", "--json", "--router", vss.routers[0]!.address]);
    expect(listed.code).toBe(0);
    const keys = (JSON.parse(listed.stdout) as Array<{ key: string }>).map((ball) => ball.key);
    expect(keys).toHaveLength(90);
    expect((await client.listGroup("tags", "heavy")).length).toBe(90);
    const removed = await cli(["del", "tags", "--ball-id", "heavy", "--router", vss.routers[1]!.address]);
    expect(removed.code).toBe(0);
    expect((await client.listGroup("tags", "heavy").catch(() => []))).toEqual([]);
  }, 120_000);

  test(`a ball of more than ${limits.chunkRecordsPageMax} chunks puts, stats and gets back byte-exact`, async () => {
    const chunks = limits.chunkRecordsPageMax + 300;
    const data = randomBytes(random, chunks * 4096 - 100);
    const put = await client.put("big", "many-chunks.bin", data);
    expect(put.numChunks).toBe(chunks);
    const stat = await client.stat("big", "many-chunks.bin");
    expect(stat.chunks.map((chunk) => chunk.index)).toEqual(Array.from({ length: chunks }, (_, i) => i));
    expect(stat.chunksNext).toBeUndefined();
    expect(sha(await client.get("big", "many-chunks.bin"))).toBe(sha(data));
    const viaCli = await cli(["get", "big/many-chunks.bin", "-o", "-", "--router", vss.routers[1]!.address]);
    expect(viaCli.code).toBe(0);
    const statCli = await cli(["stat", "big/many-chunks.bin", "--json", "--router", vss.routers[0]!.address]);
    expect(statCli.code).toBe(0);
    expect((JSON.parse(statCli.stdout) as { chunks: unknown[] }).chunks).toHaveLength(chunks);
  }, 180_000);
});
