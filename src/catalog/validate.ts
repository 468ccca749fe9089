// Checks on everything the catalog is asked to write. A failure is the caller's input, so it is
// a BadRequestError that says which field and which bound; records read back are checked with
// asserts instead (src/catalog/rows.ts), since a bad row there is a bug in mictlanx.
import { BadRequestError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { newNameProblem } from "../lib/names.ts";
import {
  peerStates,
  type BallInput,
  type ChunkRecord,
  type DeleteBallsQuery,
  type GarbageItem,
  type Page,
  type PeerRecord,
  type PeerState,
  type Placement,
  type PutIntent,
} from "./types.ts";

const encoder = new TextEncoder();

export function utf8Bytes(text: string): number {
  return encoder.encode(text).byteLength;
}

/**
 * A name: a non-empty, well-formed string without NUL, at most `maxBytes` UTF-8 bytes. That is
 * what reads, listings and deletes take, so names stored before the rule for new names stay
 * readable; `rule: "new"` (what a commit or an upload creates) adds that rule: no control
 * characters and no bidirectional text controls (src/lib/names.ts).
 */
export function checkName(what: string, value: unknown, maxBytes: number, rule: "stored" | "new" = "stored"): string {
  if (typeof value !== "string" || value.length === 0) throw new BadRequestError(`${what} must be a non-empty string`);
  if (!value.isWellFormed()) throw new BadRequestError(`${what} is not well-formed Unicode (a lone surrogate)`);
  if (value.includes("\u0000")) throw new BadRequestError(`${what} may not contain a NUL character`);
  const bytes = utf8Bytes(value);
  if (bytes > maxBytes) throw new BadRequestError(`${what} is ${bytes} bytes; the limit is ${maxBytes} bytes`);
  const problem = rule === "new" ? newNameProblem(what, value) : undefined;
  if (problem !== undefined) throw new BadRequestError(problem);
  return value;
}

export function checkBucket(bucket: unknown): string {
  return checkName("bucket name", bucket, limits.bucketNameBytesMax);
}
export function checkKey(key: unknown): string {
  return checkName("key", key, limits.keyBytesMax);
}
export function checkBallId(ballId: unknown): string {
  return checkName("ball id", ballId, limits.ballIdBytesMax);
}
export function checkPeerId(peerId: unknown): string {
  return checkName("peer id", peerId, limits.peerIdBytesMax);
}
export function checkObjectId(objectId: unknown): string {
  return checkName("object id", objectId, limits.objectIdBytesMax);
}

/** A whole number in [min, max]. */
export function checkInt(what: string, value: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new BadRequestError(`${what} must be a whole number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

export function checkHex(what: string, value: unknown, digits: number): string {
  if (typeof value !== "string" || value.length !== digits || !/^[0-9a-f]+$/.test(value)) {
    throw new BadRequestError(`${what} must be ${digits} lowercase hex digits, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function checkPage(page: Page): Page {
  checkInt("limit", page.limit, 1, limits.listPageMax);
  if (page.after !== undefined && typeof page.after !== "string") throw new BadRequestError("after must be a string cursor");
  return page;
}

export function checkPeerState(state: unknown): PeerState {
  if (!(peerStates as readonly unknown[]).includes(state)) {
    throw new BadRequestError(`peer state must be one of ${peerStates.join(", ")}, got ${String(state)}`);
  }
  return state as PeerState;
}

export function checkPeer(peer: PeerRecord): void {
  checkPeerId(peer.id);
  checkName("peer address", peer.address, limits.peerAddressBytesMax);
  checkInt("capacityBytes", peer.capacityBytes);
  checkInt("usedBytes", peer.usedBytes);
  checkInt("freeBytes", peer.freeBytes);
  checkInt("chunks", peer.chunks);
  checkPeerState(peer.state);
  checkInt("lastHeartbeatMs", peer.lastHeartbeatMs);
  checkInt("registeredMs", peer.registeredMs);
  if (typeof peer.draining !== "boolean") throw new BadRequestError("draining must be true or false");
  if (peer.instanceId !== undefined) checkName("peer instance id", peer.instanceId, limits.peerInstanceIdBytesMax);
}

/** A content type may be empty (unknown). */
function checkContentType(value: unknown): void {
  if (typeof value !== "string") throw new BadRequestError("contentType must be a string");
  if (value.length > 0) checkName("content type", value, limits.contentTypeBytesMax, "new");
}

export function checkTags(tags: unknown): Record<string, string> {
  if (typeof tags !== "object" || tags === null || Array.isArray(tags)) throw new BadRequestError("tags must be an object");
  const entries = Object.entries(tags);
  if (entries.length > limits.tagCountMax) {
    throw new BadRequestError(`${entries.length} tags; the limit is ${limits.tagCountMax}`);
  }
  for (const [name, value] of entries) checkTag(name, value);
  return tags as Record<string, string>;
}

/** Tags are only ever written (with a ball's commit): names and values under the rule for new names. */
function checkTag(name: string, value: unknown): void {
  checkName("tag name", name, limits.tagBytesMax, "new");
  if (typeof value !== "string" || !value.isWellFormed()) throw new BadRequestError(`tag "${name}" must have a string value`);
  const bytes = utf8Bytes(value);
  if (bytes > limits.tagBytesMax) {
    throw new BadRequestError(`tag "${name}" has a value of ${bytes} bytes; the limit is ${limits.tagBytesMax}`);
  }
  const problem = newNameProblem(`tag "${name}" value`, value);
  if (problem !== undefined) throw new BadRequestError(problem);
}

/** A ball about to be committed: a new write, so its names follow the rule for new names. */
export function checkBall(ball: BallInput): void {
  checkName("bucket name", ball.bucket, limits.bucketNameBytesMax, "new");
  checkName("key", ball.key, limits.keyBytesMax, "new");
  checkName("ball id", ball.ballId, limits.ballIdBytesMax, "new");
  checkObjectId(ball.objectId);
  checkInt("size", ball.size);
  checkHex("ball checksum", ball.checksum, 64);
  checkContentType(ball.contentType);
  checkTags(ball.tags);
  checkInt("rf", ball.rf, 1, limits.peersMax);
  checkInt("createdMs", ball.createdMs);
  checkInt("chunkSize", ball.chunkSize, 1, limits.chunkBytesMax);
  checkInt("numChunks", ball.numChunks, 0, limits.ballChunksMax);
}

/** Chunks must be exactly 0..numChunks-1 in order, sized to fit, adding up to the ball's size. */
export function checkChunks(ball: BallInput, chunks: ChunkRecord[]): void {
  if (!Array.isArray(chunks) || chunks.length !== ball.numChunks) {
    throw new BadRequestError(`ball has numChunks ${ball.numChunks} but ${chunks?.length} chunks were given`);
  }
  // Compressed or encrypted balls store chunks of other sizes than the payload's.
  const transformed = ball.tags.compression !== undefined || ball.tags.encryption !== undefined;
  let total = 0;
  chunks.forEach((chunk, position) => {
    checkChunk(chunk, position, transformed ? limits.chunkBytesMax : ball.chunkSize);
    total += chunk.size;
  });
  if (!transformed && total !== ball.size) throw new BadRequestError(`chunk sizes add up to ${total}, but the ball's size is ${ball.size}`);
  // A compressed or encrypted ball's payload is still cut into chunks of at most chunkSize.
  if (transformed && ball.size > ball.numChunks * ball.chunkSize) {
    throw new BadRequestError(`a ball of ${ball.numChunks} chunks of at most ${ball.chunkSize} bytes cannot hold ${ball.size} bytes`);
  }
}

function checkChunk(chunk: ChunkRecord, position: number, chunkSize: number): void {
  if (chunk.index !== position) throw new BadRequestError(`chunk at position ${position} has index ${chunk.index}`);
  checkInt(`chunk ${position} size`, chunk.size, 0, chunkSize);
  checkHex(`chunk ${position} checksum`, chunk.checksum, 16);
  checkPeerList(`chunk ${position} peers`, chunk.peers, 1);
}

export function checkPeerList(what: string, peers: unknown, min: number): string[] {
  if (!Array.isArray(peers) || peers.length < min || peers.length > limits.peersMax) {
    throw new BadRequestError(`${what} must list from ${min} to ${limits.peersMax} peer ids`);
  }
  for (const peer of peers) checkPeerId(peer);
  if (new Set(peers).size !== peers.length) throw new BadRequestError(`${what} lists a peer twice`);
  return peers as string[];
}

export function checkIntent(intent: PutIntent): void {
  checkObjectId(intent.objectId);
  checkName("bucket name", intent.bucket, limits.bucketNameBytesMax, "new");
  checkName("key", intent.key, limits.keyBytesMax, "new");
  checkInt("createdMs", intent.createdMs);
  checkInt("expiresMs", intent.expiresMs);
  checkPlacements(intent.placements);
  if (intent.requestId !== undefined) checkName("request id", intent.requestId, limits.requestIdBytesMax);
  if (intent.chunkBytes !== undefined) checkInt("chunkBytes", intent.chunkBytes, 0, limits.chunkBytesMax);
}

export function checkPlacements(placements: Placement[]): void {
  if (!Array.isArray(placements) || placements.length > limits.ballChunksMax) {
    throw new BadRequestError(`placements must be a list of at most ${limits.ballChunksMax}`);
  }
  placements.forEach((placement, position) => {
    checkInt(`placement ${position} index`, placement.index, 0, limits.ballChunksMax - 1);
    checkPeerList(`placement ${position} peers`, placement.peers, 0);
  });
}

export function checkGarbageItem(item: GarbageItem): void {
  checkObjectId(item.objectId);
  checkInt("chunk index", item.index, 0, limits.ballChunksMax - 1);
  checkPeerId(item.peerId);
}

/** One batch of a bulk delete: a bucket, an optional key prefix and cursor, bounded counts. */
export function checkDeleteBallsQuery(q: DeleteBallsQuery): void {
  checkBucket(q.bucket);
  if (q.prefix !== undefined && q.prefix !== "") checkKey(q.prefix);
  if (q.after !== undefined) checkKey(q.after);
  checkInt("limit", q.limit, 1, limits.deleteBatchBallsMax);
  checkInt("chunksMax", q.chunksMax, 1, limits.deleteBatchChunksMax);
}
