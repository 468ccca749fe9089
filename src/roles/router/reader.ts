// Reads one chunk: replicas on live peers first, least busy first; every chunk's bytes are
// checked against the catalog's checksum before they leave the router. A replica that fails
// its checksum is reported to the SPM (which repairs it) and the next one is tried. If every
// known replica fails, the locations are refreshed once from the SPM (healing or a drain may
// have moved them) and tried again.
import type { RpcPool } from "../../net/pool.ts";
import { ServiceClient } from "../../net/pool.ts";
import { parseAddress } from "../../net/address.ts";
import { peerOps } from "../../protocol/peer.ts";
import type { SpmOps } from "../../protocol/spm.ts";
import type { ServiceCaller } from "../../net/spm-set.ts";
import type { BallLocated } from "../../protocol/ball.ts";
import { limits, vssLimits, vssTimings } from "../../lib/limits.ts";
import { Lru } from "../../lib/lru.ts";
import { chunkChecksum, checksumHex } from "../../lib/checksum.ts";
import { CorruptError, UnavailableError, toMictlanxError } from "../../lib/errors.ts";
import { batchedChunkBytesMax, type PeerBatches } from "./batching.ts";

interface Location {
  size: number;
  checksum: string;
  peers: Array<{ id: string; address: string; state: string }>;
}

export interface ChunkRead {
  data: Uint8Array;
  size: number;
  checksum: string;
}

export class ChunkReader {
  private readonly locations = new Lru<string, Location>(vssLimits.routerBallCacheEntries * 4);
  /** Peers (by address) whose last read timed out, until when they are asked last. */
  private readonly slow = new Lru<string, number>(limits.poolAddressesMax);

  constructor(
    private readonly spm: ServiceCaller<SpmOps>,
    private readonly peers: RpcPool,
    private readonly batches: PeerBatches,
    private readonly log?: (line: string) => void,
  ) {}

  /** Cache where a ball's chunks are (object ids are immutable versions; locations may move). */
  remember(ball: BallLocated): void {
    this.rememberChunks(ball.objectId, ball);
  }

  /** Cache a page of a version's chunk locations. */
  rememberChunks(objectId: string, page: Pick<BallLocated, "chunks" | "peers">): void {
    const ball = { objectId, ...page };
    const byId = new Map(ball.peers.map((peer) => [peer.id, peer]));
    for (const chunk of ball.chunks) {
      const peers = chunk.peers.flatMap((id) => {
        const peer = byId.get(id);
        return peer ? [peer] : [];
      });
      this.locations.set(locationKey(ball.objectId, chunk.index), { size: chunk.size, checksum: chunk.checksum, peers });
    }
  }

  async read(bucket: string, objectId: string, index: number): Promise<ChunkRead> {
    const key = locationKey(objectId, index);
    const cached = this.locations.get(key);
    const problems: string[] = [];
    if (cached) {
      const found = await this.tryReplicas(bucket, objectId, index, cached, problems);
      if (found) return found;
    }
    const fresh = await this.spm.call("chunk.locate", { objectId, index });
    this.locations.set(key, fresh);
    const found = await this.tryReplicas(bucket, objectId, index, fresh, problems);
    if (found) return found;
    throw new UnavailableError(`no replica of chunk ${index} could be read: ${problems.slice(-4).join("; ") || "no live replica"}`);
  }

  private async tryReplicas(bucket: string, objectId: string, index: number, location: Location, problems: string[]): Promise<ChunkRead | undefined> {
    for (const peer of this.order(location.peers)) {
      try {
        const ref = { bucket, ball: objectId, index };
        const reply =
          location.size <= batchedChunkBytesMax
            ? await this.batches.get(peer.address, ref)
            : await new ServiceClient(peerOps, this.peers, parseAddress(peer.address)).call("chunk.get", ref, { timeoutMs: vssTimings.replicaReadTimeoutMs });
        const actual = checksumHex(chunkChecksum(reply.data));
        if (actual !== location.checksum || reply.data.byteLength !== location.size) {
          throw new CorruptError(`peer ${peer.id} returned chunk ${index} with checksum ${actual}, expected ${location.checksum}`);
        }
        return { data: reply.data, size: reply.data.byteLength, checksum: actual };
      } catch (error) {
        const typed = toMictlanxError(error);
        problems.push(typed.message);
        // A replica whose bytes are wrong, or that its peer does not have although the catalog
        // says it does (a wiped disk, say): the SPM repairs it from a good one.
        if (typed.code === "corrupt") this.report(objectId, index, peer.id, typed.message, "corrupt");
        if (typed.code === "not_found") this.report(objectId, index, peer.id, typed.message, "missing");
        // A peer that did not answer in time is asked last for a while: it may be stopped.
        if (typed.code === "timeout") this.slow.set(peer.address, performance.now() + vssTimings.replicaSlowForMs);
      }
    }
    return undefined;
  }

  /**
   * Up peers first, then the rest; a peer that recently let a read time out after those; among
   * equals the one with fewer requests outstanding.
   */
  private order(peers: Location["peers"]): Location["peers"] {
    const nowMs = performance.now();
    const slow = (address: string) => ((this.slow.get(address) ?? 0) > nowMs ? 3 : 0);
    const rank = (peer: { state: string; address: string }) => (peer.state === "up" ? 0 : peer.state === "suspect" ? 1 : 2) + slow(peer.address);
    return [...peers].sort((a, b) => rank(a) - rank(b) || this.peers.inFlight(parseAddress(a.address)) - this.peers.inFlight(parseAddress(b.address)));
  }

  private report(objectId: string, index: number, peerId: string, detail: string, problem: "corrupt" | "missing"): void {
    this.spm.call("replica.corrupt", { objectId, index, peerId, detail: detail.slice(0, 1000), problem }).catch((error) => {
      this.log?.(`could not report a ${problem} replica to the SPM: ${toMictlanxError(error).message}`);
    });
  }
}

function locationKey(objectId: string, index: number): string {
  return `${objectId}_${index}`;
}
