// Names recoverable from the data (docs/recovery.md): seeded puts, overwrites, deletes and a
// bulk delete through the real binary; kill -9 the SPM, delete its catalog dir entirely, start
// it with --rebuild-catalog --from-peers: every acknowledged ball reads back byte-exact under its
// name with its metadata, no deleted or overwritten version comes back, and the VSS goes on
// taking writes that a second rebuild keeps too (generations keep growing past a rebuilt catalog).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, clientFor, eventually, fastSpmArgs, kill9, spmStatus, startTestVss } from "../support/vss.ts";
import type { Client } from "../../src/client/client.ts";

const { random, seed } = seededRandom("vss-rebuild");
let vss: Awaited<ReturnType<typeof startTestVss>>;
beforeAll(async () => {
  vss = await startTestVss({ label: "rebuild", peers: 3, routers: 1 });
});
afterAll(async () => vss?.cleanup());

const bucket = "rb";
const sha = (bytes: Uint8Array) => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");

/** What was acknowledged for a key: its last bytes and metadata, or deleted. */
type Entry = { data: Uint8Array; objectId: string; tags: Record<string, string>; contentType: string; rf: number } | "deleted";

function sizeOf(pick: number): number {
  if (pick < 0.1) return 0; // no chunk at all
  if (pick < 0.6) return 1 + Math.floor(random() * 4_000); // one chunk
  return 64 * 1024 + Math.floor(random() * 200_000); // several 64 KiB chunks
}

/** Seeded work; every op awaited, so what the ledger says is exactly what was acknowledged. */
async function work(client: Client, ledger: Map<string, Entry>, ops: number, tag: string): Promise<void> {
  for (let n = 0; n < ops; n += 1) {
    const key = `${random() < 0.3 ? "dir/" : ""}key-${Math.floor(random() * 24)}`;
    const current = ledger.get(key);
    if (current !== undefined && current !== "deleted" && random() < 0.25) {
      await client.delete(bucket, key);
      ledger.set(key, "deleted");
      continue;
    }
    const data = randomBytes(random, sizeOf(random()));
    const rf = 1 + Math.floor(random() * 3);
    const tags = { round: tag, n: String(n) };
    const contentType = random() < 0.5 ? "application/octet-stream" : "text/plain";
    const put = await client.put(bucket, key, data, { rf, tags, contentType });
    ledger.set(key, { data, objectId: put.objectId, tags, contentType, rf });
  }
}

async function checkAll(client: Client, ledger: Map<string, Entry>): Promise<void> {
  for (const [key, entry] of ledger) {
    if (entry === "deleted") {
      await expect(client.stat(bucket, key), `${key} was deleted (seed ${seed})`).rejects.toMatchObject({ code: "not_found" });
      continue;
    }
    const stat = await client.stat(bucket, key);
    expect({ key, objectId: stat.objectId, size: stat.size, contentType: stat.contentType, rf: stat.rf }).toEqual({ key, objectId: entry.objectId, size: entry.data.byteLength, contentType: entry.contentType, rf: entry.rf });
    expect(stat.tags).toMatchObject(entry.tags);
    expect(sha(await client.get(bucket, key)), `${bucket}/${key} (seed ${seed})`).toBe(sha(entry.data));
  }
  const listed: string[] = [];
  for await (const page of client.list(bucket)) listed.push(...page.map((ball) => ball.key));
  const live = [...ledger].filter(([, entry]) => entry !== "deleted").map(([key]) => key);
  expect(listed.sort()).toEqual(live.sort());
}

/** kill -9 the SPM, delete its whole catalog dir, start it rebuilding from these peers (default: every one). */
async function loseAndRebuildCatalog(peerIndexes = [0, 1, 2]): Promise<string> {
  kill9(vss.spm);
  await vss.spm.exited;
  rmSync(join(vss.dir, "spm"), { recursive: true, force: true });
  const peers = peerIndexes.map((i) => vss.peers[i]!.address).join(",");
  vss.options.spmArgs = [...fastSpmArgs, "--rebuild-catalog", "--from-peers", "--peers", peers];
  const logStart = readLog().length;
  await vss.startSpm();
  vss.options.spmArgs = fastSpmArgs; // a later restart is an ordinary one
  await eventually("every peer is up at the rebuilt SPM", 20_000, async () => (await spmStatus(vss)).peers.filter((peer) => peer.state === "up").length === peerIndexes.length);
  return readLog().slice(logStart);
}

