// Reconciliation: what the catalog believes a peer holds, checked against what it holds. Each up
// peer is checked when it joins, comes back or is replaced, and again every `intervalMs`; a step
// (one a second) takes pages for at most `reconcileStepBudgetMs`, so a peer of millions of chunks
// is walked slowly and nothing waits on it, while a few thousand are walked in a step or two. A
// peer that joined or was replaced is checked before those merely back (a replaced disk's
// real owner, say, whose leftovers of live balls are garbage now).
// A check has up to three phases:
//   holdings  the peer's own list (chunk.list), each chunk classified by the catalog
//             (replica, extra, garbage, uploading, retired, unknown; see Holding). Chunks the
//             catalog knows are not wanted (a retired version's late write, an unrecorded
//             copy) become garbage once older than `orphanGraceMs`; an unrecorded copy of an
//             under-replicated chunk is adopted instead. Chunks of nothing the catalog knows
//             are only counted.
//   unknown   only when the count is a small share of what the peer holds (`orphanShareMax`):
//             the list is walked again and those chunks are collected. Past the share the
//             catalog is likely missing data (restored from an old copy, say), so nothing is
//             collected, `status` says why, and an operator decides. An empty catalog never
//             deletes what its peers hold (and an SPM on another catalog is another VSS, whose
//             orders peers refuse).
//   records   the catalog's list of the peer's replicas (chunksOnPeer), asked of the peer in
//             batches (chunk.statMany): a replica the peer does not hold is forgotten (healing
//             copies it back) unless it is the chunk's last record; one with other bytes is
//             repaired like a corrupt one.
import type { CatalogStore, GarbageInput, GroupWrite, Holding, PeerChunk } from "../../catalog/index.ts";
import { RpcPool, ServiceClient } from "../../net/pool.ts";
import { parseAddress } from "../../net/address.ts";
import { peerOps, type ChunkMetaWire } from "../../protocol/peer.ts";
import type { ReconcileStatus } from "../../protocol/spm.ts";
import type { Clock } from "../../lib/clock.ts";
import { vssLimits, vssTimings } from "../../lib/limits.ts";
import { toMictlanxError } from "../../lib/errors.ts";
import { assert } from "../../lib/assert.ts";
import { chunkChecksum, checksumHex } from "../../lib/checksum.ts";
import type { ArrivalKind, Registry } from "./registry.ts";

export interface ReconcilerOptions {
  /** The SPM's connections to its peers (with its certificate, under TLS). */
  pool: RpcPool;
  catalog: CatalogStore;
  registry: Registry;
  clock: Clock;
  /** A full check of every up peer at least this often. */
  intervalMs: number;
  /** A chunk the catalog does not want is collected only when it is older than this (its writer may still be about to record it). */
  orphanGraceMs: number;
  /** Durable catalog writes (the SPM's write batcher). */
  persist: <T>(write: GroupWrite<T>) => Promise<T>;
  /** Chunks another task (heal, drain, GC) is working on right now: left alone. */
  isBusy: (objectId: string, index: number) => boolean;
  /** Rewrite a replica whose bytes are wrong or gone from a good one. */
  repair: (objectId: string, index: number, peerId: string, detail: string) => Promise<boolean>;
  event: (kind: string, message: string) => void;
}

interface Check {
  phase: "holdings" | "unknown" | "records";
  cursor?: string;
  held: number;
  unknown: number;
}

interface PeerState {
  /** The check under way, if any. */
  check?: Check;
  /** When the next check is due (monotonic). */
  dueMonoMs: number;
  /** Why this peer's unknown chunks are not collected (from its last count), if they are not. */
  blocked?: string;
  /** Joined or replaced: checked before peers that are only due. */
  urgent?: boolean;
}

export class Reconciler {
  private readonly peers = new Map<string, PeerState>();
  private readonly counters = { passes: 0, missingReplicas: 0, orphansCollected: 0, adoptedReplicas: 0, lostChunks: 0, repairedReplicas: 0 };
  private running = false;

  constructor(private readonly o: ReconcilerOptions) {}

  /** Check this peer next, from the start (it joined, came back, or was replaced). */
  schedule(peerId: string, why: ArrivalKind = "returned"): void {
    const state = this.stateOf(peerId);
    state.check = undefined;
    state.dueMonoMs = this.o.clock.monoMs();
    if (why !== "returned") state.urgent = true;
  }

  status(): ReconcileStatus {
    const blocked = [...this.peers.entries()].flatMap(([peerId, state]) => (state.blocked ? [{ peerId, message: state.blocked }] : []));
    const checking = [...this.peers.values()].filter((state) => state.check !== undefined).length;
    return { checking, ...this.counters, blocked };
  }

  close(): void {
    this.o.pool.close();
  }

