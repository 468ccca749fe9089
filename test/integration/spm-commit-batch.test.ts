// A router's batch of reservations (`ball.reserveMany`) and of commits (`ball.commitMany`) are
// each one catalog write at the SPM, on both engines: reservations answered in their place,
// retries from memory or, after a restart, from the catalog. Commits: every commit answered in
// its place, one that fails (an --if-absent key that holds a ball, a compare-and-swap on a
// version no longer there) answered alone while the others commit;
// each committed version's manifest is on chunk 0's peers, and an overwrite's tombstone sorts
// below the version that replaced it. Roles in this process (an SPM on sqlite, then one on a
// PostgreSQL started by the test), called as a router calls them.
import { afterAll, describe, expect, test } from "bun:test";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { spmOps } from "../../src/protocol/spm.ts";
import { peerOps } from "../../src/protocol/peer.ts";
import { startInProcessVss, type InProcessVss } from "../support/in-process.ts";
import { asRouter, asSpm } from "../support/security.ts";
import { postgresMissing, startTestPostgres, type TestPostgres } from "../support/postgres.ts";

const routerPool = new RpcPool({ role: "spm", ...asRouter });
const peerPool = new RpcPool({ role: "peer", ...asSpm });
let postgres: TestPostgres | undefined;
afterAll(async () => {
  routerPool.close();
  peerPool.close();
  await postgres?.cleanup();
});

const missing = postgresMissing();
if (missing !== undefined) console.log(`[spm-commit-batch] ${missing}`);
const engines = missing === undefined ? (["sqlite", "postgres"] as const) : (["sqlite"] as const);

type Spm = ServiceClient<typeof spmOps>;

/** Reserve one chunk for each key, as a router's `ball.reserveMany` does. */
async function reserve(spm: Spm, keys: string[], options: { ifAbsent?: boolean } = {}) {
  const { results } = await spm.call("ball.reserveMany", { items: keys.map((key) => ({ bucket: "cb", key, rf: 2, count: 1, chunkBytes: 64, ...options })) });
  return results.map((result, n) => {
    if (!result.ok) throw new Error(`reserve of ${keys[n]} failed: ${result.message}`);
    return result.value;
  });
}

/** The commit of a reserved one-chunk ball on the peers its placement named (the chunk itself is not needed by the catalog). */
function commitOf(key: string, reserved: Awaited<ReturnType<typeof reserve>>[number], extra: { ifAbsent?: boolean; expectedObjectId?: string } = {}) {
  const peers = reserved.placements[0]!.peers.map((peer) => peer.id);
  return {
    bucket: "cb", key, size: 64, checksum: "ab".repeat(32), contentType: "application/octet-stream", tags: {}, rf: 2, chunkSize: 64,
    objectId: reserved.objectId, chunks: [{ index: 0, size: 64, checksum: "0123456789abcdef", peers }], ...extra,
  };
}

/** Every manifest the VSS's peers hold, by object id (a copy on each holder). */
async function manifests(vss: InProcessVss) {
  const byObject = new Map<string, Array<{ key: string; generation: number; dead: boolean }>>();
  for (const peer of vss.peers) {
    const client = new ServiceClient(peerOps, peerPool, parseAddress(peer.address));
    let after: string | undefined;
    do {
      const page = await client.call("manifest.list", { limit: 100, ...(after === undefined ? {} : { after }) });
      for (const item of page.manifests) byObject.set(item.objectId, [...(byObject.get(item.objectId) ?? []), { key: item.key, generation: item.generation, dead: item.dead }]);
      after = page.next;
    } while (after !== undefined);
  }
  return byObject;
}

/** The vss of an engine (a PostgreSQL database made for it), stopped by the caller. */
async function vssOn(engine: "sqlite" | "postgres", label: string): Promise<InProcessVss> {
  let catalog: string | undefined;
  if (engine === "postgres") {
    postgres ??= await startTestPostgres("commit-batch");
    catalog = await postgres.createDatabase();
  }
  return startInProcessVss(`${label}-${engine}`, 3, catalog === undefined ? {} : { catalog });
}

