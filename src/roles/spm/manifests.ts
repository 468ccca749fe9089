// Manifests on the peers (docs/recovery.md): a commit writes the ball's manifest to the peers
// holding its chunk 0; an overwrite or a delete writes a tombstone for the key to the peers that
// held the old version's chunk 0. Both go out after the catalog write is durable and before the
// SPM answers, so every acknowledged put, overwrite and delete is on some peer's disk, and a
// catalog lost with its disk can be rebuilt from the peers alone (rebuild.ts).
//
// Order: each manifest carries a generation taken inside the catalog write that made it (so
// generations follow the catalog's own order) and stored with it: max(last + 1, wall ms × 1000),
// so they only grow, across restarts and even across a catalog started afresh. An overwrite
// takes two: the old version's tombstone, then the new version's manifest.
import type { BallRecord, CatalogCalls, RetireTiming } from "../../catalog/index.ts";
import type { RpcPool } from "../../net/pool.ts";
import { ServiceClient } from "../../net/pool.ts";
import { parseAddress } from "../../net/address.ts";
import { encodeManifestBody, peerOps, type ManifestWire } from "../../protocol/peer.ts";
import { assert } from "../../lib/assert.ts";
import { Coalescer } from "../../lib/coalescer.ts";
import { Lru } from "../../lib/lru.ts";
import { UnavailableError, toMictlanxError } from "../../lib/errors.ts";
import { limits, vssTimings } from "../../lib/limits.ts";
import type { Clock } from "../../lib/clock.ts";
import type { Registry } from "./registry.ts";

/** The catalog meta key the last generation is kept under. */
export const generationMetaKey = "manifest_generation";
const generationsPerMs = 1000;

/** A manifest to send once its catalog write is durable, and the peers that should hold it. */
export interface PendingManifest {
  manifest: ManifestWire;
  /** Chunk 0's holders; empty for a ball without chunks (then every up peer gets it). */
  holders: string[];
}

/** The catalog's meta, as either a store's calls (async) or the sync Catalog (a rebuild) reads and writes it. */
type Meta = Pick<CatalogCalls, "getMeta" | "setMeta"> | { getMeta(key: string): string | undefined; setMeta(key: string, value: string): void };

/**
 * The next generation, inside the catalog write it belongs to (durable with it, rolled back
 * with it): one past the last, and never below the clock's (so generations keep growing past a
 * catalog rebuilt from the peers, whose last generation was lost with it).
 */
export async function takeGeneration(catalog: Pick<CatalogCalls, "nextMetaCounter">, wallMs: number, count = 1): Promise<number> {
  return catalog.nextMetaCounter(generationMetaKey, Math.floor(wallMs) * generationsPerMs, count);
}

/** Raise the catalog's last generation to at least `floor` (a rebuilt catalog: nothing new may sort below what the peers hold). */
export async function raiseGeneration(catalog: Meta, floor: number): Promise<void> {
  const last = Number((await catalog.getMeta(generationMetaKey)) ?? "0");
  if (floor > last) await catalog.setMeta(generationMetaKey, String(floor));
}

/** Where manifests go: the addresses of peers, and a way to store manifests on one (injected, so the control plane is testable in process). */
export interface ManifestTransport {
  /** Addresses of these peers, leaving out those known to be down. */
  addressesOf(peerIds: string[]): string[];
  /** Addresses of every peer that is up and takes data. */
  upAddresses(): string[];
  /** Store one manifest on the peer at `address`; resolves once it is durable there. */
  send(address: string, manifest: ManifestWire): Promise<void>;
}

/** The real transport: the registry's addresses; one coalescer per peer, so a turn's manifests go in one `manifest.putMany`, one group commit. */
export function peerManifestTransport(registry: Registry, pool: RpcPool): ManifestTransport {
  const batches = new Lru<string, Coalescer<ManifestWire, undefined>>(limits.poolAddressesMax);
  const batchFor = (address: string) => {
    let batch = batches.get(address);
    if (!batch) {
      const peer = new ServiceClient(peerOps, pool, parseAddress(address));
      batch = new Coalescer(async (items) => {
        const { stored } = await peer.call("manifest.putMany", { items }, { timeoutMs: vssTimings.manifestDeliveryTimeoutMs });
        assert(stored === items.length, `a peer stored ${stored} of ${items.length} manifests`);
        return items.map(() => ({ ok: true as const, value: undefined }));
      }, limits.manifestBatchItemsMax);
      batches.set(address, batch);
    }
    return batch;
  };
  return {
    addressesOf: (peerIds) =>
      peerIds.flatMap((id) => {
        const peer = registry.get(id);
        return peer && peer.state !== "down" ? [peer.address] : [];
      }),
    upAddresses: () => registry.candidates().map((peer) => peer.address),
    send: (address, manifest) => batchFor(address).call(manifest),
  };
}

/**
 * Every method taking `tx` runs inside a group write (the SPM's write batcher), on its
 * transaction: the generation is taken, and the holders read, in the write that made the change.
 */
export class Manifests {
  constructor(private readonly o: { clock: Clock; transport: ManifestTransport }) {}

  /** Inside a catalog write, before `bucket/key`'s live version is retired: its tombstone-to-be. */
  async current(tx: CatalogCalls, bucket: string, key: string): Promise<{ ball: BallRecord; holders: string[] } | undefined> {
    const ball = await tx.getBallMeta(bucket, key);
    return ball && { ball, holders: await holdersOf(tx, ball) };
  }

