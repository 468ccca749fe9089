// Rebuilding a lost catalog from the peers alone (`mictlanx spm --rebuild-catalog --from-peers`,
// docs/recovery.md). Every peer named is asked for its manifests (`manifest.list`) and its chunk
// holdings (`chunk.list`), page by page; then, per (bucket, key):
//
//   T = the highest tombstone generation any peer holds for the key (0 if none);
//   the ball comes back as the live manifest of the highest generation above T whose chunks
//   0..n-1 are all held by some peer (with one checksum each, and sizes that fit the ball);
//   none survives: the key does not come back.
//
// Every peer must answer: one left out could hold the tombstone that keeps a deleted ball dead.
// The new catalog takes the peers' VSS id (so they accept it), its peers (state as last heard),
// the balls with their object ids, versions, metadata, chunks and replicas, and a generation
// floor above everything the peers hold. Healing, reconciliation (orphans: versions not chosen,
// uploads never committed) and GC then run as after any restart.
import { existsSync, renameSync } from "node:fs";
import { Catalog, type BallInput, type ChunkRecord, type PeerRecord } from "../../catalog/index.ts";
import type { RpcPool } from "../../net/pool.ts";
import { ServiceClient } from "../../net/pool.ts";
import { parseAddress } from "../../net/address.ts";
import { decodeManifestBody, peerOps, type ManifestBallWire } from "../../protocol/peer.ts";
import { assert } from "../../lib/assert.ts";
import { ConflictError, MictlanxError, UnavailableError, toMictlanxError } from "../../lib/errors.ts";
import { limits, vssLimits, vssTimings } from "../../lib/limits.ts";
import { raiseGeneration } from "./manifests.ts";

export interface RebuildOptions {
  /** The catalog file to make (DIR/catalog.sqlite). */
  catalogPath: string;
  /** Every peer of the VSS, host:port. */
  peers: string[];
  pool: RpcPool;
  /** Set a non-empty catalog aside instead of refusing. */
  force: boolean;
  log: (line: string) => void;
  /** How long a peer that does not answer is asked again (default vssTimings.rebuildPeerWaitMs). */
  peerWaitMs?: number;
}

export interface RebuildReport {
  peers: number;
  manifests: number;
  balls: number;
  chunks: number;
  /** Keys whose last version is gone (a chunk no peer holds): "bucket/key: why". */
  lost: string[];
  /** Keys whose last word is a tombstone (deleted): not restored. */
  deleted: number;
}

/** A manifest as a peer listed it, its body read: a live one's ball, or a tombstone. */
export interface FoundManifest {
  bucket: string;
  key: string;
  objectId: string;
  generation: number;
  dead: boolean;
  /** A live manifest's ball (absent for a tombstone). */
  ball?: ManifestBallWire;
}

/** What the peers said about one (bucket, key). */
export interface KeyManifests {
  tombstoneGeneration: number;
  /** Live manifests above the tombstone, one per object id (its highest generation), highest first. */
  live: FoundManifest[];
}

/** A chunk as the peers hold it: its size and checksum, and which peers agree on them. */
export interface Holding {
  size: number;
  checksum: string;
  peers: string[];
}

/** Fold every peer's manifests into the rule's view per key (pure: unit-tested). */
export function manifestsByKey(manifests: Iterable<FoundManifest>): Map<string, KeyManifests> {
  const byKey = new Map<string, { tombstoneGeneration: number; live: Map<string, FoundManifest> }>();
  for (const m of manifests) {
    const id = keyId(m.bucket, m.key);
    let entry = byKey.get(id);
    if (!entry) byKey.set(id, (entry = { tombstoneGeneration: 0, live: new Map() }));
    if (m.dead) entry.tombstoneGeneration = Math.max(entry.tombstoneGeneration, m.generation);
    else if ((entry.live.get(m.objectId)?.generation ?? 0) < m.generation) entry.live.set(m.objectId, m);
  }
  const out = new Map<string, KeyManifests>();
  for (const [id, entry] of byKey) {
    const live = [...entry.live.values()].filter((m) => m.generation > entry.tombstoneGeneration).sort((a, b) => b.generation - a.generation);
    out.set(id, { tombstoneGeneration: entry.tombstoneGeneration, live });
  }
  return out;
}

