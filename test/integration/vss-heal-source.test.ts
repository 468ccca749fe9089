// A heal that copies from a corrupt source: the copy is refused by its checksum, and the SPM then
// repairs the source from a good replica too, instead of leaving it to the next read. The roles
// run in this process so the SPM's randomness can be fixed: it always picks the first source.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { eventually } from "../support/vss.ts";
import { startInProcessVss, type InProcessVss } from "../support/in-process.ts";
import { flipByteOnDisk } from "../support/corrupt.ts";
import { Client } from "../../src/client/client.ts";
import { testCredentials } from "../support/security.ts";

const { random, seed } = seededRandom("heal-source");
let vss: InProcessVss | undefined;
afterAll(async () => vss?.stop());

test(`a heal whose source turns out corrupt repairs the source too (seed ${seed})`, async () => {
  vss = await startInProcessVss("heal-source", 4, { downAfterMs: 2_000, random: () => 0 });
  const { spm, peers, router, dir } = vss;
  const client = new Client({ ...testCredentials, routers: router.address, cacheBytes: 0 });
  const data = randomBytes(random, 100_000);
  await client.put("h", "ball", data, { rf: 3 });
  const stat = await client.stat("h", "ball");
  const holders = [...stat.chunks[0]!.peers].sort(); // the order the SPM takes sources in
  expect(holders).toHaveLength(3);
  const [sourceId, goodId, lostId] = holders as [string, string, string];
  const byId = (id: string) => peers.find((peer) => peer.id === id)!;
  expect(flipByteOnDisk(join(dir, sourceId), data.subarray(40_000, 40_064))).toBe(true);

  // Lose a holder: healing copies from the first source, which is the corrupt one.
  await byId(lostId).stop();
  await eventually("the corrupt source is repaired and rf is back", 30_000, () => {
    const status = spm.status();
    return (status.healing.repairedCorrupt >= 1 && status.underReplicated === 0) || `repaired ${status.healing.repairedCorrupt}, under ${status.underReplicated}, ${status.healing.lastError ?? ""}`;
  });
  expect(spm.status().events.some((event) => event.kind === "corrupt_repaired" && event.message.includes(sourceId))).toBe(true);
  // The source serves good bytes again, and so does every replica the catalog names.
  const again = byId(sourceId).store;
  const stored = await again.get({ bucket: "h", ball: stat.objectId, index: 0 });
  expect(Buffer.compare(Buffer.from(stored), Buffer.from(data))).toBe(0);
  expect(Buffer.compare(Buffer.from(await client.get("h", "ball")), Buffer.from(data))).toBe(0);
  expect(byId(goodId).id).toBe(goodId);
  client.close();
}, 60_000);
