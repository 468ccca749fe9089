// The SPM when its catalog's disk fails: after a failed fsync it takes no more writes (puts fail
// with a message that says so, nothing is acknowledged that may not be on disk), it keeps
// serving reads, `status` says why, and it never dies; a restart on the same catalog brings it
// back. Roles in this process, so the WAL's fsync can be made to fail.
import { afterAll, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { startInProcessVss, type InProcessVss } from "../support/in-process.ts";
import { Client } from "../../src/client/client.ts";
import { MictlanxError } from "../../src/lib/errors.ts";
import { testCredentials } from "../support/security.ts";

const { random, seed } = seededRandom("catalog-faults");
let vss: InProcessVss | undefined;
afterAll(async () => vss?.stop());

test(`after a failed fsync the SPM refuses writes, serves reads, says why, and lives (seed ${seed})`, async () => {
  let failing = false;
  vss = await startInProcessVss("catalog-faults", 2, {
    catalogOptions: {
      walSync: async (handle) => {
        if (failing) throw new Error("EIO: i/o error, fdatasync");
        await handle.datasync();
      },
    },
  });
  const client = new Client({ ...testCredentials, routers: vss.router.address, cacheBytes: 0, retryWindowMs: 500 });
  const data = randomBytes(random, 300_000);
  await client.put("f", "before", data, { rf: 2, chunkSize: 64 * 1024 });

  failing = true;
  const error = await client.put("f", "during", randomBytes(random, 1000), { rf: 2 }).then(
    () => undefined,
    (caught: unknown) => caught as MictlanxError,
  );
  expect(error?.code).toBe("unavailable");
  expect(error?.message).toContain("restart the SPM");
  failing = false; // the disk is back, but nothing proves what the failed fsync lost: still no writes
  expect((await client.put("f", "after", randomBytes(random, 1000), { rf: 2 }).catch((caught: MictlanxError) => caught)) instanceof MictlanxError).toBe(true);
  expect(Buffer.compare(Buffer.from(await client.get("f", "before")), Buffer.from(data))).toBe(0);
  const status = vss.spm.status();
  expect(status.catalog.writable).toBe(false);
  expect(status.catalog.problem).toContain("fsync");
  await Bun.sleep(1_500); // heartbeats, the tick and maintenance keep running into the refusal
  expect(vss.spm.status().peers.filter((peer) => peer.state !== "down")).toHaveLength(2);

  // A restart on the same catalog (the disk healthy again) takes writes; what was acknowledged is there.
  await vss.restartSpm({ catalogOptions: {} });
  const again = new Client({ ...testCredentials, routers: vss.router.address, cacheBytes: 0 });
  await again.put("f", "after-restart", randomBytes(random, 1000), { rf: 2 });
  expect(Buffer.compare(Buffer.from(await again.get("f", "before")), Buffer.from(data))).toBe(0);
  expect(vss.spm.status().catalog.writable).toBe(true);
  client.close();
  again.close();
}, 60_000);