/**
 * The version that comes back for one key: the newest live manifest whose chunks all survive,
 * with its chunk records; or why none does (pure: unit-tested).
 */
export function chooseSurvivor(key: KeyManifests, holdingsOf: (objectId: string) => Map<number, Holding> | undefined): { manifest: FoundManifest; chunks: ChunkRecord[] } | { lost: string } {
  const reasons: string[] = [];
  for (const manifest of key.live) {
    const found = chunksOf(manifest, holdingsOf(manifest.objectId));
    if (Array.isArray(found)) return { manifest, chunks: found };
    reasons.push(`object ${manifest.objectId}: ${found}`);
  }
  return { lost: reasons.length === 0 ? "deleted" : reasons.join("; ") };
}

function chunksOf(manifest: FoundManifest, holdings: Map<number, Holding> | undefined): ChunkRecord[] | string {
  const ball = manifest.ball;
  assert(ball !== undefined, "a live manifest without its ball");
  const chunks: ChunkRecord[] = [];
  for (let index = 0; index < ball.numChunks; index += 1) {
    const held = holdings?.get(index);
    if (!held) return `chunk ${index} of ${ball.numChunks} is on no peer`;
    chunks.push({ index, size: held.size, checksum: held.checksum, peers: [...held.peers].sort() });
  }
  return chunks;
}

export async function rebuildCatalogFromPeers(o: RebuildOptions): Promise<RebuildReport> {
  if (o.peers.length === 0) throw new MictlanxError("usage", "--rebuild-catalog --from-peers needs --peers host:port,… naming every peer of the VSS");
  setAsideOrRefuse(o);
  o.log(`rebuilding the catalog ${o.catalogPath} from ${o.peers.length} peers: ${o.peers.join(", ")}`);
  const peers = await Promise.all(o.peers.map((address) => readPeer(o, address)));
  const vssIds = new Set(peers.flatMap((peer) => (peer.vssId === undefined ? [] : [peer.vssId])));
  if (vssIds.size > 1) throw new ConflictError(`the peers named belong to different VSSs (${[...vssIds].join(", ")}); name the peers of one VSS`);
  const byKey = manifestsByKey(peers.flatMap((peer) => peer.manifests));
  const wanted = new Set([...byKey.values()].flatMap((key) => key.live.map((m) => m.objectId)));
  const holdings = new Map<string, Map<number, Holding>>();
  for (const peer of peers) await readHoldings(o, peer, wanted, holdings);
  const generation = Math.max(0, ...peers.flatMap((peer) => peer.manifests.map((m) => m.generation)));
  const report = await writeCatalog(o, { peers, byKey, holdings, vssId: [...vssIds][0], generation });
  o.log(`rebuilt: ${report.balls} balls (${report.chunks} chunks) from ${report.manifests} manifests on ${report.peers} peers; ${report.deleted} keys stay deleted, ${report.lost.length} lost`);
  for (const line of report.lost.slice(0, limits.listPageMax)) o.log(`lost: ${line}`);
  return report;
}

/** An empty or missing catalog is rebuilt; a non-empty one only with --force, set aside first (never deleted). */
function setAsideOrRefuse(o: RebuildOptions): void {
  if (!existsSync(o.catalogPath)) return;
  const catalog = Catalog.open(o.catalogPath);
  const stats = catalog.stats();
  catalog.close();
  if (stats.balls === 0 && stats.buckets === 0) return;
  if (!o.force) {
    throw new ConflictError(`not rebuilding: the catalog ${o.catalogPath} holds ${stats.balls} balls in ${stats.buckets} buckets; stop, move it away or add --force (it is then kept as ${o.catalogPath}.before-rebuild-…)`);
  }
  const aside = `${o.catalogPath}.before-rebuild-${Date.now()}`;
  for (const suffix of ["", "-wal", "-shm"]) if (existsSync(o.catalogPath + suffix)) renameSync(o.catalogPath + suffix, aside + suffix);
  o.log(`set the catalog that was there aside as ${aside}`);
}

