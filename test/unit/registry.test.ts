// The SPM's registry in-process, against a real catalog in a temp dir and a stepped clock:
// twins, replaced disks, another VSS's peers, clock steps, and durable-before-memory.
import { afterEach, describe, expect, test } from "bun:test";
import { Registry, type PeerReportIn, type RegistryEvent } from "../../src/roles/spm/registry.ts";
import { SteppedClock } from "../../src/lib/clock.ts";
import { FullError } from "../../src/lib/errors.ts";
import { ballOf, tempCatalog } from "./fixtures/catalog-records.ts";
import { catalogCalls, type Catalog, type CatalogCalls, type GroupWrite } from "../../src/catalog/index.ts";
import { rejection } from "../support/errors.ts";

const timings = { suspectAfterMs: 3_000, downAfterMs: 10_000 };

let cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function setup(options: { persist?: <T>(write: GroupWrite<T>, calls: CatalogCalls) => Promise<T> } = {}) {
  const temp = tempCatalog("registry");
  cleanups.push(() => {
    expect(temp.catalog.audit()).toEqual([]);
    temp.done();
  });
  const clock = new SteppedClock();
  const events: RegistryEvent[] = [];
  const arrivals: string[] = [];
  const calls = catalogCalls(temp.catalog);
  const registry = new Registry({
    catalog: temp.catalog,
    known: temp.catalog.listPeers(),
    timings,
    clock,
    persist: (write) => (options.persist ? options.persist(write, calls) : write(calls)),
    emit: (event) => events.push(event),
    onArrival: (id, why) => arrivals.push(`${id}:${why}`),
  });
  return { catalog: temp.catalog, calls, clock, events, arrivals, registry };
}

function report(id: string, overrides: Partial<PeerReportIn> = {}): PeerReportIn {
  return {
    id,
    address: `127.0.0.1:${7210 + Number(id.replace(/\D/g, "") || 0)}`,
    instanceId: `instance-${id}`,
    capacityBytes: 1 << 30,
    usedBytes: 0,
    freeBytes: 1 << 30,
    liveBytes: 0,
    chunks: 0,
    puts: 0,
    gets: 0,
    ...overrides,
  };
}


/** Three peers up, and a ball of two chunks on p1+p2 and p1+p3. */
async function withBall(s: ReturnType<typeof setup>, catalog: Catalog) {
  for (const id of ["p1", "p2", "p3"]) await s.registry.heartbeat(report(id));
  const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p1", "p3"]] });
  catalog.commitBall(ball, chunks, {});
}

describe("twins and replaced disks", () => {
  test("a second process with a known id and another data dir, while the first heartbeats, is refused and nothing moves", async () => {
    const s = setup();
    await s.registry.heartbeat(report("p1"));
    s.clock.advance(1_000);
    const twin = report("p1", { address: "127.0.0.1:9999", instanceId: "instance-copy" });
    const error = await rejection(s.registry.heartbeat(twin));
    expect(error.code).toBe("conflict");
    expect(error.message).toContain("127.0.0.1:7211"); // names the other's address
    expect(error.message).toContain("another --id");
    expect(s.registry.get("p1")?.address).toBe("127.0.0.1:7211");
    expect(s.catalog.getPeer("p1")?.address).toBe("127.0.0.1:7211");
    expect(s.catalog.getPeer("p1")?.instanceId).toBe("instance-p1");
    // The genuine one goes on as before; the refusal is in the events once, not every second.
    await s.registry.heartbeat(report("p1"));
    await rejection(s.registry.heartbeat(twin));
    expect(s.events.filter((event) => event.kind === "peer_refused")).toHaveLength(1);
  });

  test("a new data dir after the old one went silent is a replaced disk: its replicas are forgotten, healing has work", async () => {
    const s = setup();
    await withBall(s, s.catalog);
    expect(s.catalog.stats().underReplicated).toBe(0);
    s.clock.advance(timings.suspectAfterMs); // p1 silent long enough
    for (const id of ["p2", "p3"]) await s.registry.heartbeat(report(id));
    await s.registry.heartbeat(report("p1", { instanceId: "instance-new-disk" }));
    expect(s.catalog.getPeer("p1")?.instanceId).toBe("instance-new-disk");
    const found = s.catalog.getBall("bucket", "k")!;
    expect(found.chunks.map((chunk) => chunk.peers)).toEqual([["p2"], ["p3"]]);
    expect(s.catalog.stats().underReplicated).toBe(2);
    expect(s.events.some((event) => event.kind === "peer_replaced" && event.message.includes("2 replicas"))).toBe(true);
    expect(s.arrivals).toContain("p1:replaced");
  });

  test("a replaced disk that held a chunk's only replica keeps the record, and says the chunk is lost", async () => {
    const s = setup();
    await s.registry.heartbeat(report("p1"));
    const { ball, chunks } = ballOf({ key: "only", objectId: "o9", peers: [["p1"]], rf: 1 });
    s.catalog.commitBall(ball, chunks, {});
    s.clock.advance(timings.downAfterMs);
    await s.registry.heartbeat(report("p1", { instanceId: "instance-new-disk" }));
    expect(s.catalog.getBall("bucket", "only")?.chunks[0]?.peers).toEqual(["p1"]);
    expect(s.events.find((event) => event.kind === "peer_replaced")?.message).toContain("1 chunks had no other replica and are lost");
  });

  test("after an SPM restart a new instance waits out the down grace: the old one may only be slow to report back", async () => {
    const s = setup();
    await s.registry.heartbeat(report("p1"));
    const restarted = new Registry({ catalog: s.catalog, known: s.catalog.listPeers(), timings, clock: s.clock, persist: (write) => write(s.calls), emit: () => {} });
    expect((await rejection(restarted.heartbeat(report("p1", { instanceId: "instance-other" })))).code).toBe("conflict");
    s.clock.advance(timings.suspectAfterMs);
    expect((await rejection(restarted.heartbeat(report("p1", { instanceId: "instance-other" })))).code).toBe("conflict");
    s.clock.advance(timings.downAfterMs - timings.suspectAfterMs);
    await restarted.heartbeat(report("p1", { instanceId: "instance-other" }));
    expect(restarted.get("p1")?.instanceId).toBe("instance-other");
  });

  test("a peer recorded before instances existed adopts its first instance without losing anything", async () => {
    const s = setup();
    await withBall(s, s.catalog);
    s.catalog.upsertPeer({ ...s.catalog.getPeer("p1")!, instanceId: undefined });
    const restarted = new Registry({ catalog: s.catalog, known: s.catalog.listPeers(), timings, clock: s.clock, persist: (write) => write(s.calls), emit: () => {} });
    await restarted.heartbeat(report("p1"));
    expect(s.catalog.getPeer("p1")?.instanceId).toBe("instance-p1");
    expect(s.catalog.getBall("bucket", "k")?.chunks.map((chunk) => chunk.peers)).toEqual([["p1", "p2"], ["p1", "p3"]]);
  });
});