  /**
   * Inside the write whose commit overwrote it: the tombstone of version `objectId` of
   * `bucket/key`, to the holders its chunk 0 had (its replicas are garbage now, in this same
   * write), so a commit needs no read of the version before it.
   */
  async overwritten(tx: CatalogCalls, bucket: string, key: string, objectId: string, generation?: number): Promise<PendingManifest> {
    const holders = (await tx.findRetiredChunk(objectId, 0))?.peers ?? [];
    return this.tombstone(tx, { ball: { bucket, key, objectId }, holders }, "overwritten", generation);
  }

  /** Inside the write that retired it: the tombstone of a version `current` described (with a generation the write took, or one taken now). */
  async tombstone(tx: CatalogCalls, old: { ball: Pick<BallRecord, "bucket" | "key" | "objectId">; holders: string[] }, reason: "deleted" | "overwritten", taken?: number): Promise<PendingManifest> {
    const { bucket, key, objectId } = old.ball;
    const generation = taken ?? (await takeGeneration(tx, this.o.clock.wallMs()));
    return { manifest: { bucket, key, objectId, generation, dead: true, body: encodeManifestBody({ reason }) }, holders: old.holders };
  }

  /**
   * Inside the write that committed it: the manifest of `bucket/key`'s live version. A commit
   * passes what it wrote (`committedBall`, and chunk 0's holders when it wrote chunk 0), which
   * the catalog would answer with (the catalog suites check that it does): two reads less on
   * every put's path, under the writer's lock.
   */
  async live(tx: CatalogCalls, bucket: string, key: string, committed?: { ball: BallRecord; holders?: string[] }, taken?: number): Promise<PendingManifest> {
    const ball = committed?.ball ?? (await tx.getBallMeta(bucket, key));
    assert(ball && ball.bucket === bucket && ball.key === key, `${bucket}/${key} has no live version right after its commit`);
    const generation = taken ?? (await takeGeneration(tx, this.o.clock.wallMs()));
    const { bucket: _b, key: _k, objectId, ...meta } = ball;
    const holders = committed?.holders ?? (await holdersOf(tx, ball));
    return { manifest: { bucket, key, objectId, generation, dead: false, body: encodeManifestBody({ ball: meta }) }, holders };
  }

  /** Inside a write: delete `bucket/key` and say what its tombstone is (undefined: there was none). */
  async deleteBall(tx: CatalogCalls, bucket: string, key: string, when: RetireTiming): Promise<{ ball: BallRecord; tombstone: PendingManifest } | undefined> {
    const old = await this.current(tx, bucket, key);
    const ball = await tx.deleteBall(bucket, key, when);
    if (!ball || !old) return undefined;
    assert(old.ball.objectId === ball.objectId, "a delete retired another version than the live one");
    return { ball, tombstone: await this.tombstone(tx, old, "deleted") };
  }

  /**
   * Send manifests whose catalog write is applied. Each is sent to all its holders and must be
   * durable on at least one of them (or, when none takes it, on one up peer) before this
   * resolves: else `unavailable`, and the caller's op is not acknowledged. Holders that fail are
   * not retried here (docs/recovery.md: what that leaves).
   */
  async deliver(pending: PendingManifest[]): Promise<void> {
    await Promise.all(pending.map((item) => this.deliverOne(item)));
  }

  private async deliverOne({ manifest, holders }: PendingManifest): Promise<void> {
    const { transport } = this.o;
    const reachable = transport.addressesOf(holders);
    const first = await this.sendTo(reachable, manifest);
    if (first.stored > 0) return;
    // No holder took it (all down, or the ball has no chunk 0): any up peer keeps it for a rebuild.
    const second = await this.sendTo(transport.upAddresses().filter((address) => !reachable.includes(address)), manifest);
    if (second.stored > 0) return;
    const what = manifest.dead ? `the tombstone of ${manifest.bucket}/${manifest.key}` : `the manifest of ${manifest.bucket}/${manifest.key}`;
    const problems = [...first.problems, ...second.problems].slice(-3).join("; ") || "no peer is up";
    throw new UnavailableError(`${what} reached no peer (${problems}); the catalog has the change, but a catalog rebuilt from the peers would not: retry`);
  }

  /**
   * Send to every address; settle as soon as one has it durable (the op waits for the first,
   * not the slowest: the rest still land, each in its peer's next group commit), or once all failed.
   */
  private async sendTo(addresses: string[], manifest: ManifestWire): Promise<{ stored: number; problems: string[] }> {
    if (addresses.length === 0) return { stored: 0, problems: [] };
    const problems: string[] = [];
    const sends = addresses.map((address) =>
      this.o.transport.send(address, manifest).catch((error: unknown) => {
        problems.push(`${address}: ${toMictlanxError(error).message}`);
        throw error;
      }),
    );
    try {
      await Promise.any(sends);
      return { stored: 1, problems };
    } catch {
      return { stored: 0, problems };
    }
  }

}

/** Chunk 0's replicas as the catalog has them now (none for a ball without chunks). */
async function holdersOf(tx: CatalogCalls, ball: BallRecord): Promise<string[]> {
  if (ball.numChunks === 0) return [];
  return (await tx.findChunk(ball.objectId, 0))?.peers ?? [];
}
