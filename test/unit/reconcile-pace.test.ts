// The reconciler's pace, in process: real RpcServers on loopback speaking the peer's operations
// (each an endless list of young chunks, so a check never ends and nothing is classified), a real
// sqlite catalog and registry, and a stepped clock that each page advances. One step takes pages
// until reconcileStepBudgetMs is spent (at least one, at most reconcilePagesPerStepMax); a peer
// that joined or was replaced is checked before peers that only came back.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RpcServer, type Handlers } from "../../src/net/server.ts";
import { RpcPool } from "../../src/net/pool.ts";
import { peerOps } from "../../src/protocol/peer.ts";
import { SqliteStore } from "../../src/catalog/sqlite-store.ts";
import { Registry } from "../../src/roles/spm/registry.ts";
import { Reconciler } from "../../src/roles/spm/reconcile.ts";
import { SteppedClock } from "../../src/lib/clock.ts";
import { vssLimits, vssTimings } from "../../src/lib/limits.ts";
import type { CatalogStore } from "../../src/catalog/index.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface FakePeer {
  id: string;
  address: string;
  /** The peer ids whose chunk.list was answered, in order (shared by all fakes of a setup). */
  pages: string[];
}

/** A peer whose list never ends: each page is one chunk made just now, and a next cursor. */
function fakePeer(id: string, clock: SteppedClock, pageMs: () => number, pages: string[]): FakePeer {
  let n = 0;
  const handlers = {
    "chunk.list": () => {
      pages.push(id);
      clock.advance(pageMs());
      n += 1;
      const chunk = { bucket: "b", ball: `obj-${id}-${n}`, index: 0, size: 1, checksum: "0".repeat(16), shardId: 0, createdMs: clock.wallMs() };
      return { chunks: [chunk], next: `cursor-${n}` };
    },
  } as unknown as Handlers<typeof peerOps>;
  const server = new RpcServer({ host: "127.0.0.1", port: 0, ops: peerOps, role: "peer", handlers });
  server.listen();
  cleanups.push(() => server.stop());
  return { id, address: `127.0.0.1:${server.port}`, pages };
}

async function setup(pageMs: () => number, ids = ["p1"]) {
  const dir = mkdtempSync(join(tmpdir(), "mictlanx-reconcile-pace-"));
  const catalog: CatalogStore = SqliteStore.open(join(dir, "catalog.sqlite"));
  cleanups.push(async () => {
    await catalog.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const clock = new SteppedClock();
  const pages: string[] = [];
  const peers = ids.map((id) => fakePeer(id, clock, pageMs, pages));
  const persist = async <T>(write: (tx: CatalogStore) => Promise<T>): Promise<T> => write(catalog);
  const registry = new Registry({
    catalog,
    known: [],
    timings: { suspectAfterMs: 60_000, downAfterMs: 120_000 },
    clock,
    persist,
    emit: () => {},
  });
  const pool = new RpcPool({ role: "peer", expectRole: "peer", connectAttempts: 1 });
  cleanups.push(() => pool.close());
  const reconciler = new Reconciler({
    pool,
    catalog,
    registry,
    clock,
    intervalMs: 600_000,
    orphanGraceMs: 3_600_000,
    persist,
    isBusy: () => false,
    repair: async () => false,
    event: (kind, message) => {
      throw new Error(`unexpected ${kind}: ${message}`);
    },
  });
  for (const peer of peers) {
    await registry.heartbeat({ id: peer.id, address: peer.address, instanceId: `i-${peer.id}`, capacityBytes: 1 << 30, usedBytes: 0, freeBytes: 1 << 30, liveBytes: 0, chunks: 0, puts: 0, gets: 0 });
  }
  return { reconciler, pages, clock };
}

describe("reconciliation's pace", () => {
  test("a step takes pages until its time budget is spent, the one that crosses it included", async () => {
    const budgetMs = vssTimings.reconcileStepBudgetMs;
    const perPageMs = Math.ceil(budgetMs / 3.5); // 4 pages cross the budget
    const { reconciler, pages } = await setup(() => perPageMs);
    reconciler.schedule("p1", "returned");
    await reconciler.step();
    expect(pages.length).toBe(Math.ceil(budgetMs / perPageMs));
    expect(pages.length).toBe(4);
    await reconciler.step();
    expect(pages.length).toBe(8); // the check goes on where it stopped
  });

  test("a page slower than the whole budget is still taken, alone", async () => {
    const { reconciler, pages } = await setup(() => vssTimings.reconcileStepBudgetMs + 1);
    reconciler.schedule("p1", "returned");
    await reconciler.step();
    expect(pages).toEqual(["p1"]);
  });

  test("pages that take no time stop at reconcilePagesPerStepMax", async () => {
    const { reconciler, pages } = await setup(() => 0);
    reconciler.schedule("p1", "returned");
    await reconciler.step();
    expect(pages.length).toBe(vssLimits.reconcilePagesPerStepMax);
  });

  test("a peer that joined or was replaced is checked before those that only came back", async () => {
    const { reconciler, pages, clock } = await setup(() => vssTimings.reconcileStepBudgetMs, ["p1", "p2", "p3"]);
    reconciler.schedule("p1", "returned");
    clock.advance(1);
    reconciler.schedule("p2", "returned");
    clock.advance(1);
    reconciler.schedule("p3", "replaced");
    for (let n = 0; n < 3; n += 1) await reconciler.step();
    // p3 is urgent though scheduled last; its check never ends here, so it keeps the steps.
    expect(pages).toEqual(["p3", "p3", "p3"]);
  });

  test("without urgent peers, the furthest overdue goes first", async () => {
    const { reconciler, pages, clock } = await setup(() => vssTimings.reconcileStepBudgetMs, ["p1", "p2"]);
    reconciler.schedule("p2", "returned");
    clock.advance(1);
    reconciler.schedule("p1", "returned");
    await reconciler.step();
    expect(pages).toEqual(["p2"]);
  });
});