function readLog(): string {
  return readFileSync(vss.logFile("spm")!, "utf8");
}

/** What was acknowledged, across the tests below (they run in order on one VSS). */
const ledger = new Map<string, Entry>();

describe(`a catalog rebuilt from the peers (seed ${seed})`, () => {
  test("every acknowledged ball reads back byte-exact under its name; deleted and overwritten versions stay gone", async () => {
    const client = clientFor(vss, { chunkSize: 64 * 1024 });
    try {
      await work(client, ledger, 90, "one");
      const bulk = await client.deletePrefix(bucket, "dir/");
      for (const key of ledger.keys()) if (key.startsWith("dir/")) ledger.set(key, "deleted");
      expect(bulk.deleted).toBeGreaterThanOrEqual(0);
      await work(client, ledger, 30, "two"); // some dir/ keys come back after the bulk delete
      console.log(`[vss-rebuild] ${[...ledger.values()].filter((e) => e !== "deleted").length} live keys, ${[...ledger.values()].filter((e) => e === "deleted").length} deleted`);

      const log = await loseAndRebuildCatalog();
      console.log(log.split("\n").filter((line) => /rebuil|lost|peer .* manifests/.test(line)).join("\n"));
      expect(log).toContain("rebuilding the catalog");
      expect(log).toMatch(/rebuilt: \d+ balls/);
      await checkAll(client, ledger);

      // The rebuilt VSS takes writes, deletes included; a second loss keeps them too.
      await work(client, ledger, 30, "three");
      await loseAndRebuildCatalog();
      await checkAll(client, ledger);
    } finally {
      client.close();
    }
  }, 240_000);

  test("a catalog that is not empty is not rebuilt over without --force; the flags are checked", async () => {
    const spmDir = join(vss.dir, "spm");
    const peers = vss.peers.map((peer) => peer.address).join(",");
    kill9(vss.spm);
    await vss.spm.exited;
    try {
      const refused = await cli(["spm", "--port", "0", "--insecure", "--data", spmDir, "--rebuild-catalog", "--from-peers", "--peers", peers]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain("not rebuilding: the catalog");
      const noSource = await cli(["spm", "--port", "0", "--insecure", "--data", spmDir, "--rebuild-catalog"]);
      expect(noSource.code).toBe(2);
      expect(noSource.stderr).toContain("--from-peers");
    } finally {
      await vss.startSpm();
    }
  }, 60_000);

  test("healing copies chunk 0's manifest with it: balls whose first holders are all lost still come back", async () => {
    const client = clientFor(vss, { chunkSize: 64 * 1024 });
    const [first, second, last] = vss.peers.map((peer) => peer.id) as [string, string, string];
    try {
      // Only peer `last` will be left: a ball comes back if some copy of each chunk reaches it
      // (rf ≥ 2: healed there after the first loss) or was there (rf 1).
      const survives = async (key: string, entry: Exclude<Entry, "deleted">) => entry.rf >= 2 || (await client.stat(bucket, key)).chunks.every((chunk) => chunk.peers.includes(last));
      for (const [key, entry] of ledger) if (entry !== "deleted" && !(await survives(key, entry))) ledger.set(key, "deleted");
      kill9(vss.peers[0]!);
      await vss.peers[0]!.exited;
      await eventually(`healing copies every chunk of rf ≥ 2 to both ${second} and ${last}`, 90_000, async () => {
        for (const [key, entry] of ledger) {
          if (entry === "deleted" || entry.rf < 2) continue;
          const stat = await client.stat(bucket, key);
          const short = stat.chunks.find((chunk) => !chunk.peers.includes(second) || !chunk.peers.includes(last));
          if (short) return `${key} chunk ${short.index} is on ${short.peers.join(", ")}`;
        }
        return true;
      });
      kill9(vss.peers[1]!);
      await vss.peers[1]!.exited;
      const log = await loseAndRebuildCatalog([2]);
      console.log(log.split("\n").filter((line) => /rebuilt:|lost:/.test(line)).join("\n"));
      await checkAll(client, ledger);
      expect(first).not.toBe(last);
    } finally {
      client.close();
    }
  }, 180_000);
});
