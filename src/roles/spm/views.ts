// Catalog records as the wire shows them.
import type { BallRecord, ChunkRecord } from "../../catalog/index.ts";
import type { BallLocated, BallMetaWire } from "../../protocol/ball.ts";
import type { Registry } from "./registry.ts";
import { ballMetaWireBytes, chunkRecordWireBytes } from "../../lib/wire-size.ts";

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

/** What a located ball weighs on the wire (an upper bound; see src/lib/wire-size.ts). */
export function ballLocatedWireBytes(ball: BallLocated): number {
  return ballMetaWireBytes(ball) + ball.chunks.reduce((sum, chunk) => sum + chunkRecordWireBytes(chunk), 0) + ball.peers.length * 128;
}

/** A ball with the first page of its chunks and where their peers are; `chunksNext` when there are more. */
export function locateBall(head: { ball: BallRecord; chunks: ChunkRecord[]; next?: number }, registry: Registry): BallLocated {
  return {
    ...ballToWire(head.ball),
    ...locateChunks(head.chunks, registry),
    ...(head.next === undefined ? {} : { chunksNext: head.next }),
  };
}

/** Chunk records as the wire shows them, with the addresses and states of the peers they name. */
export function locateChunks(chunks: Array<{ index: number; size: number; checksum: string; peers: string[] }>, registry: Registry) {
  const peerIds = new Set(chunks.flatMap((chunk) => chunk.peers));
  const peers = [...peerIds].flatMap((id) => {
    const peer = registry.get(id);
    return peer ? [{ id, address: peer.address, state: peer.state }] : [];
  });
  return { chunks: chunks.map((chunk) => ({ index: chunk.index, size: chunk.size, checksum: chunk.checksum, peers: chunk.peers })), peers };
}