  /**
   * Pages of the due checks, one at least, more while the step is within its time budget
   * (`reconcileStepBudgetMs`, at most `reconcilePagesPerStepMax` pages). Never overlaps itself;
   * errors are events, never thrown, and end the step (the next one retries).
   */
  async step(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const startMonoMs = this.o.clock.monoMs();
    try {
      for (let pages = 0; pages < vssLimits.reconcilePagesPerStepMax; pages += 1) {
        const peerId = this.nextDue();
        if (peerId === undefined) break;
        await this.advance(peerId);
        if (this.o.clock.monoMs() - startMonoMs >= vssTimings.reconcileStepBudgetMs) break;
      }
    } catch (error) {
      this.o.event("reconcile_error", `reconciliation: ${toMictlanxError(error).message}`);
    } finally {
      this.running = false;
    }
  }

  private stateOf(peerId: string): PeerState {
    let state = this.peers.get(peerId);
    if (!state) {
      state = { dueMonoMs: this.o.clock.monoMs() };
      this.peers.set(peerId, state);
    }
    return state;
  }

  /** The up peer to check: an urgent one first, else the furthest overdue; peers gone from the registry are forgotten. */
  private nextDue(): string | undefined {
    const nowMs = this.o.clock.monoMs();
    for (const id of this.peers.keys()) if (this.o.registry.get(id) === undefined) this.peers.delete(id);
    let best: { id: string; dueMonoMs: number; urgent: boolean } | undefined;
    for (const peer of this.o.registry.all()) {
      if (peer.state !== "up") continue;
      const state = this.stateOf(peer.id);
      if (state.dueMonoMs > nowMs) continue;
      const urgent = state.urgent === true;
      const better = !best || (urgent && !best.urgent) || (urgent === best.urgent && state.dueMonoMs < best.dueMonoMs);
      if (better) best = { id: peer.id, dueMonoMs: state.dueMonoMs, urgent };
    }
    return best?.id;
  }

  private async advance(peerId: string): Promise<void> {
    const state = this.stateOf(peerId);
    state.check ??= { phase: "holdings", held: 0, unknown: 0 };
    const check = state.check;
    const peer = this.o.registry.get(peerId);
    assert(peer !== undefined, `reconciling ${peerId}, which is not registered`);
    const client = new ServiceClient(peerOps, this.o.pool, parseAddress(peer.address));
    const next =
      check.phase === "records" ? await this.recordsPage(peerId, check, client) : await this.holdingsPage(peerId, check, client, check.phase === "unknown");
    if (next !== undefined) {
      check.cursor = next;
      return;
    }
    delete check.cursor;
    if (check.phase === "holdings") {
      const blocked = this.blockedBy(peerId, check);
      if (blocked) state.blocked = blocked;
      else delete state.blocked;
      check.phase = check.unknown > 0 && !blocked ? "unknown" : "records";
      return;
    }
    if (check.phase === "unknown") {
      check.phase = "records";
      return;
    }
    this.finish(state);
  }

  private finish(state: PeerState): void {
    delete state.check;
    delete state.urgent;
    state.dueMonoMs = this.o.clock.monoMs() + this.o.intervalMs;
    this.counters.passes += 1;
  }

  /** Why chunks of nothing known are not collected from this peer, or undefined when they may be. */
  private blockedBy(peerId: string, last: { held: number; unknown: number }): string | undefined {
    if (last.unknown <= last.held * vssLimits.orphanShareMax) return undefined;
    const share = Math.round((100 * last.unknown) / Math.max(1, last.held));
    return (
      `peer ${peerId} holds ${last.unknown} chunks the catalog does not know (${share} % of its ${last.held}); none is deleted, ` +
      "since the catalog may be missing data (restored from an old copy?). Restore the catalog, or move those chunks aside by hand"
    );
  }

  /**
   * A page of the peer's holdings, classified: what the catalog knows it does not want is
   * collected; chunks of nothing known are counted, or, on the second walk (`unknownWalk`, only
   * when the count allowed it), collected. Returns the cursor of the next page, if any.
   */
  private async holdingsPage(peerId: string, check: Check, client: ServiceClient<typeof peerOps>, unknownWalk: boolean): Promise<string | undefined> {
    const page = await client.call("chunk.list", { limit: vssLimits.reconcilePageChunks, ...(check.cursor === undefined ? {} : { after: check.cursor }) });
    const nowWallMs = this.o.clock.wallMs();
    const collect: GarbageInput[] = [];
    const adopt: ChunkMetaWire[] = [];
    for (const chunk of page.chunks) {
      if (!unknownWalk) check.held += 1;
      if (this.o.isBusy(chunk.ball, chunk.index)) continue;
      const ageMs = nowWallMs - chunk.createdMs;
      if (ageMs < Math.min(this.o.orphanGraceMs, vssTimings.extraCopyGraceMs)) continue;
      const holding: Holding = await this.o.catalog.classifyHolding(chunk.ball, chunk.index, peerId);
      if (holding !== "extra" && ageMs < this.o.orphanGraceMs) continue;
      if (unknownWalk) {
        if (holding === "unknown") collect.push(garbageOf(chunk, peerId));
      } else if (holding === "unknown") {
        check.unknown += 1;
      } else if (holding === "extra") {
        if (await this.underReplicatedMatch(chunk)) adopt.push(chunk);
        else collect.push(garbageOf(chunk, peerId));
      } else if (holding === "retired") {
        collect.push(garbageOf(chunk, peerId));
      }
    }
    const verified = await this.verifiedCopies(adopt, client);
    for (const chunk of adopt) if (!verified.includes(chunk)) collect.push(garbageOf(chunk, peerId)); // bad bytes: not worth keeping
    if (verified.length > 0) {
      await this.o.persist(async (tx) => {
        for (const chunk of verified) await tx.addReplica(chunk.ball, chunk.index, peerId);
      });
      this.counters.adoptedReplicas += verified.length;
    }
    if (collect.length > 0) {
      await this.o.persist((tx) => tx.addGarbage(collect));
      this.counters.orphansCollected += collect.length;
      this.o.event("orphans_collected", `${collect.length} chunks on ${peerId} that no ball uses are queued for deletion`);
    }
    return page.next;
  }