interface PeerRead {
  address: string;
  id: string;
  instanceId: string;
  vssId?: string;
  health: { capacityBytes: number; usedBytes: number; freeBytes: number; chunks: number };
  manifests: FoundManifest[];
}

/** Ask again while the peer does not answer (it may be starting), up to peerWaitMs; a refusal is final. */
async function patiently<T>(o: RebuildOptions, address: string, what: string, call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + (o.peerWaitMs ?? vssTimings.rebuildPeerWaitMs);
  for (;;) {
    try {
      return await call();
    } catch (error) {
      const typed = toMictlanxError(error);
      const retriable = typed.code === "unavailable" || typed.code === "timeout" || typed.code === "overloaded";
      if (!retriable || Date.now() > deadline) {
        throw new UnavailableError(`peer ${address} did not answer ${what} (${typed.message}); start it, or leave it out of --peers (what it holds is then not used)`);
      }
      await Bun.sleep(500);
    }
  }
}

async function readPeer(o: RebuildOptions, address: string): Promise<PeerRead> {
  const peer = new ServiceClient(peerOps, o.pool, parseAddress(address));
  const health = await patiently(o, address, "peer.health", () => peer.call("peer.health", {}));
  const manifests: FoundManifest[] = [];
  let identity: { peerId: string; instanceId: string; vssId?: string } | undefined;
  let after: string | undefined;
  for (;;) {
    const page = await patiently(o, address, "manifest.list", () => peer.call("manifest.list", { limit: limits.manifestListPageMax, ...(after === undefined ? {} : { after }) }));
    identity ??= page;
    for (const listed of page.manifests) {
      const { bucket, key, objectId, generation, dead } = listed;
      const body = dead ? undefined : decodeManifestBody(listed.body);
      // A tombstone counts whatever its body says (it can only keep a ball dead); a live manifest must be read to restore anything.
      if (!dead && (body === undefined || !("ball" in body))) {
        o.log(`peer at ${address}: the manifest of ${bucket}/${key} (object ${objectId}) holds metadata this build cannot read; not used`);
        continue;
      }
      manifests.push({ bucket, key, objectId, generation, dead, ...(body && "ball" in body ? { ball: body.ball } : {}) });
    }
    if (page.next === undefined) break;
    after = page.next;
  }
  assert(identity !== undefined, "a manifest listing without a first page");
  o.log(`peer ${identity.peerId} at ${address}: ${manifests.length} manifests, ${health.chunks} chunks`);
  return {
    address,
    id: identity.peerId,
    instanceId: identity.instanceId,
    ...(identity.vssId === undefined ? {} : { vssId: identity.vssId }),
    health: { capacityBytes: health.capacityBytes, usedBytes: health.usedBytes, freeBytes: health.freeBytes, chunks: health.chunks },
    manifests,
  };
}

/** The chunks of the object ids a manifest names, as this peer holds them; a peer that disagrees on a checksum is left out of that chunk. */
async function readHoldings(o: RebuildOptions, peer: PeerRead, wanted: Set<string>, holdings: Map<string, Map<number, Holding>>): Promise<void> {
  const client = new ServiceClient(peerOps, o.pool, parseAddress(peer.address));
  let after: string | undefined;
  let kept = 0;
  for (;;) {
    const page = await patiently(o, peer.address, "chunk.list", () => client.call("chunk.list", { limit: limits.listPageMax, ...(after === undefined ? {} : { after }) }));
    for (const chunk of page.chunks) {
      if (!wanted.has(chunk.ball)) continue;
      let byIndex = holdings.get(chunk.ball);
      if (!byIndex) holdings.set(chunk.ball, (byIndex = new Map()));
      const held = byIndex.get(chunk.index);
      if (!held) byIndex.set(chunk.index, { size: chunk.size, checksum: chunk.checksum, peers: [peer.id] });
      else if (held.size === chunk.size && held.checksum === chunk.checksum) held.peers.push(peer.id);
      else o.log(`peer ${peer.id} holds chunk ${chunk.index} of object ${chunk.ball} with checksum ${chunk.checksum}, others ${held.checksum}: not taken as a replica`);
      kept += 1;
    }
    if (page.next === undefined) break;
    after = page.next;
  }
  o.log(`peer ${peer.id}: ${kept} chunks belong to versions a manifest names`);
}

