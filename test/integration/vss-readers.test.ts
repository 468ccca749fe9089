// Readers streaming a ball while it is overwritten and deleted in a loop: every read that starts
// finishes, with exactly one version's bytes (the client checks the whole payload's sha256 and
// each chunk's xxh3, so a mix cannot pass). A read slower than the readers' grace is told the
// version was replaced, not that the ball does not exist.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { clientFor, fastSpmArgs, startTestVss } from "../support/vss.ts";
import { MictlanxError } from "../../src/lib/errors.ts";

const { random, seed } = seededRandom("readers");
let vss: Awaited<ReturnType<typeof startTestVss>>;

beforeAll(async () => {
  // fastSpmArgs ends with a 2 s reader grace; the loop test needs reads of a few seconds, so 30 s.
  vss = await startTestVss({ label: "readers", peers: 3, routers: 2, spmArgs: [...fastSpmArgs, "--reader-grace", "30s"] });
});
afterAll(async () => vss?.cleanup());

const sha = (bytes: Uint8Array) => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");

/** Read the whole ball as a stream, pausing between chunks so the read spans several overwrites; undefined if the key was absent. */
async function slowRead(client: ReturnType<typeof clientFor>, key: string, pauseMs: number): Promise<string | undefined> {
  let opened: Awaited<ReturnType<typeof client.getStream>>;
  try {
    opened = await client.getStream("rd", key);
  } catch (error) {
    if (error instanceof MictlanxError && error.code === "not_found") return undefined; // deleted at that instant: never started
    throw error;
  }
  const { stream } = opened;
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const piece of stream) {
    hasher.update(piece);
    await Bun.sleep(pauseMs);
  }
  return hasher.digest("hex");
}

describe(`reads under overwrites and deletes (seed ${seed})`, () => {
  test("every read that starts finishes with one whole version while writers overwrite and delete in a loop", async () => {
    const writer = clientFor(vss, { chunkSize: 64 * 1024 });
    const versions = new Set<string>();
    const put = async () => {
      const data = randomBytes(random, 1024 * 1024 + Math.floor(random() * 65_536)); // 17 chunks
      versions.add(sha(data));
      await writer.put("rd", "hot", data);
    };
    await put();
    let stop = false;
    const writes = (async () => {
      for (let n = 0; n < 400 && !stop; n += 1) {
        if (n % 7 === 6) await writer.delete("rd", "hot").catch(() => {});
        await put();
      }
    })();
    const reads: string[] = [];
    const failures: string[] = [];
    const readers = Array.from({ length: 3 }, async (_, r) => {
      const reader = clientFor(vss, { chunkSize: 64 * 1024, concurrency: 2 });
      for (let n = 0, tries = 0; n < 4 && tries < 40; tries += 1) {
        try {
          const digest = await slowRead(reader, "hot", 60);
          if (digest === undefined) await Bun.sleep(20); // the key was between a delete and a put
          else {
            reads.push(digest);
            n += 1;
          }
        } catch (error) {
          n += 1;
          failures.push(`reader ${r}: ${(error as Error).message}`);
        }
      }
      reader.close();
    });
    await Promise.all(readers);
    stop = true;
    await writes;
    writer.close();
    expect(failures).toEqual([]);
    expect(reads.length).toBeGreaterThanOrEqual(9);
    for (const digest of reads) expect(versions.has(digest)).toBe(true);
  }, 120_000);

  test("a read slower than the readers' grace is told its version was replaced and to read again", async () => {
    const short = await startTestVss({ label: "readers-grace", peers: 2, routers: 1 }); // fastSpmArgs: 2 s grace
    try {
      const writer = clientFor(short, { chunkSize: 64 * 1024 });
      await writer.put("rd", "slow", randomBytes(random, 512 * 1024), { rf: 1 });
      const reader = clientFor(short, { chunkSize: 64 * 1024, concurrency: 1 });
      const { stream } = await reader.getStream("rd", "slow");
      await stream.next();
      await writer.put("rd", "slow", randomBytes(random, 512 * 1024), { rf: 1 });
      await Bun.sleep(6_000); // grace 2 s, then the collector's next pass
      let error: MictlanxError | undefined;
      try {
        for await (const _ of stream) await Bun.sleep(1);
      } catch (caught) {
        error = caught as MictlanxError;
      }
      expect(error?.code).toBe("conflict");
      expect(error?.message).toContain("read the ball again");
      reader.close();
      writer.close();
    } finally {
      await short.cleanup();
    }
  }, 60_000);
});
