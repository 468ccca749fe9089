// The etcd client (src/coordination/etcd.ts) against a real etcd: what it sends is what etcd's
// JSON gateway takes, what etcd answers parses, and failures name the endpoint.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EtcdClient, parseEtcdUrl, type WatchEvent } from "../../src/coordination/etcd.ts";
import { MictlanxError } from "../../src/lib/errors.ts";
import { coordinationLimits } from "../../src/lib/limits.ts";
import { etcdUnavailable, freePort, startTestEtcd, type TestEtcd } from "../support/etcd.ts";

if (etcdUnavailable !== undefined) console.warn(`[etcd-client.test.ts] SKIPPED on this machine: ${etcdUnavailable}`);

async function failureOf(promise: Promise<unknown>): Promise<MictlanxError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(MictlanxError);
    return error as MictlanxError;
  }
  throw new Error("expected the call to fail");
}

describe("etcd URLs", () => {
  test("endpoints, default port, IPv6, and the bounds", () => {
    expect(parseEtcdUrl("etcd://h1:2379,h2:2380").map((endpoint) => endpoint.label)).toEqual(["h1:2379", "h2:2380"]);
    expect(parseEtcdUrl("10.0.0.1").map((endpoint) => endpoint.label)).toEqual(["10.0.0.1:2379"]);
    expect(parseEtcdUrl("etcd://[fd00::1]:2379")[0]).toEqual({ host: "fd00::1", port: 2379, label: "[fd00::1]:2379" });
    const list = (count: number) => `etcd://${Array.from({ length: count }, (_, index) => `h${index}:2379`).join(",")}`;
    expect(parseEtcdUrl(list(coordinationLimits.etcdEndpointsMax))).toHaveLength(coordinationLimits.etcdEndpointsMax);
    expect(() => parseEtcdUrl(list(coordinationLimits.etcdEndpointsMax + 1))).toThrow(`at most ${coordinationLimits.etcdEndpointsMax}`);
    expect(() => parseEtcdUrl("etcd://")).toThrow("names no etcd endpoint");
    expect(() => parseEtcdUrl("https://h1:2379")).toThrow("is not an etcd URL");
    expect(() => parseEtcdUrl("etcd://h1:99999")).toThrow("is not an etcd endpoint");
  });
});

