// Every statement the catalog runs, prepared once at open. The comment beside each names the
// index it runs on (see the schema notes at the top of catalog.ts).
import type { Database, Statement } from "bun:sqlite";
import type { BallRow, ChunkRow, HolderRow, PeerRow } from "./rows.ts";
import { ballColumns } from "./rows.ts";

type Binding = string | number | Uint8Array | null;
type Params = Record<string, Binding>;
type Stmt<Row, P extends Params = Params> = Statement<Row, [P]>;
type NoParams<Row> = Statement<Row, []>;

const peerColumns =
  "num, id, address, capacity_bytes, used_bytes, free_bytes, chunks, state, last_heartbeat_ms, registered_ms, draining, instance_id";

type Totals = {
  balls: number;
  bytes: number;
  buckets: number;
  chunks: number;
  replicas: number;
  under: number;
  garbage: number;
  intents: number;
  intent_bytes: number;
};
type GarbageRow = { seq: number; object_id: string; idx: number; peer_id: string; bucket: string };
type IntentRow = { object_id: string; bucket: string; key: string; created_ms: number; expires_ms: number; request_id: string | null; chunk_bytes: number };
/** Holders as JSON text `[[peerId, live 0|1], ...]` sorted by peer id (replicas PRIMARY KEY). */
type ChunkPageRow = ChunkRow & { object_id: string; bucket: string; key: string; holders: string };

/** A chunk's holders in one correlated subquery, so a page of chunks is one statement. */
const holdersJson = `(SELECT json_group_array(json_array(p.id, p.state <> 'down' AND p.draining = 0) ORDER BY p.id)
  FROM replicas AS h JOIN peers AS p ON p.num = h.peer WHERE h.ball = c.ball AND h.idx = c.idx) AS holders`;
/**
 * A replica row's holder by primary-key lookups on peers, with no join and no ORDER BY: in the
 * SQLite Bun carries (3.54), a statement with a join or a sort costs ~8–10 µs more per run than
 * one of index lookups (~1–2 µs), and these run on every put (the manifest's holders) and every
 * get (a ball's chunk page). Rows come in replicas PRIMARY KEY order (ball, idx, peer number);
 * callers order each chunk's holders by peer id with sortHolders (rows.ts).
 */
const holderColumns = `r.idx, (SELECT id FROM peers WHERE num = r.peer) AS id, (SELECT state <> 'down' AND draining = 0 FROM peers WHERE num = r.peer) AS live`;
type BucketRow = { name: string; created_ms: number; balls: number; bytes: number };
type AccessKeyRow = { access_key: string; secret_sealed: Uint8Array; grants: string; admin: number; created_ms: number; revoked_ms: number | null };
type AuditRow = { seq: number; at_ms: number; access_key: string | null; remote: string; action: string; target: string; outcome: string };
const accessKeyColumns = "access_key, secret_sealed, grants, admin, created_ms, revoked_ms";

