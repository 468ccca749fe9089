// The SPM role: the registry, the catalog, placement and the maintenance loop behind one
// RpcServer. It carries no bulk data: peers copy chunks between themselves when told to.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Catalog } from "../../catalog/index.ts";
import { RpcServer, type Handlers } from "../../net/server.ts";
import { spmOps, type PeerStatus, type RouterCounters, type VssStatus } from "../../protocol/spm.ts";
import { limits, vssLimits, vssTimings } from "../../lib/limits.ts";
import { BadRequestError, ConflictError, MictlanxError, NotFoundError, toMictlanxError } from "../../lib/errors.ts";
import type { ParsedArgsOf, ResultOf } from "../../protocol/envelope.ts";
import { Lru } from "../../lib/lru.ts";
import { choosePeers } from "./placement.ts";
import { Registry } from "./registry.ts";
import { Maintenance } from "./maintenance.ts";
import { ballToWire, locateBall } from "./views.ts";
import { spmMetrics } from "./metrics.ts";
import { WriteBatcher } from "./write-batcher.ts";
import { serveMetrics } from "../../net/metrics-server.ts";

export interface SpmOptions {
  host: string;
  port: number;
  dir: string;
  heartbeatIntervalMs?: number;
  suspectAfterMs?: number;
  downAfterMs?: number;
  healIntervalMs?: number;
  healBytesPerSec?: number;
  intentTtlMs?: number;
  /** Serve Prometheus metrics on this port (0: any free port); none when undefined. */
  metricsPort?: number;
  log?: (line: string) => void;
}

export interface RunningSpm {
  port: number;
  address: string;
  metricsAddress?: string;
  status(): VssStatus;
  stop(): Promise<void>;
}

interface RouterSeen {
  lastSeenMs: number;
  counters: RouterCounters;
  rates: { requestsPerSec: number; putsPerSec: number; getsPerSec: number; bytesInPerSec: number; bytesOutPerSec: number };
}

