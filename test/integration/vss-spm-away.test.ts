// Reads survive the control plane (issue 14): with the SPM killed, a router keeps serving gets
// of the balls whose metadata it served last — byte-exact, never a version older than one it
// served — while writes fail fast with `unavailable` naming the SPM, and succeed again by
// themselves once an SPM is back on its address (no router or client restarted).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes, seededRandom } from "../support/random.ts";
import { clientFor, clientPoolOptions, eventually, kill9, startTestVss } from "../support/vss.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { routerOps } from "../../src/protocol/router.ts";
import { parsePrometheus, total } from "../support/prometheus.ts";
import { toMictlanxError } from "../../src/lib/errors.ts";
import type { Client } from "../../src/client/client.ts";

const { random, seed } = seededRandom("vss-spm-away");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let client: Client;
const stored = new Map<string, Uint8Array>();

beforeAll(async () => {
  vss = await startTestVss({ label: "vss-spm-away", peers: 3, routers: 1, routerArgs: ["--serve-held-reads"] });
  // A short retry window: a write the VSS cannot take fails within seconds, not 15.
  client = clientFor(vss, { chunkSize: 64 * 1024, retryWindowMs: 1_000 });
});
afterAll(async () => {
  client?.close();
  await vss?.cleanup();
});

async function offlineLookups(): Promise<number> {
  const text = await (await fetch(vss.routers[0]!.metricsUrl!)).text();
  return total(parsePrometheus(text), "mictlanx_router_offline_lookups_total", {});
}

describe(`the SPM killed (seed ${seed})`, () => {
  test("gets of balls served before go on byte-exact, the newest version served; a deleted one is not served; puts fail fast, then work again by themselves", async () => {
    for (let i = 0; i < 12; i += 1) {
      const data = randomBytes(random, 1 + Math.floor(random() * 300 * 1024)); // up to 5 chunks
      await client.put("away", `ball-${i}`, data);
      stored.set(`ball-${i}`, data);
    }
    // ball-0 is overwritten (and its new version read), ball-1 deleted, ball-11 never read.
    const second = randomBytes(random, 70 * 1024);
    expect(Buffer.from(await client.get("away", "ball-0"))).toEqual(Buffer.from(stored.get("ball-0")!));
    await client.put("away", "ball-0", second);
    stored.set("ball-0", second);
    for (const [key, data] of stored) if (key !== "ball-11") expect(Buffer.from(await client.get("away", key))).toEqual(Buffer.from(data));
    await client.delete("away", "ball-1");
    stored.delete("ball-1");
    // A page of a version's chunk locations, asked for directly: held too.
    const pool = new RpcPool({ role: "router", ...clientPoolOptions(vss) });
    const router = new ServiceClient(routerOps, pool, parseAddress(vss.routers[0]!.address));
    const stat = await client.stat("away", "ball-0");
    const page = await router.call("ball.chunks", { bucket: "away", objectId: stat.objectId, fromIndex: 1, limit: 1 });
    const lookupsBefore = await offlineLookups();

    kill9(vss.spm);
    await vss.spm.exited;

    const getsMs: number[] = [];
    for (const [key, data] of stored) {
      if (key === "ball-11") continue;
      const startedMs = performance.now();
      expect(Buffer.from(await client.get("away", key))).toEqual(Buffer.from(data));
      getsMs.push(performance.now() - startedMs);
    }
    const longestGetMs = Math.max(...getsMs);
    console.log(`[vss-spm-away] gets with the SPM away, ms: ${getsMs.map((ms) => ms.toFixed(0)).join(" ")}`);
    expect((await client.stat("away", "ball-0")).version).toBe(2);
    expect(await router.call("ball.chunks", { bucket: "away", objectId: stat.objectId, fromIndex: 1, limit: 1 })).toEqual(page);
    expect(await offlineLookups()).toBeGreaterThan(lookupsBefore);
    // Never read through this router (its metadata is not held), and deleted through it: no answer, never old bytes.
    for (const key of ["ball-11", "ball-1"]) {
      const error = toMictlanxError(await client.get("away", key).then(() => undefined, (thrown: unknown) => thrown));
      expect(error.code).toBe("unavailable");
      expect(error.message).toContain(vss.spm.address);
    }

    const putStartedMs = performance.now();
    const refused = toMictlanxError(await client.put("away", "while-away", randomBytes(random, 1000)).then(() => undefined, (thrown: unknown) => thrown));
    const putFailedMs = performance.now() - putStartedMs;
    expect(refused.code).toBe("unavailable");
    expect(refused.message).toContain(vss.spm.address);
    expect(putFailedMs).toBeLessThan(30_000); // generous on a loaded box; printed below

    await vss.startSpm();
    const back = randomBytes(random, 5000);
    const backStartedMs = performance.now();
    await eventually("puts work again once the SPM is back", 30_000, async () => {
      try {
        await client.put("away", "after", back);
        return true;
      } catch (error) {
        return toMictlanxError(error).message;
      }
    });
    stored.set("after", back);
    for (const [key, data] of stored) expect(Buffer.from(await client.get("away", key))).toEqual(Buffer.from(data));
    console.log(`[vss-spm-away] longest get with the SPM away ${longestGetMs.toFixed(0)} ms; a put failed after ${putFailedMs.toFixed(0)} ms (client retry window 1000 ms); puts back ${(performance.now() - backStartedMs).toFixed(0)} ms after the SPM restarted`);
    pool.close();
  }, 120_000);
});
