// Writes one chunk to rf distinct peers in parallel. A peer that fails is excluded and the SPM
// places the missing replicas elsewhere, up to chunkPlaceAttemptsMax rounds.
import type { RpcPool } from "../../net/pool.ts";
import { ServiceClient } from "../../net/pool.ts";
import { parseAddress } from "../../net/address.ts";
import { peerOps } from "../../protocol/peer.ts";
import type { SpmOps } from "../../protocol/spm.ts";
import type { ServiceCaller } from "../../net/spm-set.ts";
import type { ChunkRecordWire, PeerLocation } from "../../protocol/ball.ts";
import { vssLimits } from "../../lib/limits.ts";
import type { ByteBudget } from "../../lib/byte-budget.ts";
import { UnavailableError, toMictlanxError } from "../../lib/errors.ts";
import { assert } from "../../lib/assert.ts";
import { batchedChunkBytesMax, type PeerBatches } from "./batching.ts";
import type { PlacementsAhead } from "./placements-ahead.ts";
import type { UploadLeases } from "./upload-leases.ts";

export interface ChunkWrite {
  bucket: string;
  /** The ball's key: the peers write it into the chunk's record, so the shards alone name the ball. */
  key: string;
  objectId: string;
  index: number;
  rf: number;
  data: Uint8Array;
  checksum: string;
  /** How many chunks the whole upload has, when the client said. */
  chunksHint?: number;
}

export class ChunkWriter {
  constructor(
    private readonly spm: ServiceCaller<SpmOps>,
    private readonly peers: RpcPool,
    private readonly budget: ByteBudget,
    private readonly batches: PeerBatches,
    private readonly ahead: PlacementsAhead,
    private readonly leases: UploadLeases,
  ) {}

  /** `placed`: peers the SPM already chose for this chunk (ball.reserve); else it is asked. */
  async write(chunk: ChunkWrite, placed?: PeerLocation[]): Promise<ChunkRecordWire> {
    await this.budget.acquire(chunk.data.byteLength);
    try {
      return await this.writeReplicas(chunk, placed);
    } finally {
      this.budget.release(chunk.data.byteLength);
    }
  }

  private async writeReplicas(chunk: ChunkWrite, placed?: PeerLocation[]): Promise<ChunkRecordWire> {
    const stored: string[] = [];
    const failed = new Set<string>();
    const problems: string[] = [];
    for (let attempt = 0; attempt < vssLimits.chunkPlaceAttemptsMax && stored.length < chunk.rf; attempt += 1) {
      const targets = attempt > 0 ? await this.place(chunk, stored, failed) : (placed ?? (await this.firstPlacement(chunk)));
      // No byte goes to a peer for an upload whose intent is gone or about to go.
      if (attempt === 0 && !placed) await this.leases.keep(chunk.objectId);
      const results = await Promise.allSettled(targets.map((peer) => this.putOn(peer.address, chunk)));
      results.forEach((result, i) => {
        const peer = targets[i];
        assert(peer !== undefined, "placement result without a peer");
        if (result.status === "fulfilled") stored.push(peer.id);
        else {
          failed.add(peer.id);
          problems.push(toMictlanxError(result.reason).message);
        }
      });
    }
    if (stored.length < chunk.rf) {
      throw new UnavailableError(
        `could not store chunk ${chunk.index} on ${chunk.rf} peers (stored on ${stored.length}): ${problems.slice(-3).join("; ")}`,
      );
    }
    return { index: chunk.index, size: chunk.data.byteLength, checksum: chunk.checksum, peers: stored };
  }

  /** The placement asked for ahead of this chunk; if that call failed, one asked for this chunk alone. */
  private async firstPlacement(chunk: ChunkWrite): Promise<PeerLocation[]> {
    try {
      return await this.ahead.take(chunk.objectId, chunk.index, chunk.rf, chunk.chunksHint);
    } catch {
      return this.place(chunk, [], new Set()); // its own error, if the SPM is really away, is the one reported
    }
  }

  private async place(chunk: ChunkWrite, stored: string[], failed: Set<string>): Promise<PeerLocation[]> {
    const { placements, intentTtlMs } = await this.spm.call("ball.place", {
      objectId: chunk.objectId,
      fromIndex: chunk.index,
      count: 1,
      rf: chunk.rf - stored.length,
      exclude: [...stored, ...failed],
    });
    this.leases.renewed(chunk.objectId, intentTtlMs);
    return placements[0]?.peers ?? [];
  }

  private async putOn(address: string, chunk: ChunkWrite): Promise<void> {
    const item = { bucket: chunk.bucket, key: chunk.key, ball: chunk.objectId, index: chunk.index, data: chunk.data, checksum: chunk.checksum };
    const reply =
      chunk.data.byteLength <= batchedChunkBytesMax
        ? await this.batches.put(address, item)
        : await new ServiceClient(peerOps, this.peers, parseAddress(address)).call("chunk.put", item);
    assert(reply.checksum === chunk.checksum && reply.size === chunk.data.byteLength, "peer stored a different chunk than sent");
  }
}
