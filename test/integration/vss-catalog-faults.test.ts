// The SPM when its catalog's disk fails: after a failed fsync it takes no more writes (puts fail
// with a message that says so, nothing is acknowledged that may not be on disk), it keeps
// serving reads, `status` says why, and it never dies; a restart on the same catalog brings it
// back. Roles in this process, so the WAL's fsync can be made to fail.
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { eventually, tempDir } from "../support/vss.ts";
import { startSpm, type RunningSpm } from "../../src/roles/spm/spm.ts";
import { startPeer, type RunningPeer } from "../../src/roles/peer/peer.ts";
import { startRouter, type RunningRouter } from "../../src/roles/router/router.ts";
import { Client } from "../../src/client/client.ts";
import { MictlanxError } from "../../src/lib/errors.ts";

const { random, seed } = seededRandom("catalog-faults");
const dir = tempDir("catalog-faults");
let spm: RunningSpm | undefined;
const peers: RunningPeer[] = [];
let router: RunningRouter | undefined;
afterAll(async () => {
  await router?.stop();
  for (const peer of peers) await peer.stop().catch(() => {});
  await spm?.stop().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

test(`after a failed fsync the SPM refuses writes, serves reads, says why, and lives (seed ${seed})`, async () => {
  let failing = false;
  const spmOptions = { host: "127.0.0.1", port: 0, dir: join(dir, "spm"), suspectAfterMs: 1_000, downAfterMs: 3_000 };
  spm = await startSpm({
    ...spmOptions,
    catalogOptions: {
      walSync: async (handle) => {
        if (failing) throw new Error("EIO: i/o error, fdatasync");
        await handle.datasync();
      },
    },
  });
  for (let i = 0; i < 2; i += 1) peers.push(await startPeer({ host: "127.0.0.1", port: 0, dir: join(dir, `peer-${i}`), id: `peer-${i}`, spm: spm.address }));
  await eventually("two peers up", 10_000, () => spm!.status().peers.filter((peer) => peer.state === "up").length === 2);
  router = await startRouter({ host: "127.0.0.1", port: 0, spm: spm.address });
  const client = new Client({ routers: router.address, cacheBytes: 0, retryWindowMs: 500 });
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
  const status = spm.status();
  expect(status.catalog.writable).toBe(false);
  expect(status.catalog.problem).toContain("fsync");
  await Bun.sleep(1_500); // heartbeats, the tick and maintenance keep running into the refusal
  expect(spm.status().peers.filter((peer) => peer.state !== "down")).toHaveLength(2);

  // A restart on the same catalog takes writes again; what was acknowledged is there.
  await router.stop();
  await spm.stop();
  spm = await startSpm({ ...spmOptions, port: Number(spm.address.split(":")[1]) });
  router = await startRouter({ host: "127.0.0.1", port: 0, spm: spm.address });
  const again = new Client({ routers: router.address, cacheBytes: 0 });
  await eventually("the peers are back", 15_000, () => spm!.status().peers.filter((peer) => peer.state === "up").length === 2);
  await again.put("f", "after-restart", randomBytes(random, 1000), { rf: 2 });
  expect(Buffer.compare(Buffer.from(await again.get("f", "before")), Buffer.from(data))).toBe(0);
  expect(spm.status().catalog.writable).toBe(true);
  client.close();
  again.close();
}, 60_000);
