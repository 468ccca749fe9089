// The peer registry. A peer is "live" when it is not down and not draining (rows.ts isLive);
// each chunk row carries
// the number of its replicas on live peers (`live`), so a change of a peer's liveness moves
// that number for every chunk the peer holds — O(replicas on the peer), once per transition,
// which keeps counting and listing under-replicated chunks O(answer) on every heartbeat.
import { BadRequestError, ConflictError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { assert } from "../lib/assert.ts";
import { isLive, peerFromRow, type PeerRow } from "./rows.ts";
import type { Statements } from "./statements.ts";
import type { PeerRecord, PeerState } from "./types.ts";
import { checkPeer, checkPeerId, checkPeerState } from "./validate.ts";

export function peerParams(peer: PeerRecord) {
  return {
    id: peer.id,
    address: peer.address,
    capacity_bytes: peer.capacityBytes,
    used_bytes: peer.usedBytes,
    free_bytes: peer.freeBytes,
    chunks: peer.chunks,
    state: peer.state,
    last_heartbeat_ms: peer.lastHeartbeatMs,
    registered_ms: peer.registeredMs,
    draining: peer.draining ? 1 : 0,
    instance_id: peer.instanceId ?? null,
  };
}

/** Insert or replace a peer; moves live counts if its liveness changed. */
export function upsertPeer(s: Statements, peer: PeerRecord): void {
  checkPeer(peer);
  const before = s.peerById.get({ id: peer.id });
  if (before === null) return insertPeer(s, peer);
  s.peerUpdate.run(peerParams(peer));
  settleLiveness(s, before, isLive({ state: peer.state, draining: peer.draining }));
}

function insertPeer(s: Statements, peer: PeerRecord): void {
  const count = s.peerCount.get()!.n;
  if (count >= limits.peersMax) throw new BadRequestError(`the catalog holds ${count} peers, the limit (peersMax)`);
  s.peerInsert.run(peerParams(peer));
}

/** Moves every chunk's live count of this peer's replicas when its liveness flips. */
function settleLiveness(s: Statements, before: PeerRow, liveAfter: boolean): void {
  const liveBefore = isLive(before);
  if (liveBefore === liveAfter) return;
  s.shiftLive.run({ peer: before.num, delta: liveAfter ? 1 : -1 });
}

export function getPeerRow(s: Statements, id: string): PeerRow | undefined {
  checkPeerId(id);
  return s.peerById.get({ id }) ?? undefined;
}

export function getPeer(s: Statements, id: string): PeerRecord | undefined {
  const row = getPeerRow(s, id);
  if (row === undefined) return undefined;
  const peer = peerFromRow(row);
  assert(peer.id === id, `peer lookup for ${id} returned ${peer.id}`);
  return peer;
}

export function listPeers(s: Statements): PeerRecord[] {
  return s.peersAll.all().map(peerFromRow);
}

/** Returns false when no such peer is registered. */
export function setPeerState(s: Statements, id: string, state: PeerState): boolean {
  checkPeerState(state);
  const row = getPeerRow(s, id);
  if (row === undefined) return false;
  upsertPeer(s, { ...peerFromRow(row), state });
  return true;
}

export function setDraining(s: Statements, id: string, draining: boolean): boolean {
  if (typeof draining !== "boolean") throw new BadRequestError("draining must be true or false");
  const row = getPeerRow(s, id);
  if (row === undefined) return false;
  upsertPeer(s, { ...peerFromRow(row), draining });
  return true;
}

/**
 * Forget a peer and its pending garbage (nobody can delete it now). With `forgetReplicas`, the
 * replicas it holds are forgotten first (healing copies them elsewhere), unless one is a
 * chunk's only replica: then nothing changes and the ConflictError says how many. Without it,
 * a peer that holds any replica is refused.
 */
export function removePeer(s: Statements, id: string, forgetReplicas = false): boolean {
  const row = getPeerRow(s, id);
  if (row === undefined) return false;
  if (forgetReplicas) {
    const sole = s.peerSoleReplicas.get({ peer: row.num })!.n;
    if (sole > 0) throw new ConflictError(`peer ${id} holds the only replica of ${sole} chunks; drain it (mictlanx peer drain ${id}) or bring their other replicas back first`);
    upsertPeer(s, { ...peerFromRow(row), state: "down" }); // live counts move once, as its replicas go
    s.replicasForgetShared.run({ peer: row.num });
  }
  if (s.peerHasReplicas.get({ peer: row.num }) !== null) {
    throw new ConflictError(`peer ${id} still holds replicas; drain it or remove its replicas before removing it`);
  }
  s.garbageDeleteOfPeer.run({ peer_id: id });
  s.peerDelete.run({ num: row.num });
  return true;
}

export function countReplicasOnPeer(s: Statements, id: string): number {
  const row = getPeerRow(s, id);
  return row === undefined ? 0 : s.peerReplicaCount.get({ peer: row.num })!.n;
}

/** The largest replication factor among the chunks a peer holds (0 when it holds none). */
export function maxRfOnPeer(s: Statements, id: string): number {
  const row = getPeerRow(s, id);
  if (row === undefined) return 0;
  return s.peerMaxRf.get({ peer: row.num })?.rf ?? 0;
}

/**
 * A new instance of a known peer (its disk replaced or wiped): its replicas of chunks that have
 * another replica are forgotten without garbage (the bytes are gone with the old disk), its
 * pending garbage is dropped, and the record takes the new instance. Live counts move as the
 * replicas go. Chunks whose only replica was on the old disk keep it: that data is lost, and
 * the record says where it was.
 */
export function replacePeerInstance(s: Statements, peer: PeerRecord): { forgotten: number; kept: number } {
  checkPeer(peer);
  const before = s.peerById.get({ id: peer.id });
  if (before === null) {
    insertPeer(s, peer);
    return { forgotten: 0, kept: 0 };
  }
  // Not live while its replicas go, so no live count moves twice; live again (if it is) after.
  upsertPeer(s, { ...peerFromRow(before), state: "down" });
  const forgotten = s.replicasForgetShared.run({ peer: before.num }).changes;
  const kept = s.peerReplicaCount.get({ peer: before.num })!.n;
  s.garbageDeleteOfPeer.run({ peer_id: peer.id });
  upsertPeer(s, peer);
  return { forgotten, kept };
}

/** The internal number and liveness of a registered peer, or BadRequestError for an unknown id. */
export function resolvePeer(s: Statements, id: string): { num: number; live: boolean } {
  const row = getPeerRow(s, id);
  if (row === undefined) throw new BadRequestError(`peer ${id} is not registered`);
  return { num: row.num, live: isLive(row) };
}