describe.skipIf(etcdUnavailable !== undefined)("etcd client against a real etcd", () => {
  let etcd: TestEtcd;
  let client: EtcdClient;
  beforeAll(async () => {
    etcd = await startTestEtcd("client");
    client = new EtcdClient(etcd.url);
  });
  afterAll(async () => {
    await etcd?.cleanup();
  });

  test("put, range and delete; a missing key ranges empty", async () => {
    const written = await client.put("/t/plain", "héllo");
    const read = await client.range("/t/plain");
    expect(read.kvs).toHaveLength(1);
    expect(read.kvs[0]).toMatchObject({ key: "/t/plain", value: "héllo", createRevision: written.revision, modRevision: written.revision, version: 1, leaseId: undefined });
    expect((await client.deleteKey("/t/plain")).deleted).toBe(1);
    expect((await client.range("/t/plain")).kvs).toEqual([]);
  });

  test("a create-if-absent transaction succeeds once, then answers who holds the key", async () => {
    const createIfAbsent = (value: string) =>
      client.txn({
        compare: [{ key: "/t/once", target: "create_revision", value: 0 }],
        success: [{ put: { key: "/t/once", value } }, { range: { key: "/t/once" } }],
        failure: [{ range: { key: "/t/once" } }],
      });
    const first = await createIfAbsent("a");
    expect(first.succeeded).toBe(true);
    const created = first.responses[1];
    expect(created !== undefined && "range" in created ? created.range.kvs[0]?.createRevision : undefined).toBe(first.revision);
    const second = await createIfAbsent("b");
    expect(second.succeeded).toBe(false);
    const holder = second.responses[0];
    expect(holder !== undefined && "range" in holder ? holder.range.kvs[0]?.value : undefined).toBe("a");
    const versionCheck = await client.txn({ compare: [{ key: "/t/once", target: "version", value: 1 }], success: [{ deleteRange: { key: "/t/once" } }], failure: [] });
    expect(versionCheck.succeeded).toBe(true);
    expect(versionCheck.responses[0]).toEqual({ deleteRange: { deleted: 1 } });
  });

  test("leases: grant, keepalive, revoke deletes the key, and a gone lease says so", async () => {
    const lease = await client.leaseGrant(coordinationLimits.leaseTtlMsMin);
    expect(lease.ttlMs).toBeGreaterThanOrEqual(coordinationLimits.leaseTtlMsMin);
    await client.put("/t/leased", "x", { leaseId: lease.id });
    expect((await client.range("/t/leased")).kvs[0]?.leaseId).toBe(lease.id);
    expect((await client.leaseKeepAlive(lease.id)).ttlMs).toBe(lease.ttlMs);
    await client.leaseRevoke(lease.id);
    expect((await client.range("/t/leased")).kvs).toEqual([]);
    expect((await client.leaseKeepAlive(lease.id)).ttlMs).toBe(0);
    const again = await failureOf(client.leaseRevoke(lease.id));
    expect(again.code).toBe("not_found");
    expect(again.message).toContain(`etcd ${etcd.endpoint} answered /v3/lease/revoke with "etcdserver: requested lease not found"`);
    const putOnGone = await failureOf(client.put("/t/leased", "y", { leaseId: lease.id }));
    expect(putOnGone.code).toBe("not_found");
  });

  test("a watch sees puts and deletes from the revision it starts at, and ends when aborted", async () => {
    const start = await client.put("/t/watched", "1");
    await client.put("/t/watched", "2");
    await client.deleteKey("/t/watched");
    const controller = new AbortController();
    const seen: WatchEvent[] = [];
    for await (const events of client.watch("/t/watched", { startRevision: start.revision, signal: controller.signal })) {
      seen.push(...events);
      if (seen.length >= 3) controller.abort();
    }
    expect(seen.map((event) => (event.type === "put" ? `put ${event.kv.value}` : `delete ${event.key}`))).toEqual(["put 1", "put 2", "delete /t/watched"]);
  });

  test("replies are bounded: a value whose reply fits passes, one whose reply passes etcdReplyBytesMax is refused", async () => {
    const bound = coordinationLimits.etcdReplyBytesMax;
    await client.put("/t/big", "x".repeat(Math.floor(((bound - 1024) * 3) / 4)));
    expect((await client.range("/t/big")).kvs).toHaveLength(1);
    await client.put("/t/big", "x".repeat(Math.ceil((bound * 3) / 4))); // its base64 alone is the bound
    const refused = await failureOf(client.range("/t/big"));
    expect(refused.code).toBe("bad_request");
    expect(refused.message).toContain(`over the bound of ${bound}`);
    await client.deleteKey("/t/big");
  });

  test("an endpoint that refuses is named, and the next endpoint answers instead", async () => {
    const deadPort = await freePort();
    const dead = await failureOf(new EtcdClient(`etcd://127.0.0.1:${deadPort}`).range("/t/any"));
    expect(dead.code).toBe("unavailable");
    expect(dead.message).toContain(`etcd 127.0.0.1:${deadPort} refused the connection`);
    expect(dead.message).toContain(`failed ${coordinationLimits.etcdAttemptsMax} times`);
    const both = new EtcdClient(`etcd://127.0.0.1:${deadPort},${etcd.endpoint}`);
    await client.put("/t/failover", "ok");
    expect((await both.range("/t/failover")).kvs[0]?.value).toBe("ok");
    expect((await both.range("/t/failover")).kvs[0]?.value).toBe("ok"); // now starting at the live one
  });

  test("an endpoint that never answers times out within the call's budget, and one that is not etcd is told apart", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const notEtcd = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("<html>hello</html>") });
    try {
      const startedMs = performance.now();
      const slow = await failureOf(new EtcdClient(`etcd://127.0.0.1:${silent.port}`).range("/t/any", { timeoutMs: 300 }));
      expect(slow.code).toBe("timeout");
      expect(slow.message).toContain(`etcd 127.0.0.1:${silent.port} did not answer within`);
      expect(performance.now() - startedMs).toBeLessThan(300 + 1_000);
      const wrong = await failureOf(new EtcdClient(`etcd://127.0.0.1:${notEtcd.port}`).range("/t/any"));
      expect(wrong.code).toBe("bad_request");
      expect(wrong.message).toContain(`etcd 127.0.0.1:${notEtcd.port} sent a reply to /v3/kv/range that is not what etcd`);
    } finally {
      silent.stop(true);
      await notEtcd.stop(true);
    }
  });
});