describe("a batch of reservations at the SPM", () => {
  for (const engine of engines) {
    test(`${engine}: new uploads in one write; retries answered from memory, then from the catalog after a restart`, async () => {
      const vss = await vssOn(engine, "reserve-batch");
      try {
        const spm = () => new ServiceClient(spmOps, routerPool, parseAddress(vss.spm.address));
        const item = (key: string, extra: { requestId?: string; ifAbsent?: boolean } = {}) => ({ bucket: "rb", key, rf: 2, count: 1, chunkBytes: 64, ...extra });
        const first = await spm().call("ball.reserveMany", { items: [item("x", { requestId: "request-x" }), item("y", { requestId: "request-y" }), item("z")] });
        const [x, y] = first.results.map((result) => (result.ok ? result.value : assertNever(result.message)));
        const commit = { bucket: "rb", key: "x", size: 64, checksum: "ab".repeat(32), contentType: "application/octet-stream", tags: {}, rf: 2, chunkSize: 64, objectId: x!.objectId, chunks: [{ index: 0, size: 64, checksum: "0123456789abcdef", peers: x!.placements[0]!.peers.map((peer) => peer.id) }] };
        expect((await spm().call("ball.commitMany", { items: [commit] })).results).toEqual([{ ok: true, value: { version: 1 } }]);
        // A retry while the SPM remembers: the first reservation.
        const remembered = await spm().call("ball.reserveMany", { items: [item("y", { requestId: "request-y" })] });
        expect(remembered.results).toEqual([{ ok: true, value: y! }]);

        await vss.restartSpm(); // its memory of reservations gone: the catalog answers retries now
        const again = await spm().call("ball.reserveMany", {
          items: [
            item("x", { requestId: "request-x" }), // committed: its version, nothing more to write
            item("y", { requestId: "request-y" }), // under way: its object id and placements
            item("x", { ifAbsent: true }), // x holds a ball: refused alone
            item("w", { requestId: "request-w" }), // new
            item("w", { requestId: "request-w" }), // the same put twice in one batch: one upload
            item("v", { requestId: "request-y" }), // request-y names another ball's upload: refused
          ],
        });
        const answers = again.results.map((result) => (result.ok ? result.value : { code: result.code, message: result.message }));
        expect(answers[0]).toEqual({ objectId: x!.objectId, placements: [], committed: { version: 1 } });
        expect(answers[1]).toMatchObject({ objectId: y!.objectId });
        expect(answers[2]).toMatchObject({ code: "conflict", message: expect.stringContaining("already exists") });
        expect(answers[3]).toMatchObject({ objectId: expect.any(String) });
        expect(answers[4]).toMatchObject({ objectId: (answers[3] as { objectId: string }).objectId });
        expect(answers[5]).toMatchObject({ code: "conflict", message: expect.stringContaining("request id request-y was used for rb/y") });
      } finally {
        await vss.stop();
      }
    }, 90_000);
  }
});

function assertNever(message: string): never {
  throw new Error(message);
}

describe("a batch of commits at the SPM", () => {
  for (const engine of engines) {
    test(`${engine}: each commit answered in its place, a failing one alone; manifests in order`, async () => {
      const vss = await vssOn(engine, "commit-batch");
      try {
        const spm = new ServiceClient(spmOps, routerPool, parseAddress(vss.spm.address));
        // Round 1: eight new balls in one batch, all committed at version 1.
        const first = ["a", "b", "c", "d", "e", "f", "g", "h"];
        const reserved = await reserve(spm, first);
        const one = await spm.call("ball.commitMany", { items: first.map((key, n) => commitOf(key, reserved[n]!)) });
        expect(one.results).toEqual(first.map(() => ({ ok: true, value: { version: 1 } })));

        // Round 2: overwrites of a and b, a put of "c" --if-absent (it holds a ball: refused), a
        // compare-and-swap of "d" on a version it does not hold (refused), and new keys.
        const second = ["a", "b", "c", "d", "i", "j"];
        const again = await reserve(spm, second);
        const items = second.map((key, n) => commitOf(key, again[n]!, key === "c" ? { ifAbsent: true } : key === "d" ? { expectedObjectId: reserved[4]!.objectId } : {}));
        const two = await spm.call("ball.commitMany", { items });
        expect(two.results.map((result) => (result.ok ? result.value : { code: result.code }))).toEqual([
          { version: 2, replacedObjectId: reserved[0]!.objectId },
          { version: 2, replacedObjectId: reserved[1]!.objectId },
          { code: "conflict" },
          { code: "conflict" },
          { version: 1 },
          { version: 1 },
        ]);
        // What each answer says is what the catalog holds.
        for (const [key, objectId] of [["a", again[0]!.objectId], ["b", again[1]!.objectId], ["c", reserved[2]!.objectId], ["d", reserved[3]!.objectId], ["i", again[4]!.objectId], ["j", again[5]!.objectId]] as const) {
          expect((await spm.call("ball.get", { bucket: "cb", key })).objectId).toBe(objectId);
        }
        // The refused commits' uploads are still under way: the same commits without the refused condition go in.
        const retried = await spm.call("ball.commitMany", { items: [commitOf("c", again[2]!), commitOf("d", again[3]!)] });
        expect(retried.results).toEqual([
          { ok: true, value: { version: 2, replacedObjectId: reserved[2]!.objectId } },
          { ok: true, value: { version: 2, replacedObjectId: reserved[3]!.objectId } },
        ]);

        // Manifests: every live version's on its chunk 0's two peers, generations unique; each
        // overwritten version's tombstone (which took the place of its manifest) below the live
        // manifest of the version that replaced it.
        const held = await manifests(vss);
        const committed = [...reserved.slice(4).map((r, n) => ({ key: first[n + 4]!, objectId: r.objectId })), ...again.map((r, n) => ({ key: second[n]!, objectId: r.objectId }))];
        const generations = new Set<number>();
        for (const { key, objectId } of committed) {
          const copies = held.get(objectId) ?? [];
          const live = copies.filter((copy) => !copy.dead);
          expect({ key, live: live.length }).toEqual({ key, live: 2 });
          expect(new Set(live.map((copy) => copy.generation)).size).toBe(1);
          generations.add(live[0]!.generation);
        }
        expect(generations.size).toBe(committed.length);
        for (const n of [0, 1, 2, 3]) {
          const tombstones = held.get(reserved[n]!.objectId) ?? [];
          const replacedBy = (held.get(again[n]!.objectId) ?? []).find((copy) => !copy.dead)!;
          expect(tombstones.length).toBe(2);
          expect(tombstones.every((copy) => copy.dead)).toBe(true);
          for (const tombstone of tombstones) expect(tombstone.generation).toBeLessThan(replacedBy.generation);
        }
      } finally {
        await vss.stop();
      }
    }, 90_000);
  }
});
