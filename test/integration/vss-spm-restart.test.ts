// An SPM restart is invisible to clients: puts and gets during and right after it succeed (the
// client keeps asking while routers answer that the VSS is not ready), a put retried across the
// restart with its request id is the same version, not a second one; and a wrong --router is
// still said at once.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, clientFor, kill9, startTestVss } from "../support/vss.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { routerOps } from "../../src/protocol/router.ts";
import { asAdmin } from "../support/security.ts";

const { random, seed } = seededRandom("spm-restart");
let vss: Awaited<ReturnType<typeof startTestVss>>;
beforeAll(async () => {
  vss = await startTestVss({ label: "spm-restart", peers: 3, routers: 2 });
});
afterAll(async () => vss?.cleanup());

const sha = (bytes: Uint8Array) => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");

describe(`an SPM restart (seed ${seed})`, () => {
  test("puts and gets issued while the SPM is down and just after it is back all succeed, byte-exact", async () => {
    const client = clientFor(vss, { chunkSize: 64 * 1024 });
    const before = new Map<string, Uint8Array>();
    for (let n = 0; n < 5; n += 1) {
      const data = randomBytes(random, 100_000);
      await client.put("rs", `before-${n}`, data);
      before.set(`before-${n}`, data);
    }
    kill9(vss.spm);
    await vss.spm.exited;
    const during = new Map<string, Uint8Array>();
    const puts = Array.from({ length: 30 }, async (_, n) => {
      const data = randomBytes(random, n % 3 === 0 ? 150_000 : 3_000); // one-chunk and multi-chunk puts
      await client.put("rs", `during-${n}`, data);
      during.set(`during-${n}`, data);
    });
    const gets = [...before.keys()].map(async (key) => sha(await client.get("rs", key)) === sha(before.get(key)!));
    // Settled before the test ends whatever happens below, so no put's rejection lands in a later test.
    const settled = Promise.allSettled([...puts, ...gets]);
    try {
      await Bun.sleep(1_500);
      await vss.startSpm(); // every peer starts as suspect: puts meet insufficient_peers for a moment
      expect(await Promise.all(gets)).toEqual(gets.map(() => true));
      await Promise.all(puts);
      for (const [key, data] of during) expect(sha(await client.get("rs", key))).toBe(sha(data));
      expect(during.size).toBe(30);
    } finally {
      await settled;
      client.close();
    }
  }, 60_000);

  test("a one-chunk put retried with its request id across an SPM restart is the same version", async () => {
    const pool = new RpcPool({ role: "test", ...asAdmin });
    const router = new ServiceClient(routerOps, pool, parseAddress(vss.routers[0]!.address));
    const data = randomBytes(random, 2_000);
    const put = { bucket: "rs", key: "once", size: data.byteLength, checksum: sha(data), contentType: "", tags: {}, rf: 2, chunkSize: 4096, data, requestId: crypto.randomUUID() };
    const first = await router.call("ball.put", put);
    kill9(vss.spm);
    await vss.spm.exited;
    await vss.startSpm();
    // The reply of the first try was "lost": the client sends it again, as it would.
    const client = clientFor(vss);
    const again = await (async () => {
      for (let tries = 0; ; tries += 1) {
        try {
          return await router.call("ball.put", put);
        } catch (error) {
          if (tries > 50) throw error;
          await Bun.sleep(200); // the SPM is still getting its peers back
        }
      }
    })();
    expect(again).toEqual(first);
    const stat = await client.stat("rs", "once");
    expect(stat.version).toBe(first.version);
    expect(stat.objectId).toBe(first.objectId);
    client.close();
    pool.close();
  }, 60_000);

  test("a --router that refuses the connection fails at once, saying so", async () => {
    const startedMs = performance.now();
    const { code, stderr } = await cli(["put", "rs/nowhere", "-", "--router", "127.0.0.1:1"], { stdin: new Uint8Array(10) });
    expect(code).toBe(1);
    expect(stderr).toContain("refused the connection");
    expect(performance.now() - startedMs).toBeLessThan(5_000);
  }, 30_000);
});
