// The router's coalesced calls: concurrent requests of one turn go to the SPM as one batched
// call (reserveMany, commitMany, getMany) and small chunks go to a peer as one putMany or
// getMany. Each caller still gets its own result or its own typed error.
import type { RpcPool } from "../../net/pool.ts";
import { ServiceClient as Service } from "../../net/pool.ts";
import { parseAddress } from "../../net/address.ts";
import { peerOps } from "../../protocol/peer.ts";
import type { SpmOps } from "../../protocol/spm.ts";
import type { ServiceCaller } from "../../net/spm-set.ts";
import { limits, vssLimits, vssTimings } from "../../lib/limits.ts";
import { ballMetaWireBytes, chunkRecordWireBytes } from "../../lib/wire-size.ts";
import { batchFullMessage } from "../../protocol/spm.ts";
import type { ArgsOf, ResultOf } from "../../protocol/envelope.ts";
import { Coalescer, type BatchOutcome } from "../../lib/coalescer.ts";
import { Lru } from "../../lib/lru.ts";
import { errorFromWire } from "../../lib/errors.ts";

export const batchedChunkBytesMax = vssLimits.peerBatchedChunkBytesMax;
const peerBatchItemsMax = vssLimits.peerBatchItemsMax;

type Wire<T> = { ok: true; value: T } | { ok: false; code: string; message: string };

function outcome<T>(item: Wire<T>): BatchOutcome<T> {
  return item.ok ? { ok: true, value: item.value } : { ok: false, error: errorFromWire(item.code, item.message) };
}

export function spmBatches(spm: ServiceCaller<SpmOps>) {
  return {
    reserve: new Coalescer<ArgsOf<SpmOps, "ball.reserve">, ResultOf<SpmOps, "ball.reserve">>(
      async (items) => (await spm.call("ball.reserveMany", { items })).results.map(outcome),
      vssLimits.spmBatchItemsMax,
    ),
    // A commit names up to a page of chunk records: batches are cut by their bytes too.
    commit: new Coalescer<ArgsOf<SpmOps, "ball.commit">, ResultOf<SpmOps, "ball.commit">>(
      async (items) => (await spm.call("ball.commitMany", { items })).results.map(outcome),
      vssLimits.spmBatchItemsMax,
      { of: commitWireBytes, max: limits.spmBatchBytesMax },
    ),
    // The SPM ends a reply that grows past its bound early; what it did not fit is asked alone.
    get: new Coalescer<ArgsOf<SpmOps, "ball.get">, ResultOf<SpmOps, "ball.get">>(
      async (items) => {
        const { results } = await spm.call("ball.getMany", { items });
        return Promise.all(
          results.map(async (result, i) => {
            if (result.ok || result.code !== "overloaded" || result.message !== batchFullMessage) return outcome(result);
            try {
              return { ok: true as const, value: await spm.call("ball.get", items[i]!) };
            } catch (error) {
              return { ok: false as const, error: error as Error };
            }
          }),
        );
      },
      vssLimits.spmBatchItemsMax,
    ),
  };
}

function commitWireBytes(commit: ArgsOf<SpmOps, "ball.commit">): number {
  return ballMetaWireBytes({ ...commit, ballId: commit.ballId ?? commit.key }) + commit.chunks.reduce((sum, chunk) => sum + chunkRecordWireBytes(chunk), 0);
}
export type SpmBatches = ReturnType<typeof spmBatches>;

type PutItem = ArgsOf<typeof peerOps, "chunk.put">;
type GetRef = { bucket: string; ball: string; index: number };
type GetReply = { data: Uint8Array; size: number; checksum: string };

/** One coalescer per peer address, for small chunk puts and gets. */
export class PeerBatches {
  // Keyed by the peer addresses the SPM hands out, so bounded like the pool's addresses; a
  // coalescer dropped here still flushes what it holds (its own timer has it).
  private readonly puts = new Lru<string, Coalescer<PutItem, { size: number; checksum: string }>>(limits.poolAddressesMax);
  private readonly gets = new Lru<string, Coalescer<GetRef, GetReply>>(limits.poolAddressesMax);

  constructor(private readonly pool: RpcPool) {}

  put(address: string, item: PutItem): Promise<{ size: number; checksum: string }> {
    let coalescer = this.puts.get(address);
    if (!coalescer) {
      const peer = new Service(peerOps, this.pool, parseAddress(address));
      // putMany is one group commit: it succeeds or fails as a whole.
      coalescer = new Coalescer(async (items) => (await peer.call("chunk.putMany", { items })).results.map((value) => ({ ok: true as const, value })), peerBatchItemsMax);
      this.puts.set(address, coalescer);
    }
    return coalescer.call(item);
  }

  get(address: string, ref: GetRef): Promise<GetReply> {
    let coalescer = this.gets.get(address);
    if (!coalescer) {
      const peer = new Service(peerOps, this.pool, parseAddress(address));
      coalescer = new Coalescer(
        async (refs) =>
          (await peer.call("chunk.getMany", { refs }, { timeoutMs: vssTimings.replicaReadTimeoutMs })).results.map((result) =>
            result.ok ? { ok: true as const, value: { data: result.data, size: result.size, checksum: result.checksum } } : { ok: false as const, error: errorFromWire(result.code, result.message) },
          ),
        peerBatchItemsMax,
      );
      this.gets.set(address, coalescer);
    }
    return coalescer.call(ref);
  }
}
