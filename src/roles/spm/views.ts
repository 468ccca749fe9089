// Catalog records as the wire shows them.
import type { BallRecord, ChunkRecord } from "../../catalog/index.ts";
import type { BallLocated, BallMetaWire } from "../../protocol/ball.ts";
import type { Registry } from "./registry.ts";

export function ballToWire(ball: BallRecord): BallMetaWire {
  return {
    bucket: ball.bucket,
    key: ball.key,
    ballId: ball.ballId,
    objectId: ball.objectId,
    version: ball.version,
    size: ball.size,
    checksum: ball.checksum,
    contentType: ball.contentType,
    tags: ball.tags,
    rf: ball.rf,
    createdMs: ball.createdMs,
    chunkSize: ball.chunkSize,
    numChunks: ball.numChunks,
  };
}

export function locateBall(ball: BallRecord & { chunks: ChunkRecord[] }, registry: Registry): BallLocated {
  const peerIds = new Set(ball.chunks.flatMap((chunk) => chunk.peers));
  const peers = [...peerIds].flatMap((id) => {
    const peer = registry.get(id);
    return peer ? [{ id, address: peer.address, state: peer.state }] : [];
  });
  return {
    ...ballToWire(ball),
    chunks: ball.chunks.map((chunk) => ({ index: chunk.index, size: chunk.size, checksum: chunk.checksum, peers: chunk.peers })),
    peers,
  };
}