export function prepareStatements(db: Database) {
  const p = <Row, P extends Params = Params>(sql: string): Stmt<Row, P> => db.prepare<Row, [P]>(sql);
  const q = <Row>(sql: string): NoParams<Row> => db.prepare<Row, []>(sql);
  return {
    // --- peers: PRIMARY KEY num, UNIQUE id ----------------------------------------------------
    peerById: p<PeerRow, { id: string }>(`SELECT ${peerColumns} FROM peers WHERE id = $id`),
    peerByNum: p<PeerRow, { num: number }>(`SELECT ${peerColumns} FROM peers WHERE num = $num`),
    peersAll: q<PeerRow>(`SELECT ${peerColumns} FROM peers ORDER BY id`),
    peerCount: q<{ n: number }>("SELECT count(*) AS n FROM peers"),
    peerInsert: p(
      `INSERT INTO peers (id, address, capacity_bytes, used_bytes, free_bytes, chunks, state, last_heartbeat_ms, registered_ms, draining, instance_id)
       VALUES ($id, $address, $capacity_bytes, $used_bytes, $free_bytes, $chunks, $state, $last_heartbeat_ms, $registered_ms, $draining, $instance_id)`,
    ),
    peerUpdate: p(
      `UPDATE peers SET address = $address, capacity_bytes = $capacity_bytes, used_bytes = $used_bytes, free_bytes = $free_bytes,
       chunks = $chunks, state = $state, last_heartbeat_ms = $last_heartbeat_ms, registered_ms = $registered_ms, draining = $draining,
       instance_id = $instance_id WHERE id = $id`,
    ),
    peerDelete: p<unknown, { num: number }>("DELETE FROM peers WHERE num = $num"),
    // replicas_peer (peer, ball, idx): O(1) existence check
    peerHasReplicas: p<{ one: number }, { peer: number }>("SELECT 1 AS one FROM replicas WHERE peer = $peer LIMIT 1"),
    peerReplicaCount: p<{ n: number }, { peer: number }>("SELECT count(*) AS n FROM replicas WHERE peer = $peer"),
    // replicas_peer drives, the PK counts the other holders: O(replicas on the peer)
    peerSoleReplicas: p<{ n: number }, { peer: number }>(
      `SELECT count(*) AS n FROM replicas AS r WHERE r.peer = $peer AND NOT EXISTS
       (SELECT 1 FROM replicas AS o WHERE o.ball = r.ball AND o.idx = r.idx AND o.peer <> $peer)`,
    ),
    // replicas_peer drives: the largest rf among the chunks a peer holds (can a drain finish?)
    peerMaxRf: p<{ rf: number | null }, { peer: number }>(
      "SELECT max(c.rf) AS rf FROM replicas AS r JOIN chunks AS c ON c.ball = r.ball AND c.idx = r.idx WHERE r.peer = $peer",
    ),
    // replicas_peer drives; the PK counts each chunk's other holders: O(replicas on the peer)
    replicasForgetShared: p<unknown, { peer: number }>(
      `DELETE FROM replicas WHERE peer = $peer AND EXISTS
       (SELECT 1 FROM replicas AS o WHERE o.ball = replicas.ball AND o.idx = replicas.idx AND o.peer <> $peer)`,
    ),
    // replicas_peer drives, chunks PRIMARY KEY updates: O(replicas on the peer)
    shiftLive: p<unknown, { peer: number; delta: number }>(
      "UPDATE chunks SET live = live + $delta WHERE (ball, idx) IN (SELECT ball, idx FROM replicas WHERE peer = $peer)",
    ),

    // --- buckets: PRIMARY KEY name ------------------------------------------------------------
    bucketEnsure: p<unknown, { name: string; created_ms: number }>(
      "INSERT OR IGNORE INTO buckets (name, created_ms) VALUES ($name, $created_ms)",
    ),
    bucketPage: p<BucketRow, { after: string; limit: number }>(
      "SELECT name, created_ms, balls, bytes FROM buckets WHERE name > $after ORDER BY name LIMIT $limit",
    ),
    bucketPageFirst: p<BucketRow, { limit: number }>(
      "SELECT name, created_ms, balls, bytes FROM buckets ORDER BY name LIMIT $limit",
    ),
    bucketGet: p<BucketRow, { name: string }>("SELECT name, created_ms, balls, bytes FROM buckets WHERE name = $name"),
    bucketDelete: p<unknown, { name: string }>("DELETE FROM buckets WHERE name = $name AND balls = 0"),

    // --- balls: balls_key (bucket, key), balls_object (object_id) ----------------------------
    ballByKey: p<BallRow, { bucket: string; key: string }>(`SELECT ${ballColumns} FROM balls WHERE bucket = $bucket AND key = $key`),
    ballByObject: p<BallRow, { object_id: string }>(`SELECT ${ballColumns} FROM balls WHERE object_id = $object_id`),
    ballById: p<BallRow, { id: number }>(`SELECT ${ballColumns} FROM balls WHERE id = $id`),
    ballInsert: p(
      `INSERT INTO balls (bucket, key, ball_id, object_id, version, size, checksum, content_type, tags, rf, created_ms, chunk_size, num_chunks)
       VALUES ($bucket, $key, $ball_id, $object_id, $version, $size, $checksum, $content_type, $tags, $rf, $created_ms, $chunk_size, $num_chunks)`,
    ),
    ballDelete: p<unknown, { id: number }>("DELETE FROM balls WHERE id = $id"),

    // --- chunks: PRIMARY KEY (ball, idx); chunks_under / chunks_over partial indexes ----------
    chunkInsert: p(
      "INSERT INTO chunks (ball, idx, size, checksum, rf, live) VALUES ($ball, $idx, $size, $checksum, $rf, $live)",
    ),
    // No ORDER BY (nor LIMIT) on the read paths of every get: each costs ~8–10 µs per run in
    // this SQLite (see holderColumns); callers order the rows with byIndex (rows.ts).
    chunksOfBall: p<ChunkRow, { ball: number }>("SELECT ball, idx, size, checksum, rf, live FROM chunks WHERE ball = $ball"),
    chunkGet: p<ChunkRow, { ball: number; idx: number }>(
      "SELECT ball, idx, size, checksum, rf, live FROM chunks WHERE ball = $ball AND idx = $idx",
    ),
    chunkAddLive: p<unknown, { ball: number; idx: number; delta: number }>(
      "UPDATE chunks SET live = live + $delta WHERE ball = $ball AND idx = $idx",
    ),
    chunksDeleteOfBall: p<unknown, { ball: number }>("DELETE FROM chunks WHERE ball = $ball"),
    // chunks_under: reads only the under-replicated chunks, in (ball, idx) order
    underPage: p<ChunkPageRow, { ball: number; idx: number; limit: number }>(
      `SELECT c.ball, c.idx, c.size, c.checksum, c.rf, c.live, b.object_id, b.bucket, b.key, ${holdersJson}
       FROM chunks AS c INDEXED BY chunks_under JOIN balls AS b ON b.id = c.ball
       WHERE c.live < c.rf AND (c.ball, c.idx) > ($ball, $idx) ORDER BY c.ball, c.idx LIMIT $limit`,
    ),
    // chunks_over: reads only the over-replicated chunks
    overPage: p<ChunkPageRow, { ball: number; idx: number; limit: number }>(
      `SELECT c.ball, c.idx, c.size, c.checksum, c.rf, c.live, b.object_id, b.bucket, b.key, ${holdersJson}
       FROM chunks AS c INDEXED BY chunks_over JOIN balls AS b ON b.id = c.ball
       WHERE c.live > c.rf AND (c.ball, c.idx) > ($ball, $idx) ORDER BY c.ball, c.idx LIMIT $limit`,
    ),
    // replicas_peer drives: one peer's chunks in (ball, idx) order
    peerChunkPage: p<ChunkPageRow, { peer: number; ball: number; idx: number; limit: number }>(
      `SELECT c.ball, c.idx, c.size, c.checksum, c.rf, c.live, b.object_id, b.bucket, b.key, ${holdersJson}
       FROM replicas AS r JOIN chunks AS c ON c.ball = r.ball AND c.idx = r.idx JOIN balls AS b ON b.id = r.ball
       WHERE r.peer = $peer AND (r.ball, r.idx) > ($ball, $idx) ORDER BY r.ball, r.idx LIMIT $limit`,
    ),

    // --- replicas: PRIMARY KEY (ball, idx, peer) ---------------------------------------------
    replicaInsert: p<unknown, { ball: number; idx: number; peer: number }>(
      "INSERT OR IGNORE INTO replicas (ball, idx, peer) VALUES ($ball, $idx, $peer)",
    ),
    replicaGet: p<{ one: number }, { ball: number; idx: number; peer: number }>(
      "SELECT 1 AS one FROM replicas WHERE ball = $ball AND idx = $idx AND peer = $peer",
    ),
    replicaDelete: p<unknown, { ball: number; idx: number; peer: number }>(
      "DELETE FROM replicas WHERE ball = $ball AND idx = $idx AND peer = $peer",
    ),
    replicaCount: p<{ n: number }, { ball: number; idx: number }>(
      "SELECT count(*) AS n FROM replicas WHERE ball = $ball AND idx = $idx",
    ),
    replicasDeleteOfBall: p<unknown, { ball: number }>("DELETE FROM replicas WHERE ball = $ball"),
    holdersOfBall: p<HolderRow, { ball: number }>(`SELECT ${holderColumns} FROM replicas AS r WHERE r.ball = $ball`),
    // chunks PRIMARY KEY (ball, idx) and replicas PRIMARY KEY: one page of a ball's chunks
    chunksOfBallRange: p<ChunkRow, { ball: number; from: number; to: number }>(
      "SELECT ball, idx, size, checksum, rf, live FROM chunks WHERE ball = $ball AND idx >= $from AND idx < $to",
    ),
    holdersOfBallRange: p<HolderRow, { ball: number; from: number; to: number }>(
      `SELECT ${holderColumns} FROM replicas AS r WHERE r.ball = $ball AND r.idx >= $from AND r.idx < $to`,
    ),
    // intent_chunks PRIMARY KEY (object_id, idx): chunk records staged for a big commit
    stagedInsert: p<unknown, { object_id: string; idx: number; size: number; checksum: Uint8Array; peers: string }>(
      "INSERT OR REPLACE INTO intent_chunks (object_id, idx, size, checksum, peers) VALUES ($object_id, $idx, $size, $checksum, $peers)",
    ),
    stagedOf: p<{ idx: number; size: number; checksum: Uint8Array; peers: string }, { object_id: string }>(
      "SELECT idx, size, checksum, peers FROM intent_chunks WHERE object_id = $object_id ORDER BY idx",
    ),
    stagedCount: p<{ n: number }, { object_id: string }>("SELECT count(*) AS n FROM intent_chunks WHERE object_id = $object_id"),
    stagedDelete: p<unknown, { object_id: string }>("DELETE FROM intent_chunks WHERE object_id = $object_id"),
    holdersOfChunk: p<HolderRow, { ball: number; idx: number }>(`SELECT ${holderColumns} FROM replicas AS r WHERE r.ball = $ball AND r.idx = $idx`),

    // --- garbage: garbage_replica (object_id, idx, peer_id), garbage_peer (peer_id, seq) -------
    garbageInsert: p<unknown, { object_id: string; idx: number; peer_id: string; bucket: string }>(
      "INSERT OR IGNORE INTO garbage (object_id, idx, peer_id, bucket) VALUES ($object_id, $idx, $peer_id, $bucket)",
    ),
    // A retired version's replicas, kept until not_before_ms for readers still streaming it,
    // with the size and checksum a reader's router needs to find and check them meanwhile.
    garbageOfBall: p<unknown, { ball: number; object_id: string; bucket: string; not_before_ms: number }>(
      `INSERT OR IGNORE INTO garbage (object_id, idx, peer_id, bucket, not_before_ms, size, checksum)
       SELECT $object_id, r.idx, p.id, $bucket, $not_before_ms, c.size, c.checksum
       FROM replicas AS r JOIN peers AS p ON p.num = r.peer JOIN chunks AS c ON c.ball = r.ball AND c.idx = r.idx
       WHERE r.ball = $ball ORDER BY r.idx, p.id`,
    ),
    // garbage_replica range (object_id, idx): a page of a retired version's replicas not yet deleted
    garbageOfChunkRange: p<{ idx: number; peer_id: string; size: number; checksum: Uint8Array }, { object_id: string; from: number; to: number }>(
      `SELECT idx, peer_id, size, checksum FROM garbage
       WHERE object_id = $object_id AND idx >= $from AND idx < $to AND size IS NOT NULL AND checksum IS NOT NULL ORDER BY idx, peer_id`,
    ),
    // garbage_replica prefix (object_id, idx): a retired chunk's replicas not yet deleted (rows
    // without a size are placements that were never written: nothing there to read)
    garbageOfChunk: p<{ peer_id: string; size: number; checksum: Uint8Array; not_before_ms: number }, { object_id: string; idx: number }>(
      `SELECT peer_id, size, checksum, not_before_ms FROM garbage
       WHERE object_id = $object_id AND idx = $idx AND size IS NOT NULL AND checksum IS NOT NULL ORDER BY peer_id`,
    ),
    garbageGet: p<{ one: number }, { object_id: string; idx: number; peer_id: string }>(
      "SELECT 1 AS one FROM garbage WHERE object_id = $object_id AND idx = $idx AND peer_id = $peer_id",
    ),
    garbageDelete: p<unknown, { object_id: string; idx: number; peer_id: string }>(
      "DELETE FROM garbage WHERE object_id = $object_id AND idx = $idx AND peer_id = $peer_id",
    ),
    garbageDeleteOfPeer: p<unknown, { peer_id: string }>("DELETE FROM garbage WHERE peer_id = $peer_id"),
    garbageOfObject: p<{ bucket: string }, { object_id: string }>("SELECT bucket FROM garbage WHERE object_id = $object_id LIMIT 1"),
    garbageOldest: p<GarbageRow, { limit: number; now: number }>(
      "SELECT seq, object_id, idx, peer_id, bucket FROM garbage WHERE not_before_ms <= $now ORDER BY seq LIMIT $limit",
    ),
    // garbage_due (peer_id, not_before_ms, seq): what a peer may delete now, soonest due first
    garbageDueOfPeer: p<GarbageRow, { peer_id: string; limit: number; now: number }>(
      `SELECT seq, object_id, idx, peer_id, bucket FROM garbage INDEXED BY garbage_due
       WHERE peer_id = $peer_id AND not_before_ms <= $now ORDER BY not_before_ms, seq LIMIT $limit`,
    ),

    // --- intents: PRIMARY KEY object_id, intents_expiry; intent_placements PRIMARY KEY ------
    intentGet: p<IntentRow, { object_id: string }>(
      "SELECT object_id, bucket, key, created_ms, expires_ms, request_id, chunk_bytes FROM intents WHERE object_id = $object_id",
    ),
    intentInsert: p<unknown, IntentRow>(
      `INSERT INTO intents (object_id, bucket, key, created_ms, expires_ms, request_id, chunk_bytes)
       VALUES ($object_id, $bucket, $key, $created_ms, $expires_ms, $request_id, $chunk_bytes)`,
    ),
    // PRIMARY KEY; the intents_bytes_update trigger carries the change into totals.intent_bytes
    intentAddPlaced: p<unknown, { object_id: string; replicas: number }>(
      "UPDATE intents SET placed_bytes = placed_bytes + chunk_bytes * $replicas WHERE object_id = $object_id",
    ),
    intentExtend: p<unknown, { object_id: string; expires_ms: number }>(
      "UPDATE intents SET expires_ms = max(expires_ms, $expires_ms) WHERE object_id = $object_id",
    ),
    // intents_request (request_id): a retried put finds the upload its first try began
    intentByRequest: p<IntentRow, { request_id: string }>(
      "SELECT object_id, bucket, key, created_ms, expires_ms, request_id, chunk_bytes FROM intents INDEXED BY intents_request WHERE request_id = $request_id",
    ),
    // requests PRIMARY KEY: a retried put whose first try committed; requests_age prunes
    requestGet: p<{ object_id: string; version: number; created_ms: number }, { request_id: string }>(
      "SELECT object_id, version, created_ms FROM requests WHERE request_id = $request_id",
    ),
    requestInsert: p<unknown, { request_id: string; object_id: string; version: number; created_ms: number }>(
      "INSERT OR IGNORE INTO requests (request_id, object_id, version, created_ms) VALUES ($request_id, $object_id, $version, $created_ms)",
    ),
    requestsPrune: p<unknown, { before: number }>("DELETE FROM requests WHERE created_ms < $before"),
    intentsExtendAll: p<unknown, { expires_ms: number }>("UPDATE intents SET expires_ms = $expires_ms WHERE expires_ms < $expires_ms"),
    intentDelete: p<unknown, { object_id: string }>("DELETE FROM intents WHERE object_id = $object_id"),
    intentsExpired: p<IntentRow, { now: number; limit: number }>(
      `SELECT object_id, bucket, key, created_ms, expires_ms, request_id, chunk_bytes FROM intents INDEXED BY intents_expiry
       WHERE expires_ms <= $now ORDER BY expires_ms LIMIT $limit`,
    ),
    placementInsert: p<unknown, { object_id: string; idx: number; peer_id: string }>(
      "INSERT OR IGNORE INTO intent_placements (object_id, idx, peer_id) VALUES ($object_id, $idx, $peer_id)",
    ),
    placementGet: p<{ one: number }, { object_id: string; idx: number; peer_id: string }>(
      "SELECT 1 AS one FROM intent_placements WHERE object_id = $object_id AND idx = $idx AND peer_id = $peer_id",
    ),
    placementsOf: p<{ idx: number; peer_id: string }, { object_id: string }>(
      "SELECT idx, peer_id FROM intent_placements WHERE object_id = $object_id ORDER BY idx, peer_id",
    ),
    placementsDelete: p<unknown, { object_id: string }>("DELETE FROM intent_placements WHERE object_id = $object_id"),
    placementsTake: p<{ idx: number; peer_id: string }, { object_id: string }>(
      "DELETE FROM intent_placements WHERE object_id = $object_id RETURNING idx, peer_id",
    ),
    // intent_placements PRIMARY KEY drives; only placements on registered peers become garbage
    placementsToGarbage: p<unknown, { object_id: string; bucket: string }>(
      `INSERT OR IGNORE INTO garbage (object_id, idx, peer_id, bucket)
       SELECT i.object_id, i.idx, i.peer_id, $bucket FROM intent_placements AS i
       WHERE i.object_id = $object_id AND EXISTS (SELECT 1 FROM peers WHERE id = i.peer_id) ORDER BY i.idx, i.peer_id`,
    ),
    // retired PRIMARY KEY object_id; retired_age (retired_ms) prunes
    retiredInsert: p<unknown, { object_id: string; bucket: string; retired_ms: number; reason: string }>(
      "INSERT OR REPLACE INTO retired (object_id, bucket, retired_ms, reason) VALUES ($object_id, $bucket, $retired_ms, $reason)",
    ),
    retiredGet: p<{ bucket: string; retired_ms: number; reason: string }, { object_id: string }>(
      "SELECT bucket, retired_ms, reason FROM retired WHERE object_id = $object_id",
    ),
    retiredPrune: p<unknown, { before: number }>("DELETE FROM retired WHERE retired_ms < $before"),

    // --- access keys: PRIMARY KEY access_key -------------------------------------------------
    accessKeyInsert: p<unknown, { access_key: string; secret_sealed: Uint8Array; grants: string; admin: number; created_ms: number }>(
      "INSERT INTO access_keys (access_key, secret_sealed, grants, admin, created_ms) VALUES ($access_key, $secret_sealed, $grants, $admin, $created_ms)",
    ),
    accessKeyGet: p<AccessKeyRow, { access_key: string }>(`SELECT ${accessKeyColumns} FROM access_keys WHERE access_key = $access_key`),
    accessKeyPage: p<AccessKeyRow, { after: string; limit: number }>(
      `SELECT ${accessKeyColumns} FROM access_keys WHERE access_key > $after ORDER BY access_key LIMIT $limit`,
    ),
    accessKeyRevoke: p<unknown, { access_key: string; revoked_ms: number }>(
      "UPDATE access_keys SET revoked_ms = $revoked_ms WHERE access_key = $access_key AND revoked_ms IS NULL",
    ),
    accessKeyCount: q<{ n: number }>("SELECT count(*) AS n FROM access_keys"),

    // --- audit log: PRIMARY KEY seq ---------------------------------------------------------
    auditInsert: p<unknown, { at_ms: number; access_key: string | null; remote: string; action: string; target: string; outcome: string }>(
      "INSERT INTO audit_log (at_ms, access_key, remote, action, target, outcome) VALUES ($at_ms, $access_key, $remote, $action, $target, $outcome)",
    ),
    // the PK range below the cutoff: one row in steady state (the oldest)
    auditTrim: p<unknown, { through: number }>("DELETE FROM audit_log WHERE seq <= $through"),
    auditPage: p<AuditRow, { before: number; limit: number }>(
      "SELECT seq, at_ms, access_key, remote, action, target, outcome FROM audit_log WHERE seq < $before ORDER BY seq DESC LIMIT $limit",
    ),

    // --- meta and totals --------------------------------------------------------------------
    metaGet: p<{ value: string }, { key: string }>("SELECT value FROM meta WHERE key = $key"),
    metaSet: p<unknown, { key: string; value: string }>("INSERT OR REPLACE INTO meta (key, value) VALUES ($key, $value)"),
    // One statement for read-add-write: values are stored as text, so compare as integers.
    // `count` values at once: the first is MAX(value + 1, floor), and the counter ends at the last.
    metaCounterNext: p<{ value: string | number }, { key: string; floor: number; count: number }>(
      "INSERT INTO meta (key, value) VALUES ($key, CAST(MAX(1, CAST($floor AS INTEGER)) + $count - 1 AS TEXT)) " +
        "ON CONFLICT (key) DO UPDATE SET value = CAST(MAX(CAST(value AS INTEGER) + 1, CAST($floor AS INTEGER)) + $count - 1 AS TEXT) RETURNING value",
    ),
    totals: q<Totals>("SELECT balls, bytes, buckets, chunks, replicas, under, garbage, intents, intent_bytes FROM totals WHERE id = 0"),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
export type { AccessKeyRow, AuditRow, BucketRow, ChunkPageRow, GarbageRow, IntentRow, Totals };