async function writeCatalog(
  o: RebuildOptions,
  found: { peers: PeerRead[]; byKey: Map<string, KeyManifests>; holdings: Map<string, Map<number, Holding>>; vssId: string | undefined; generation: number },
): Promise<RebuildReport> {
  const catalog = Catalog.open(o.catalogPath);
  const report: RebuildReport = { peers: found.peers.length, manifests: found.peers.reduce((n, p) => n + p.manifests.length, 0), balls: 0, chunks: 0, lost: [], deleted: 0 };
  try {
    if (found.vssId !== undefined) catalog.setMeta("vss_id", found.vssId); // read by the SPM when it opens the catalog next
    const nowMs = Date.now();
    catalog.batch(() => {
      for (const peer of found.peers) catalog.upsertPeer(peerRecord(peer, nowMs));
    });
    const items = [...found.byKey.values()];
    for (let start = 0; start < items.length; start += vssLimits.spmWriteBatchMax) {
      catalog.batch(() => {
        for (const key of items.slice(start, start + vssLimits.spmWriteBatchMax)) restoreKey(catalog, key, found.holdings, report);
      });
      if (start > 0 && start % (vssLimits.spmWriteBatchMax * 20) === 0) o.log(`restored ${report.balls} balls so far (${start} of ${items.length} keys looked at)`);
    }
    await raiseGeneration(catalog, found.generation); // its own transaction: setMeta
    const problems = catalog.audit();
    if (problems.length > 0) throw new MictlanxError("internal", `the rebuilt catalog fails its own audit: ${problems.slice(0, 3).join("; ")}`);
  } finally {
    catalog.close();
  }
  return report;
}

function restoreKey(catalog: Catalog, key: KeyManifests, holdings: Map<string, Map<number, Holding>>, report: RebuildReport): void {
  const survivor = chooseSurvivor(key, (objectId) => holdings.get(objectId));
  if ("lost" in survivor) {
    if (key.live.length === 0) report.deleted += 1;
    else report.lost.push(`${describeKey(key)}: ${survivor.lost}`);
    return;
  }
  const { manifest, chunks } = survivor;
  const meta = manifest.ball;
  assert(meta !== undefined, "a chosen manifest without its ball");
  const { version, ...rest } = meta;
  const ball: BallInput = { ...rest, bucket: manifest.bucket, key: manifest.key, objectId: manifest.objectId };
  try {
    catalog.commitBall(ball, chunks, { restoredVersion: version });
    report.balls += 1;
    report.chunks += chunks.length;
  } catch (error) {
    report.lost.push(`${manifest.bucket}/${manifest.key}: the catalog refused object ${manifest.objectId}: ${toMictlanxError(error).message}`);
  }
}

function describeKey(key: KeyManifests): string {
  const first = key.live[0];
  return first ? `${first.bucket}/${first.key}` : "(a key)";
}

function peerRecord(peer: PeerRead, nowMs: number): PeerRecord {
  return { id: peer.id, address: peer.address, ...peer.health, state: "up", lastHeartbeatMs: nowMs, registeredMs: nowMs, draining: false, instanceId: peer.instanceId };
}

function keyId(bucket: string, key: string): string {
  return `${bucket}\u0000${key}`;
}