export async function startSpm(options: SpmOptions): Promise<RunningSpm> {
  mkdirSync(options.dir, { recursive: true });
  // Deferred sync: the write batcher fsyncs the WAL off the event loop before it acknowledges.
  const catalog = Catalog.open(join(options.dir, "catalog.sqlite"), { deferredSync: true });
  const startedMs = Date.now();
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? vssTimings.heartbeatIntervalMs;
  const intentTtlMs = options.intentTtlMs ?? vssTimings.intentTtlMs;
  const events: VssStatus["events"] = [];
  const event = (kind: string, message: string) => {
    events.push({ atMs: Date.now(), kind, message });
    if (events.length > vssLimits.eventsKept) events.shift();
    options.log?.(message);
  };
  const registry = new Registry(
    catalog,
    { suspectAfterMs: options.suspectAfterMs ?? vssTimings.suspectAfterMs, downAfterMs: options.downAfterMs ?? vssTimings.downAfterMs },
    (registryEvent) => event(registryEvent.kind, registryEvent.message),
    startedMs,
  );
  const maintenance = new Maintenance(catalog, registry, {
    healBytesPerSec: options.healBytesPerSec ?? vssLimits.healBytesPerSecDefault,
    random: Math.random,
    event,
  });
  const routers = new Map<string, RouterSeen>();
  const groupDone = (writes: number) => metrics.groupDone(writes);
  const writes = new WriteBatcher(catalog, groupDone);
  let address = `${options.host}:${options.port}`;

  const peerStatuses = (): PeerStatus[] =>
    registry.all().map((peer) => ({
      id: peer.id,
      address: peer.address,
      state: peer.state,
      draining: peer.draining,
      usedBytes: peer.usedBytes,
      capacityBytes: peer.capacityBytes,
      freeBytes: peer.freeBytes,
      chunks: peer.chunks,
      replicas: peer.chunks,
      lastHeartbeatAgeMs: Date.now() - peer.lastSeenMs,
      opsPerSec: peer.opsPerSec,
    }));

  const status = (): VssStatus => {
    const stats = catalog.stats();
    const nowMs = Date.now();
    return {
      spm: address,
      uptimeMs: nowMs - startedMs,
      peers: peerStatuses(),
      routers: [...routers.entries()].map(([routerAddress, seen]) => ({
        address: routerAddress,
        lastHeartbeatAgeMs: nowMs - seen.lastSeenMs,
        ...seen.counters,
        ...seen.rates,
      })),
      balls: stats.balls,
      buckets: stats.buckets,
      bytes: stats.bytes,
      chunks: stats.chunks,
      underReplicated: stats.underReplicated,
      garbage: stats.garbage,
      healing: maintenance.status(),
      events: events.slice(-50),
    };
  };

  /** rf distinct up peers for each of `count` chunks from `fromIndex`. */
  const place = (fromIndex: number, count: number, rf: number, exclude: Set<string>) => {
    const candidates = registry.candidates();
    const placements = Array.from({ length: count }, (_, offset) => ({
      index: fromIndex + offset,
      peers: choosePeers(candidates, rf, exclude, Math.random).map((peer) => ({ id: peer.id, address: peer.address })),
    }));
    registry.notePlacements(placements.flatMap((placement) => placement.peers.map((peer) => peer.id)));
    return placements;
  };

  /** A new version: checks rf and --if-absent early, records the upload's intent durably. */
  /** Reservations by request id, so a retried put gets its first try's object id back. */
  const reservations = new Lru<string, { bucket: string; key: string; reserved: Reservation; expiresMs: number }>(vssLimits.reservationsKept);

  const reserve = async (bucket: string, key: string, rf: number, ifAbsent: boolean, count: number, requestId?: string): Promise<Reservation> => {
    const nowMs = Date.now();
    const earlier = requestId === undefined ? undefined : reservations.get(requestId);
    if (earlier && earlier.bucket === bucket && earlier.key === key && earlier.expiresMs > nowMs) {
      // A retry. If its first try committed, the ball there is our own: not an --if-absent conflict.
      const current = ifAbsent ? catalog.getBall(bucket, key) : undefined;
      if (current && current.objectId !== earlier.reserved.objectId) throw new ConflictError(`${bucket}/${key} already exists (--if-absent)`);
      return earlier.reserved;
    }
    const available = registry.candidates().length;
    if (rf > available) {
      throw new MictlanxError("insufficient_peers", `replication factor ${rf} needs ${rf} peers that are up, but ${available} are; lower --rf or start more peers`);
    }
    if (ifAbsent && catalog.getBall(bucket, key)) throw new ConflictError(`${bucket}/${key} already exists (--if-absent)`);
    // Time-ordered (UUIDv7): the catalog's and the peers' indexes keyed by object id then grow
    // at their right edge, so a group commit dirties a few pages instead of one per put.
    const objectId = Bun.randomUUIDv7();
    const placements = place(0, count, rf, new Set());
    const expiresMs = nowMs + intentTtlMs;
    await writes.submit(() => catalog.addIntent({ objectId, bucket, key, createdMs: nowMs, expiresMs, placements: placements.map(intentPlacement) }));
    const reserved = { objectId, placements };
    // Remembered for less than the intent lives, so a retry never gets an object id already expired.
    if (requestId !== undefined) reservations.set(requestId, { bucket, key, reserved, expiresMs: nowMs + intentTtlMs / 2 });
    return reserved;
  };

  /** Make a ball visible: one catalog write, group-committed with its neighbours. */
  const commit = async ({ objectId, chunks, ifAbsent, ...declaration }: CommitArgs) => {
    checkChunks(declaration.size, declaration.chunkSize, declaration.rf, chunks, isTransformed(declaration.tags));
    const ball = {
      bucket: declaration.bucket,
      key: declaration.key,
      ballId: declaration.ballId ?? defaultBallId(declaration.key),
      objectId,
      size: declaration.size,
      checksum: declaration.checksum,
      contentType: declaration.contentType,
      tags: declaration.tags,
      rf: declaration.rf,
      createdMs: Date.now(),
      chunkSize: declaration.chunkSize,
      numChunks: chunks.length,
    };
    const result = await writes.submit(() => catalog.commitBall(ball, chunks, { ifAbsent: ifAbsent ?? false }));
    return { version: result.version, ...(result.replacedObjectId ? { replacedObjectId: result.replacedObjectId } : {}) };
  };

  const locate = (bucket: string, key: string) => {
    const ball = catalog.getBall(bucket, key);
    if (!ball) throw new NotFoundError(`${bucket}/${key} does not exist`);
    return locateBall(ball, registry);
  };

  const handlers: Handlers<typeof spmOps> = {
    "peer.heartbeat": (report) => {
      registry.heartbeat(report, Date.now());
      return { heartbeatIntervalMs };
    },
    "router.heartbeat": ({ address: routerAddress, ...counters }) => {
      const nowMs = Date.now();
      const seen = routers.get(routerAddress);
      const elapsedMs = seen ? nowMs - seen.lastSeenMs : 0;
      // A counter that went down means the router restarted: no rate across that.
      const rate = (now: number, before: number | undefined) => (before !== undefined && elapsedMs > 0 && now >= before ? ((now - before) * 1000) / elapsedMs : 0);
      const rates = {
        requestsPerSec: rate(counters.requests, seen?.counters.requests),
        putsPerSec: rate(counters.puts, seen?.counters.puts),
        getsPerSec: rate(counters.gets, seen?.counters.gets),
        bytesInPerSec: rate(counters.bytesIn, seen?.counters.bytesIn),
        bytesOutPerSec: rate(counters.bytesOut, seen?.counters.bytesOut),
      };
      routers.set(routerAddress, { lastSeenMs: nowMs, counters, rates });
      return { heartbeatIntervalMs };
    },
    "ball.begin": async ({ bucket, key, rf, ifAbsent }) => {
      const { objectId } = await reserve(bucket, key, rf, ifAbsent ?? false, 0);
      return { objectId };
    },
    "ball.reserve": ({ bucket, key, rf, ifAbsent, count, requestId }) => reserve(bucket, key, rf, ifAbsent ?? false, count, requestId),
    "ball.place": async ({ objectId, fromIndex, count, rf, exclude }) => {
      const placements = place(fromIndex, count, rf, new Set(exclude ?? []));
      await writes.submit(() => catalog.addIntentPlacements(objectId, placements.map(intentPlacement)));
      return { placements };
    },
    "ball.commit": (args) => commit(args),
    "ball.commitMany": async ({ items }) => ({ results: await Promise.all(items.map((item) => settle(() => commit(item)))) }),
    "ball.reserveMany": async ({ items }) => ({
      results: await Promise.all(items.map((item) => settle(() => reserve(item.bucket, item.key, item.rf, item.ifAbsent ?? false, item.count, item.requestId)))),
    }),
    "ball.get": ({ bucket, key }) => locate(bucket, key),
    "ball.getMany": async ({ items }) => ({ results: await Promise.all(items.map((item) => settle(() => locate(item.bucket, item.key)))) }),
    "chunk.locate": ({ objectId, index }) => {
      const chunk = catalog.findChunk(objectId, index);
      if (!chunk) throw new NotFoundError(`chunk ${index} of object ${objectId} does not exist (deleted or overwritten)`);
      const peers = chunk.peers.flatMap((id) => {
        const peer = registry.get(id);
        return peer ? [{ id, address: peer.address, state: peer.state }] : [];
      });
      return { size: chunk.size, checksum: chunk.checksum, peers };
    },
    "ball.delete": ({ bucket, key }) => {
      const ball = catalog.deleteBall(bucket, key);
      if (!ball) throw new NotFoundError(`${bucket}/${key} does not exist`);
      return ballToWire(ball);
    },
    "ball.list": (query) => {
      const page = catalog.listBalls(query);
      return { balls: page.balls.map(ballToWire), ...(page.next === undefined ? {} : { next: page.next }) };
    },
    "bucket.list": (query) => catalog.listBuckets(query),
    "replica.corrupt": async ({ objectId, index, peerId, detail }) => {
      event("corrupt_reported", `corrupt replica of object ${objectId} chunk ${index} on ${peerId}: ${detail}`);
      return { accepted: await maintenance.repairCorrupt(objectId, index, peerId, detail) };
    },
    "peers.list": () => ({ peers: peerStatuses() }),
    "peer.drain": ({ id }) => {
      const peer = registry.get(id);
      if (!peer) throw new NotFoundError(`no peer "${id}" is registered; see mictlanx status`);
      registry.setDraining(id, true);
      const chunks = catalog.chunksOnPeer(id, { limit: limits.listPageMax }).chunks.length;
      event("peer_draining", `peer ${id} is draining; its chunks move to other peers`);
      return { id, chunks };
    },
    "vss.status": () => status(),
  };

  const metrics = spmMetrics(status);
  const server = new RpcServer({
    host: options.host,
    port: options.port,
    ops: spmOps,
    handlers,
    onRequestDone: metrics.requestDone,
    onInternalError: (error, op) => event("internal_error", `internal error in ${op}: ${error.message}`),
  });
  server.listen();
  address = `${options.host}:${server.port}`;
  const metricsServer = options.metricsPort === undefined ? undefined : serveMetrics(options.host, options.metricsPort, metrics.registry);

  const healIntervalMs = options.healIntervalMs ?? vssTimings.healIntervalMs;
  const timer = setInterval(() => {
    registry.tick(Date.now());
    void maintenance.pass(Date.now());
  }, healIntervalMs);

  return {
    port: server.port,
    address,
    ...(metricsServer ? { metricsAddress: `${options.host}:${metricsServer.port}` } : {}),
    status,
    stop: async () => {
      clearInterval(timer);
      metricsServer?.stop();
      server.stop();
      maintenance.close();
      catalog.close();
    },
  };
}

