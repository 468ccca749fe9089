// The peer registry on PostgreSQL: src/catalog/peers.ts call for call (read it for the rules:
// liveness, the live counts a flip moves, what removal and a new instance forget).
import { assert } from "../../lib/assert.ts";
import { BadRequestError, ConflictError } from "../../lib/errors.ts";
import { limits } from "../../lib/limits.ts";
import { peerParams } from "../peers.ts";
import { isLive, peerFromRow, type PeerRow } from "../rows.ts";
import type { PeerRecord, PeerState } from "../types.ts";
import { checkPeer, checkPeerId, checkPeerState } from "../validate.ts";
import { all, one, run, type Db } from "./db.ts";

const peerColumns = (db: Db) => db`num, id, address, capacity_bytes, used_bytes, free_bytes, chunks, state, last_heartbeat_ms, registered_ms, draining, instance_id`;

export async function peerRow(db: Db, id: string): Promise<PeerRow | undefined> {
  checkPeerId(id);
  return one<PeerRow>(db`SELECT ${peerColumns(db)} FROM peers WHERE id = ${id}`);
}

/** Insert or replace a peer; moves live counts if its liveness changed. */
export async function upsertPeer(db: Db, peer: PeerRecord): Promise<void> {
  checkPeer(peer);
  const before = await peerRow(db, peer.id);
  if (before === undefined) return insertPeer(db, peer);
  const p = peerParams(peer);
  await db`UPDATE peers SET address = ${p.address}, capacity_bytes = ${p.capacity_bytes}, used_bytes = ${p.used_bytes}, free_bytes = ${p.free_bytes},
    chunks = ${p.chunks}, state = ${p.state}, last_heartbeat_ms = ${p.last_heartbeat_ms}, registered_ms = ${p.registered_ms}, draining = ${p.draining},
    instance_id = ${p.instance_id} WHERE id = ${p.id}`;
  await settleLiveness(db, before, isLive({ state: peer.state, draining: peer.draining }));
}

async function insertPeer(db: Db, peer: PeerRecord): Promise<void> {
  const count = (await one<{ n: number }>(db`SELECT count(*) AS n FROM peers`))!.n;
  if (count >= limits.peersMax) throw new BadRequestError(`the catalog holds ${count} peers, the limit (peersMax)`);
  const p = peerParams(peer);
  await db`INSERT INTO peers (id, address, capacity_bytes, used_bytes, free_bytes, chunks, state, last_heartbeat_ms, registered_ms, draining, instance_id)
    VALUES (${p.id}, ${p.address}, ${p.capacity_bytes}, ${p.used_bytes}, ${p.free_bytes}, ${p.chunks}, ${p.state}, ${p.last_heartbeat_ms}, ${p.registered_ms}, ${p.draining}, ${p.instance_id})`;
}

/** replicas_peer drives, chunks' primary key updates: O(replicas on the peer), once per flip. */
async function settleLiveness(db: Db, before: PeerRow, liveAfter: boolean): Promise<void> {
  if (isLive(before) === liveAfter) return;
  const delta = liveAfter ? 1 : -1;
  // The statement bound is lifted for this one and put back after it, inside the transaction.
  const bound = await one<{ was: string }>(db`SELECT current_setting('statement_timeout') AS was, set_config('statement_timeout', ${String(limits.catalogPostgresLivenessFlipTimeoutMs)}, true)`);
  assert(bound !== undefined, "no statement_timeout to put back");
  await db`UPDATE chunks AS c SET live = c.live + ${delta} FROM replicas AS r WHERE r.peer = ${before.num} AND c.ball = r.ball AND c.idx = r.idx`;
  await db`SELECT set_config('statement_timeout', ${bound.was}, true)`;
}

export async function getPeer(db: Db, id: string): Promise<PeerRecord | undefined> {
  const row = await peerRow(db, id);
  if (row === undefined) return undefined;
  const peer = peerFromRow(row);
  assert(peer.id === id, `peer lookup for ${id} returned ${peer.id}`);
  return peer;
}

export async function listPeers(db: Db): Promise<PeerRecord[]> {
  return (await all<PeerRow>(db`SELECT ${peerColumns(db)} FROM peers ORDER BY id`)).map(peerFromRow);
}

export async function setPeerState(db: Db, id: string, state: PeerState): Promise<boolean> {
  checkPeerState(state);
  const row = await peerRow(db, id);
  if (row === undefined) return false;
  await upsertPeer(db, { ...peerFromRow(row), state });
  return true;
}

export async function setDraining(db: Db, id: string, draining: boolean): Promise<boolean> {
  if (typeof draining !== "boolean") throw new BadRequestError("draining must be true or false");
  const row = await peerRow(db, id);
  if (row === undefined) return false;
  await upsertPeer(db, { ...peerFromRow(row), draining });
  return true;
}