describe("another VSS", () => {
  test("a peer that joined another VSS is refused and not recorded; one of this VSS is taken", async () => {
    const s = setup();
    const error = await rejection(s.registry.heartbeat(report("p1", { vssId: "someone-elses-vss" })));
    expect(error.code).toBe("conflict");
    expect(error.message).toContain("empty or wrong catalog");
    expect(s.registry.get("p1")).toBeUndefined();
    expect(s.catalog.getPeer("p1")).toBeUndefined();
    await s.registry.heartbeat(report("p1", { vssId: s.catalog.vssId }));
    expect(s.registry.get("p1")?.state).toBe("up");
  });
});

describe("time", () => {
  test("a wall clock stepped forward marks no peer down, one stepped back stalls nothing; only time passing does", async () => {
    const s = setup();
    await s.registry.heartbeat(report("p1"));
    s.clock.stepWall(60_000);
    await s.registry.tick();
    expect(s.registry.state("p1")).toBe("up");
    s.clock.stepWall(-3_600_000);
    s.clock.advance(timings.suspectAfterMs);
    await s.registry.tick();
    expect(s.registry.state("p1")).toBe("suspect");
    s.clock.advance(timings.downAfterMs - timings.suspectAfterMs);
    await s.registry.tick();
    expect(s.registry.state("p1")).toBe("down");
    expect(s.catalog.getPeer("p1")?.state).toBe("down");
  });
});

describe("durable before memory", () => {
  test("a registration whose catalog write fails leaves no trace; the next heartbeat registers the peer", async () => {
    let failNext = true;
    const s = setup({
      persist: async (write, calls) => {
        if (failNext) {
          failNext = false;
          throw new FullError("the catalog's disk is full");
        }
        return write(calls);
      },
    });
    expect((await rejection(s.registry.heartbeat(report("p1")))).code).toBe("full");
    expect(s.registry.get("p1")).toBeUndefined();
    expect(s.registry.candidates()).toEqual([]);
    await s.registry.heartbeat(report("p1"));
    expect(s.registry.candidates().map((peer) => peer.id)).toEqual(["p1"]);
  });

  test("a state change whose write fails is not taken in memory, the tick says why, and the next tick retries", async () => {
    let failing = false;
    const s = setup({
      persist: async (write, calls) => {
        if (failing) throw new FullError("the catalog's disk is full");
        return write(calls);
      },
    });
    await s.registry.heartbeat(report("p1"));
    failing = true;
    s.clock.advance(timings.downAfterMs);
    await s.registry.tick(); // does not throw
    expect(s.registry.state("p1")).toBe("up");
    expect(s.events.some((event) => event.kind === "catalog_error" && event.message.includes("disk is full"))).toBe(true);
    failing = false;
    await s.registry.tick();
    expect(s.registry.state("p1")).toBe("down");
  });

  test("drain is durable before it is said, and refused for an unknown peer", async () => {
    const s = setup();
    await s.registry.heartbeat(report("p1"));
    await s.registry.setDraining("p1", true);
    expect(s.catalog.getPeer("p1")?.draining).toBe(true);
    expect(s.registry.candidates()).toEqual([]);
    expect((await rejection(s.registry.setDraining("nobody", true))).code).toBe("not_found");
  });
});