/**
 * A commit must describe the whole ball: chunks 0..n-1, each on rf peers, sizes adding up to
 * the ball's size. A ball the client compressed or encrypted (tags `compression`,
 * `encryption`) stores chunks of other sizes than the payload's, so only the order and the
 * replicas are checked for it.
 */
function checkChunks(size: number, chunkSize: number, rf: number, chunks: { index: number; size: number; peers: string[] }[], transformed: boolean): void {
  let total = 0;
  chunks.forEach((chunk, position) => {
    if (chunk.index !== position) throw new BadRequestError(`commit lists chunk ${chunk.index} at position ${position}; chunks must be 0..n-1 in order`);
    if (new Set(chunk.peers).size < rf) throw new BadRequestError(`chunk ${chunk.index} is on ${new Set(chunk.peers).size} distinct peers, fewer than rf ${rf}`);
    if (!transformed && chunk.size > chunkSize && chunkSize > 0) throw new BadRequestError(`chunk ${chunk.index} is ${chunk.size} bytes, over the chunk size ${chunkSize}`);
    total += chunk.size;
  });
  if (!transformed && total !== size) throw new BadRequestError(`chunks add up to ${total} bytes but the ball declares ${size}`);
}

type CommitArgs = ParsedArgsOf<typeof spmOps, "ball.commit">;
type Reservation = ResultOf<typeof spmOps, "ball.reserve">;

/** One item of a batch: its value, or its own typed error for the caller that sent it. */
async function settle<T>(work: () => Promise<T> | T): Promise<{ ok: true; value: T } | { ok: false; code: string; message: string }> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    const typed = toMictlanxError(error);
    return { ok: false, code: typed.code, message: typed.message };
  }
}

function intentPlacement(placement: { index: number; peers: Array<{ id: string }> }) {
  return { index: placement.index, peers: placement.peers.map((peer) => peer.id) };
}

function isTransformed(tags: Record<string, string>): boolean {
  return tags.compression !== undefined || tags.encryption !== undefined;
}

/** A ball without --ball-id is its own group: the key, or its sha256 when the key is longer than a ball id may be. */
function defaultBallId(key: string): string {
  return new TextEncoder().encode(key).byteLength <= limits.ballIdBytesMax ? key : new Bun.CryptoHasher("sha256").update(key).digest("hex");
}