/** replicas_peer drives, the primary key finds each chunk's other holders. */
async function forgetSharedReplicas(db: Db, num: number): Promise<number> {
  return run(db`DELETE FROM replicas AS r WHERE r.peer = ${num} AND EXISTS
    (SELECT 1 FROM replicas AS o WHERE o.ball = r.ball AND o.idx = r.idx AND o.peer <> ${num})`);
}

async function replicasOn(db: Db, num: number): Promise<number> {
  return (await one<{ n: number }>(db`SELECT count(*) AS n FROM replicas WHERE peer = ${num}`))!.n;
}

export async function removePeer(db: Db, id: string, forgetReplicas: boolean): Promise<boolean> {
  const row = await peerRow(db, id);
  if (row === undefined) return false;
  if (forgetReplicas) {
    const sole = (await one<{ n: number }>(db`SELECT count(*) AS n FROM replicas AS r WHERE r.peer = ${row.num} AND NOT EXISTS
      (SELECT 1 FROM replicas AS o WHERE o.ball = r.ball AND o.idx = r.idx AND o.peer <> ${row.num})`))!.n;
    if (sole > 0) throw new ConflictError(`peer ${id} holds the only replica of ${sole} chunks; drain it (mictlanx peer drain ${id}) or bring their other replicas back first`);
    await upsertPeer(db, { ...peerFromRow(row), state: "down" }); // live counts move once, as its replicas go
    await forgetSharedReplicas(db, row.num);
  }
  if ((await one(db`SELECT 1 AS one FROM replicas WHERE peer = ${row.num} LIMIT 1`)) !== undefined) {
    throw new ConflictError(`peer ${id} still holds replicas; drain it or remove its replicas before removing it`);
  }
  await db`DELETE FROM garbage WHERE peer_id = ${id}`;
  await db`DELETE FROM peers WHERE num = ${row.num}`;
  return true;
}

export async function countReplicasOnPeer(db: Db, id: string): Promise<number> {
  const row = await peerRow(db, id);
  return row === undefined ? 0 : replicasOn(db, row.num);
}

export async function maxRfOnPeer(db: Db, id: string): Promise<number> {
  const row = await peerRow(db, id);
  if (row === undefined) return 0;
  const found = await one<{ rf: number | null }>(db`SELECT max(c.rf) AS rf FROM replicas AS r JOIN chunks AS c ON c.ball = r.ball AND c.idx = r.idx WHERE r.peer = ${row.num}`);
  return found?.rf ?? 0;
}

export async function replacePeerInstance(db: Db, peer: PeerRecord): Promise<{ forgotten: number; kept: number }> {
  checkPeer(peer);
  const before = await peerRow(db, peer.id);
  if (before === undefined) {
    await insertPeer(db, peer);
    return { forgotten: 0, kept: 0 };
  }
  // Not live while its replicas go, so no live count moves twice; live again (if it is) after.
  await upsertPeer(db, { ...peerFromRow(before), state: "down" });
  const forgotten = await forgetSharedReplicas(db, before.num);
  const kept = await replicasOn(db, before.num);
  await db`DELETE FROM garbage WHERE peer_id = ${peer.id}`;
  await upsertPeer(db, peer);
  return { forgotten, kept };
}

/** The internal numbers and liveness of registered peers; BadRequestError for an unknown id. */
export async function resolvePeers(db: Db, ids: readonly string[]): Promise<Map<string, { num: number; live: boolean }>> {
  const unique = [...new Set(ids)];
  const rows = unique.length === 0 ? [] : await all<PeerRow>(db`SELECT ${peerColumns(db)} FROM peers WHERE id = ANY(${db.array(unique, "TEXT")}::text[])`);
  return registeredPeers(unique, rows);
}

/** A peer's row as the commit reads it, with its number and liveness. */
type NamedPeerRow = Pick<PeerRow, "num" | "id" | "state" | "draining">;

/** A subquery for a statement that also reads the rows of the peers named `ids`, as a JSON array of NamedPeerRow. */
export function namedPeersJson(db: Db, ids: readonly string[]) {
  return db`(SELECT json_agg(json_build_object('num', num, 'id', id, 'state', state, 'draining', draining)) FROM peers WHERE id = ANY(${db.array([...ids], "TEXT")}::text[]))`;
}

/** The number and liveness of each peer of `rows`, by id. */
export function peersById(rows: readonly NamedPeerRow[]): Map<string, { num: number; live: boolean }> {
  return new Map(rows.map((row) => [row.id, { num: row.num, live: isLive(row) }]));
}

/** Each of `ids` with its number and liveness, from `rows` read for them; BadRequestError names the first not registered. */
export function registeredPeers(ids: readonly string[], rows: readonly NamedPeerRow[]): Map<string, { num: number; live: boolean }> {
  for (const id of ids) checkPeerId(id);
  const found = peersById(rows);
  for (const id of ids) if (!found.has(id)) throw new BadRequestError(`peer ${id} is not registered`);
  return found;
}

export async function resolvePeer(db: Db, id: string): Promise<{ num: number; live: boolean }> {
  return (await resolvePeers(db, [id])).get(id)!;
}
