// The SPM's background work, all derived from the catalog so it resumes by itself after a
// restart and is safe to repeat (idempotent):
//   heal      chunks below rf on live peers get a copy pulled from a surviving replica;
//   drain     chunks on a draining peer are copied away, then its replica dropped; a chunk
//             that cannot move yet (too few other peers for its rf, no room, no source) is
//             counted with its reason for status (drain.ts), not tried and failed each pass;
//   trim      replicas beyond rf (a lost peer came back) are dropped;
//   rebalance chunks move from the fullest peer to the emptiest until the spread is small;
//   collect   garbage replicas (old versions, deletes, trims, abandoned uploads) are deleted.
// Copies are throttled (a token bucket) and bounded (a semaphore). A chunk is touched by one
// task at a time (the `busy` set), so a delete never races a copy of the same replica.
// A replica on a draining peer does not count toward rf, so every chunk there is also
// "under-replicated": healing leaves those to the drain (while the draining peer is not down),
// so that what a drain copies counts as moved, not healed, and a drain that cannot finish is
// reported as blocked rather than as a healing failure a pass.
import type { CatalogStore, GroupWrite } from "../../catalog/index.ts";
import { RpcPool, ServiceClient } from "../../net/pool.ts";
import { parseAddress } from "../../net/address.ts";
import { peerOps } from "../../protocol/peer.ts";
import type { HealingStatus } from "../../protocol/spm.ts";
import { vssLimits, vssTimings } from "../../lib/limits.ts";
import { Semaphore } from "../../lib/semaphore.ts";
import { TokenBucket } from "../../lib/token-bucket.ts";
import type { Clock } from "../../lib/clock.ts";
import { MictlanxError, toMictlanxError } from "../../lib/errors.ts";
import type { DrainBlockReason, DrainStatus } from "../../protocol/spm.ts";
import { assert } from "../../lib/assert.ts";
import { choosePeers } from "./placement.ts";
import type { Registry } from "./registry.ts";
import { DrainTracker, type BlockTally } from "./drain.ts";

export interface MaintenanceOptions {
  /** The SPM's connections to its peers (with its certificate, under TLS). */
  pool: RpcPool;
  healBytesPerSec: number;
  random: () => number;
  clock: Clock;
  event: (kind: string, message: string) => void;
  /**
   * Every catalog change this loop makes goes here (the SPM's write batcher), so it carries the
   * leader's term and is fenced with it (several SPMs: docs/ha.md); reads go to the catalog.
   */
  persist: <T>(write: GroupWrite<T>) => Promise<T>;
}

const slowPassIntervalMs = vssTimings.slowPassIntervalMs;

interface Counters {
  healedChunks: number;
  healedBytes: number;
  trimmedReplicas: number;
  movedChunks: number;
  repairedCorrupt: number;
  failures: number;
  lastError?: string;
}

export class Maintenance {
  private readonly copies = new Semaphore(vssLimits.healConcurrencyMax);
  private readonly throttle: TokenBucket;
  private readonly busy = new Set<string>();
  private readonly drains = new DrainTracker();
  private readonly counters: Counters = { healedChunks: 0, healedBytes: 0, trimmedReplicas: 0, movedChunks: 0, repairedCorrupt: 0, failures: 0 };
  private healCursor: string | undefined;
  private queued = 0;
  private rateWindow: { startMs: number; bytes: number; bytesPerSec: number };
  private running = false;
  private lastSlowPassMs = 0;

  constructor(
    private readonly catalog: CatalogStore,
    private readonly registry: Registry,
    private readonly options: MaintenanceOptions,
  ) {
    this.throttle = new TokenBucket(options.healBytesPerSec, options.healBytesPerSec, { nowMs: () => options.clock.monoMs(), sleep: (ms) => Bun.sleep(ms) });
    this.rateWindow = { startMs: options.clock.monoMs(), bytes: 0, bytesPerSec: 0 };
  }

  status(): HealingStatus {
    this.rollRate(this.options.clock.monoMs());
    return {
      active: this.queued > 0 || this.copies.inUse > 0,
      queued: this.queued,
      inFlight: this.copies.inUse,
      ...this.counters,
      bytesPerSec: this.rateWindow.bytesPerSec,
    };
  }

  /** The drains under way: what is left, what moved, what blocks the rest. */
  drainStatus(): DrainStatus[] {
    return this.drains.status((reason, tally) => this.describeBlock(reason, tally));
  }

  close(): void {
    this.options.pool.close();
  }