  /**
   * The copies whose bytes really are the catalog's: read back from the peer, which checks them
   * against their record, and compared with the catalog's checksum. A replica dropped as corrupt
   * and left on its peer lists with the right checksum; only reading its bytes tells.
   */
  private async verifiedCopies(copies: ChunkMetaWire[], client: ServiceClient<typeof peerOps>): Promise<ChunkMetaWire[]> {
    const good: ChunkMetaWire[] = [];
    for (const chunk of copies) {
      const read = await client.call("chunk.get", { bucket: chunk.bucket, ball: chunk.ball, index: chunk.index }).catch(() => undefined);
      if (read && read.data.byteLength === chunk.size && checksumHex(chunkChecksum(read.data)) === chunk.checksum) good.push(chunk);
    }
    return good;
  }

  /** An unrecorded copy with the catalog's size and checksum, of a chunk that lacks replicas: worth keeping if its bytes check out. */
  private async underReplicatedMatch(chunk: ChunkMetaWire): Promise<boolean> {
    const found = await this.o.catalog.findChunk(chunk.ball, chunk.index);
    if (!found || found.size !== chunk.size || found.checksum !== chunk.checksum) return false;
    const counting = found.peers.filter((id) => {
      const peer = this.o.registry.get(id);
      return peer !== undefined && peer.state !== "down" && !peer.draining;
    });
    return counting.length < found.rf;
  }

  /** Ask the peer for a page of the replicas the catalog records on it; returns the next cursor. */
  private async recordsPage(peerId: string, check: Check, client: ServiceClient<typeof peerOps>): Promise<string | undefined> {
    const page = await this.o.catalog.chunksOnPeer(peerId, { limit: vssLimits.reconcilePageChunks, ...(check.cursor === undefined ? {} : { after: check.cursor }) });
    if (page.chunks.length === 0) return undefined;
    const refs = page.chunks.map((chunk) => ({ bucket: chunk.bucket, ball: chunk.objectId, index: chunk.index }));
    const { results } = await client.call("chunk.statMany", { refs });
    assert(results.length === refs.length, `peer ${peerId} answered ${results.length} stats for ${refs.length}`);
    const missing: PeerChunk[] = [];
    for (const [i, chunk] of page.chunks.entries()) {
      const result = results[i]!;
      if (this.o.isBusy(chunk.objectId, chunk.index)) continue;
      if (!result.ok && result.code === "not_found") missing.push(chunk);
      else if (!result.ok || result.size !== chunk.size || result.checksum !== chunk.checksum) {
        const detail = result.ok ? `holds ${result.size} bytes with checksum ${result.checksum}, the catalog says ${chunk.size} with ${chunk.checksum}` : result.message;
        if (await this.o.repair(chunk.objectId, chunk.index, peerId, `reconciliation: ${detail}`)) this.counters.repairedReplicas += 1;
      }
    }
    if (missing.length > 0) await this.forget(peerId, missing);
    return page.next;
  }

  /** Replicas the peer does not hold: forgotten, so healing copies them back; a chunk's last record stays. */
  private async forget(peerId: string, missing: PeerChunk[]): Promise<void> {
    const outcome = await this.o.persist(async (tx) => {
      let forgotten = 0;
      let lost = 0;
      for (const chunk of missing) {
        const found = await tx.findChunk(chunk.objectId, chunk.index);
        if (!found?.peers.includes(peerId)) continue; // gone meanwhile (moved, overwritten)
        if (found.peers.length === 1) lost += 1; // the last record stays: it says where the data was
        else if (await tx.removeReplica(chunk.objectId, chunk.index, peerId, { garbage: false })) forgotten += 1;
      }
      return { forgotten, lost };
    });
    this.counters.missingReplicas += outcome.forgotten;
    this.counters.lostChunks += outcome.lost;
    const lost = outcome.lost > 0 ? `; ${outcome.lost} of them were the only replica (those chunks are lost)` : "";
    this.o.event("replicas_missing", `peer ${peerId} does not hold ${missing.length} replicas the catalog records: ${outcome.forgotten} forgotten and healed from other peers${lost}`);
  }
}

function garbageOf(chunk: ChunkMetaWire, peerId: string): GarbageInput {
  return { objectId: chunk.ball, index: chunk.index, peerId, bucket: chunk.bucket };
}