  /** A chunk some task is copying, moving or deleting right now. */
  isBusy(objectId: string, index: number): boolean {
    return this.busy.has(chunkKey(objectId, index));
  }

  /**
   * One pass of every kind of work. Never overlaps itself; errors are counted, never thrown.
   * `nowMs`: monotonic, for pacing; `deadlineNowMs`: the anchored wall clock the catalog's
   * deadlines are read against (see anchoredWallMs in src/lib/clock.ts).
   */
  async pass(nowMs: number, deadlineNowMs: number): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.heal();
      await this.drain();
      // The rest changes slowly; looking every pass would only spend the catalog's time.
      if (nowMs - this.lastSlowPassMs >= slowPassIntervalMs) {
        this.lastSlowPassMs = nowMs;
        await this.options.persist((tx) => tx.expireIntents(deadlineNowMs));
        await this.trim();
        await this.rebalance();
      }
      await this.collect(deadlineNowMs);
    } catch (error) {
      this.fail(error);
    } finally {
      this.running = false;
    }
  }

  // --- heal ---------------------------------------------------------------------------------

  private async heal(): Promise<void> {
    this.queued = await this.catalog.countUnderReplicated();
    if (this.queued === 0) return;
    const page = await this.catalog.underReplicated({ limit: vssLimits.healPageChunks, ...(this.healCursor ? { after: this.healCursor } : {}) });
    this.healCursor = page.next;
    const work: Promise<unknown>[] = [];
    for (const chunk of page.chunks) {
      const present = chunk.allPeers.filter((id) => this.counts(id));
      // Replicas on draining peers that are not down are the drain's to move (see the top).
      const draining = chunk.allPeers.filter((id) => this.isDrainingNotDown(id));
      const missing = chunk.rf - present.length - draining.length;
      if (missing <= 0) continue; // a suspect peer may still come back: wait
      const sources = chunk.allPeers.filter((id) => this.isSource(id));
      if (sources.length === 0) continue; // no live replica right now; nothing to copy from
      const key = chunkKey(chunk.objectId, chunk.index);
      if (this.busy.has(key)) continue;
      work.push(this.copyTo(chunk, sources, new Set(chunk.allPeers), missing, "heal"));
    }
    await Promise.all(work);
  }

  /** Copy a chunk to `count` new peers chosen by placement; add the replicas to the catalog. */
  private async copyTo(
    chunk: { objectId: string; index: number; size: number; checksum: string; bucket: string },
    sources: string[],
    exclude: Set<string>,
    count: number,
    why: "heal" | "drain" | "rebalance",
  ): Promise<string[]> {
    const key = chunkKey(chunk.objectId, chunk.index);
    if (this.busy.has(key)) return [];
    this.busy.add(key);
    const added: string[] = [];
    let badSource: { id: string; detail: string } | undefined;
    try {
      const targets = this.targetsFor(chunk, count, exclude, why);
      this.registry.notePlacements(targets.map((target) => target.id));
      for (const target of targets) {
        const source = this.registry.get(sources[Math.floor(this.options.random() * sources.length)] ?? "");
        if (!source) continue;
        try {
          await this.pull(chunk, source.address, target.address);
        } catch (error) {
          // The copy is checked against the catalog's checksum: a copy that fails it, or a source
          // that lacks the chunk, says the SOURCE replica is bad. Repair it too, once free.
          const typed = toMictlanxError(error);
          if (typed.code === "corrupt" || typed.code === "not_found") badSource = { id: source.id, detail: `a ${why} copy from it failed: ${typed.message}` };
          throw error;
        }
        await this.options.persist((tx) => tx.addReplica(chunk.objectId, chunk.index, target.id));
        added.push(target.id);
        if (why === "heal") {
          this.counters.healedChunks += 1;
          this.counters.healedBytes += chunk.size;
        } else this.counters.movedChunks += 1;
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.busy.delete(key);
    }
    if (badSource) await this.repairCorrupt(chunk.objectId, chunk.index, badSource.id, badSource.detail);
    return added;
  }

  /** `count` peers to copy a chunk to, by placement; the error says what is missing in the terms of the task. */
  private targetsFor(chunk: { objectId: string; index: number; size: number }, count: number, exclude: Set<string>, why: string) {
    try {
      return choosePeers(this.registry.candidates(), count, exclude, this.options.random, chunk.size);
    } catch (error) {
      if (!(error instanceof MictlanxError) || error.code !== "insufficient_peers") throw error;
      const usable = this.registry.candidates().filter((peer) => !exclude.has(peer.id) && peer.freeBytes >= chunk.size).length;
      throw new MictlanxError(
        "insufficient_peers",
        `${why}: chunk ${chunk.index} of object ${chunk.objectId} needs ${count} more peer(s) that are up, take data and have ${chunk.size} B free, ` +
          `besides the ${exclude.size} that hold it; ${usable} have`,
      );
    }
  }

  // --- drain --------------------------------------------------------------------------------

  /** A page of each draining peer's chunks a pass: drop what is held enough elsewhere, copy the rest away, count what cannot move. */
  private async drain(): Promise<void> {
    const draining = this.registry.all().filter((candidate) => candidate.draining);
    this.drains.keepOnly(new Set(draining.map((peer) => peer.id)));
    for (const peer of draining) {
      const after = await this.drains.cursor(peer.id, () => this.catalog.countReplicasOnPeer(peer.id));
      const page = await this.catalog.chunksOnPeer(peer.id, { limit: vssLimits.healPageChunks, ...(after === undefined ? {} : { after }) });
      await Promise.all(page.chunks.map((chunk) => this.drainChunk(peer.id, chunk)));
      if (this.drains.pageDone(peer.id, page.next, (reason, tally) => this.describeBlock(reason, tally))) {
        this.options.event("peer_drained", `peer ${peer.id} is drained: it holds no chunks; stop it and forget it with mictlanx peer remove ${peer.id}`);
      }
    }
  }

  private async drainChunk(peerId: string, chunk: { objectId: string; index: number; size: number; checksum: string; bucket: string; rf: number; peers: string[] }): Promise<void> {
    if (this.busy.has(chunkKey(chunk.objectId, chunk.index))) return; // another task has it; the next walk sees it again
    const others = chunk.peers.filter((id) => id !== peerId && this.isLive(id));
    const needed = chunk.rf - others.length;
    if (needed > 0) {
      const blocked = this.drainBlock(chunk, needed);
      if (blocked !== undefined) {
        this.drains.blocked(peerId, blocked, chunk);
        return;
      }
      const sources = chunk.peers.filter((id) => this.isSource(id));
      const added = await this.copyTo(chunk, sources, new Set(chunk.peers), needed, "drain");
      if (added.length < needed) return; // the failure is counted; the next walk tries again
    }
    if (await this.dropReplica(chunk.objectId, chunk.index, peerId)) this.drains.moved(peerId);
  }

  /** Why a chunk of a draining peer that needs `needed` more replicas cannot get them now, if it cannot. */
  private drainBlock(chunk: { size: number; peers: string[] }, needed: number): DrainBlockReason | undefined {
    assert(needed > 0, "drainBlock asked about a chunk held enough elsewhere");
    if (!chunk.peers.some((id) => this.isSource(id))) return "source";
    const targets = this.registry.candidates().filter((peer) => !chunk.peers.includes(peer.id));
    if (targets.length < needed) return "rf";
    if (targets.filter((peer) => peer.freeBytes >= chunk.size).length < needed) return "room";
    return undefined;
  }

  private describeBlock(reason: DrainBlockReason, tally: BlockTally): string {
    const what = `${tally.chunks} chunk${tally.chunks === 1 ? "" : "s"} of ${tally.balls} ball${tally.balls === 1 ? "" : "s"}`;
    const all = this.registry.all();
    const takingData = all.filter((peer) => peer.state === "up" && !peer.draining).length;
    const away = all.filter((peer) => peer.state !== "up" && !peer.draining).length;
    const awayNote = away > 0 ? ` (${away} more ${away === 1 ? "is" : "are"} not up)` : "";
    switch (reason) {
      case "rf":
        return `${what} kept at rf up to ${tally.rfMax}: only ${takingData} other peer${takingData === 1 ? "" : "s"} take data${awayNote}; start another peer, lower those balls' rf, or undrain`;
      case "room":
        return `${what} find no other peer with room for them; free space, add a peer, or undrain`;
      case "source":
        return `${what} have no replica on a peer that is up to copy from; bring the peer back, or remove it (mictlanx peer remove) to heal from what survives`;
    }
  }

  // --- trim ---------------------------------------------------------------------------------

  private async trim(): Promise<void> {
    const page = await this.catalog.overReplicated({ limit: vssLimits.healPageChunks });
    for (const chunk of page.chunks) {
      const live = chunk.peers.filter((id) => this.isLive(id));
      if (live.length <= chunk.rf) continue;
      // Keep the replicas on the emptiest peers; drop the rest.
      const ordered = [...live].sort((a, b) => this.fullness(a) - this.fullness(b));
      for (const id of ordered.slice(chunk.rf)) {
        if (await this.dropReplica(chunk.objectId, chunk.index, id)) this.counters.trimmedReplicas += 1;
      }
    }
  }

  // --- rebalance ----------------------------------------------------------------------------

  private async rebalance(): Promise<void> {
    if (this.queued > 0) return; // healing first
    const peers = this.registry.all().filter((peer) => peer.state === "up" && !peer.draining && peer.capacityBytes > 0);
    if (peers.length < 2) return;
    const ratios = peers.map((peer) => ({ peer, ratio: peer.liveBytes / peer.capacityBytes }));
    ratios.sort((a, b) => a.ratio - b.ratio);
    const emptiest = ratios[0];
    const fullest = ratios[ratios.length - 1];
    if (!emptiest || !fullest) return;
    const mean = ratios.reduce((sum, entry) => sum + entry.ratio, 0) / ratios.length;
    if (mean === 0 || (fullest.ratio - emptiest.ratio) / mean <= vssLimits.rebalanceSpreadMax) return;
    if ((fullest.ratio - emptiest.ratio) * fullest.peer.capacityBytes < vssLimits.rebalanceSlackBytes) return;
    const page = await this.catalog.chunksOnPeer(fullest.peer.id, { limit: vssLimits.healPageChunks });
    let moved = 0;
    for (const chunk of page.chunks) {
      if (moved >= vssLimits.rebalanceChunksPerPass) break;
      if (chunk.peers.includes(emptiest.peer.id)) continue;
      const located = await this.catalog.findChunk(chunk.objectId, chunk.index);
      if (!located) continue;
      const key = chunkKey(chunk.objectId, chunk.index);
      if (this.busy.has(key)) continue;
      const added = await this.moveTo(chunk, located.bucket, fullest.peer.id, emptiest.peer.id);
      if (added) moved += 1;
    }
  }

  private async moveTo(chunk: { objectId: string; index: number; size: number; checksum: string }, bucket: string, fromId: string, toId: string): Promise<boolean> {
    const key = chunkKey(chunk.objectId, chunk.index);
    const from = this.registry.get(fromId);
    const to = this.registry.get(toId);
    if (!from || !to) return false;
    this.busy.add(key);
    try {
      await this.pull({ ...chunk, bucket }, from.address, to.address);
      await this.options.persist((tx) => tx.addReplica(chunk.objectId, chunk.index, toId));
      this.registry.noteMove(fromId, toId, chunk.size);
      this.counters.movedChunks += 1;
    } catch (error) {
      this.fail(error);
      return false;
    } finally {
      this.busy.delete(key);
    }
    await this.dropReplica(chunk.objectId, chunk.index, fromId);
    return true;
  }

  // --- collect garbage ----------------------------------------------------------------------

  private async collect(deadlineNowMs: number): Promise<void> {
    const upIds = this.registry.all().filter((peer) => peer.state === "up").map((peer) => peer.id);
    if (upIds.length === 0) return;
    const items = await this.catalog.takeGarbage({ peerIds: upIds, limit: vssLimits.gcPageChunks, nowMs: deadlineNowMs });
    if (items.length === 0) return;
    // The catalog changes that made these replicas garbage must be durable before any bytes go.
    await this.catalog.flush();
    const done: typeof items = [];
    await Promise.all(
      items.map(async (item) => {
        const key = chunkKey(item.objectId, item.index);
        if (this.busy.has(key)) return;
        const peer = this.registry.get(item.peerId);
        if (!peer) return;
        if ((await this.catalog.findChunk(item.objectId, item.index))?.peers.includes(item.peerId)) {
          done.push(item); // the replica is live again (re-added by healing): keep the bytes
          return;
        }
        // Busy while the delete is in flight, so healing cannot copy the chunk onto this peer meanwhile.
        this.busy.add(key);
        try {
          const client = new ServiceClient(peerOps, this.options.pool, parseAddress(peer.address));
          await client.call("chunk.delete", { bucket: item.bucket, ball: item.objectId, index: item.index, vssId: this.catalog.vssId });
          done.push(item);
        } catch (error) {
          this.fail(error);
        } finally {
          this.busy.delete(key);
        }
      }),
    );
    if (done.length > 0) await this.options.persist((tx) => tx.ackGarbage(done));
  }

  // --- corrupt replicas ---------------------------------------------------------------------

  /** Overwrite a corrupt replica with a good copy from another replica of the same chunk. */
  async repairCorrupt(objectId: string, index: number, peerId: string, detail: string): Promise<boolean> {
    const located = await this.catalog.findChunk(objectId, index);
    if (!located || !located.peers.includes(peerId)) return false;
    const key = chunkKey(objectId, index);
    if (this.busy.has(key)) return false;
    const sources = located.peers.filter((id) => id !== peerId && this.isSource(id));
    const target = this.registry.get(peerId);
    const source = this.registry.get(sources[0] ?? "");
    if (!target || !source) return false;
    this.busy.add(key);
    let repaired = false;
    try {
      await this.pull({ bucket: located.bucket, objectId, index, size: located.size, checksum: located.checksum }, source.address, target.address);
      repaired = true;
      this.counters.repairedCorrupt += 1;
      this.options.event("corrupt_repaired", `repaired corrupt replica of ${located.bucket}/${located.key} chunk ${index} on ${peerId} from ${source.id} (${detail})`);
    } catch (error) {
      this.fail(error);
    } finally {
      this.busy.delete(key);
    }
    // Could not overwrite it in place: drop the bad replica (now that the chunk is no longer
    // busy, which dropReplica refuses) and healing makes a new one elsewhere.
    if (!repaired) await this.dropReplica(objectId, index, peerId);
    return repaired;
  }

  // --- helpers ------------------------------------------------------------------------------

  /**
   * Have the peer at `to` copy a chunk from the peer at `from` (it verifies the checksum before
   * storing). Every copy — heal, drain, rebalance, repair — goes through here, so all share the
   * concurrency bound and the byte-rate throttle.
   */
  private async pull(chunk: { bucket: string; objectId: string; index: number; size: number; checksum: string }, from: string, to: string): Promise<void> {
    await this.copies.with(async () => {
      await this.throttle.take(chunk.size);
      const client = new ServiceClient(peerOps, this.options.pool, parseAddress(to));
      await client.call("chunk.pull", { bucket: chunk.bucket, ball: chunk.objectId, index: chunk.index, from, checksum: chunk.checksum, vssId: this.catalog.vssId });
    });
    this.rateWindow.bytes += chunk.size;
  }

  /** Drop one replica; the catalog queues its bytes as garbage. Never the last replica. */
  private async dropReplica(objectId: string, index: number, peerId: string): Promise<boolean> {
    if (this.busy.has(chunkKey(objectId, index))) return false;
    try {
      return await this.options.persist((tx) => tx.removeReplica(objectId, index, peerId));
    } catch (error) {
      this.fail(error); // ConflictError: it was the last replica, keep it
      return false;
    }
  }

  /** A replica that counts toward rf: on a peer up or merely suspect, not draining. */
  private counts(id: string): boolean {
    const peer = this.registry.get(id);
    return peer !== undefined && peer.state !== "down" && !peer.draining;
  }

  /** A replica that counts and is known alive right now. */
  private isLive(id: string): boolean {
    const peer = this.registry.get(id);
    return peer !== undefined && peer.state === "up" && !peer.draining;
  }

  /** A replica the drain moves: on a draining peer that has not gone down (one that is down is healing's). */
  private isDrainingNotDown(id: string): boolean {
    const peer = this.registry.get(id);
    return peer !== undefined && peer.draining && peer.state !== "down";
  }

  /** A replica that can be copied from: its peer is up (draining peers still serve). */
  private isSource(id: string): boolean {
    return this.registry.get(id)?.state === "up";
  }

  private fullness(id: string): number {
    const peer = this.registry.get(id);
    return peer && peer.capacityBytes > 0 ? peer.liveBytes / peer.capacityBytes : 1;
  }

  private rollRate(nowMs: number): void {
    const elapsedMs = nowMs - this.rateWindow.startMs;
    if (elapsedMs < 1_000) return;
    this.rateWindow = { startMs: nowMs, bytes: 0, bytesPerSec: (this.rateWindow.bytes * 1000) / elapsedMs };
  }

  private fail(error: unknown): void {
    const typed = toMictlanxError(error);
    this.counters.failures += 1;
    this.counters.lastError = typed.message;
    if (typed.code === "internal" || !(error instanceof MictlanxError)) this.options.event("maintenance_error", typed.message);
  }
}

function chunkKey(objectId: string, index: number): string {
  return `${objectId}_${index}`;
}
