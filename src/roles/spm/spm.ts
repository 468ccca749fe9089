// The SPM role: the registry, the catalog, placement and the maintenance loop behind one
// RpcServer. It carries no bulk data: peers copy chunks between themselves when told to.
// The parts: registry.ts (who is alive), routers.ts (the routers heard from), uploads.ts (a
// put's life), maintenance.ts (healing and the rest), events.ts; this file wires them.
//
// The SPM never dies of a catalog error: a full disk is answered `full`, a lock or I/O error
// `unavailable`, the background work counts and retries; after a failed fsync the catalog takes
// no more writes (status says why) until a restart. Everything it acknowledges (a put, a
// delete, a drain, a peer's new state) is fsynced first: all writes go through the batcher.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { SqliteStore, openCatalogStore, parseCatalogUrl, secretsKeyFile, type CatalogCalls, type CatalogOpenOptions, type CatalogStats, type CatalogStore } from "../../catalog/index.ts";
import { RpcServer, refusalMetrics, type Handlers } from "../../net/server.ts";
import { RpcPool, ServiceClient } from "../../net/pool.ts";
import { parseAddress } from "../../net/address.ts";
import { peerOps } from "../../protocol/peer.ts";
import { checkOwnCertificate, type TlsSource } from "../../net/tls.ts";
import { spmAccess } from "../../protocol/access.ts";
import { CertificateExpiries } from "./certificates.ts";
import type { KeyVerifier } from "../../net/authorize.ts";
import { spmOps, type PeerStatus, type VssStatus } from "../../protocol/spm.ts";
import { limits, vssLimits, vssTimings } from "../../lib/limits.ts";
import { ConflictError, MictlanxError, NotFoundError, toMictlanxError } from "../../lib/errors.ts";
import { anchoredWallMs, systemClock, type Clock } from "../../lib/clock.ts";
import { Registry } from "./registry.ts";
import { RouterTable } from "./routers.ts";
import { Uploads } from "./uploads.ts";
import { EventLog } from "./events.ts";
import { Maintenance } from "./maintenance.ts";
import { Reconciler } from "./reconcile.ts";
import { ballLocatedWireBytes, ballToWire, locateBall, locateChunks } from "./views.ts";
import { batchFullMessage } from "../../protocol/spm.ts";
import { spmMetrics } from "./metrics.ts";
import { WriteBatcher } from "./write-batcher.ts";
import { serveMetrics } from "../../net/metrics-server.ts";
import { advertisedAddressFor, type Advertise } from "../../lib/advertise.ts";
import { AuditTrail, auditHandlers, actorOf, deleteActorOf } from "./audit.ts";
import { bootstrapAdminKey, keyHandlers } from "./keys.ts";
import { bucketSettingHandlers } from "./bucket-settings.ts";
import { LifecyclePass } from "./lifecycle.ts";
import { abortIncompleteUploadsIn } from "./multipart.ts";
import { electedLeadership, soloLeadership, type Leadership } from "./leadership.ts";
import { Manifests, peerManifestTransport, type PendingManifest } from "./manifests.ts";
import { rebuildCatalogFromPeers } from "./rebuild.ts";
import type { DeleteBallsQuery, RetireTiming } from "../../catalog/index.ts";

export interface SpmOptions {
  /** What it binds; a wildcard (0.0.0.0, ::) needs `advertise`. */
  host: string;
  port: number;
  /** What peers, routers and clients dial (their --spm); `status` shows it (default host:port). */
  advertise?: Advertise;
  dir: string;
  heartbeatIntervalMs?: number;
  suspectAfterMs?: number;
  downAfterMs?: number;
  healIntervalMs?: number;
  healBytesPerSec?: number;
  intentTtlMs?: number;
  /** How long a retired version's chunks stay for readers that started on it (limits: readerGraceMsDefault). */
  readerGraceMs?: number;
  /** Each up peer's holdings are checked against the catalog at least this often. */
  reconcileIntervalMs?: number;
  /** Chunks no ball uses are collected only once older than this. */
  orphanGraceMs?: number;
  /** S3 lifecycle rules are applied at most this often (limits: lifecycleIntervalMsDefault). */
  lifecycleIntervalMs?: number;
  /** Serve Prometheus metrics on this port (0: any free port); none when undefined. */
  metricsPort?: number;
  /** …on this address (default limits.metricsHostDefault, the loopback: metrics are for this host's scraper unless said otherwise). */
  metricsHost?: string;
  /** TLS with the SPM's certificate, and who may call what; plain TCP believing everyone without (--insecure). */
  security?: { tls: TlsSource };
  /** The first admin key's file (see keys.ts): imported when there, else written; default DIR/credentials.json. */
  credentialsPath?: string;
  /** The CA certificate's path, written as `ca` in a credentials file the SPM makes (null without one). */
  caPath?: string;
  log?: (line: string) => void;
  /** @internal Time for tests that step it; the system clock otherwise. */
  clock?: Clock;
  /** @internal Randomness (placement, the choice of a heal's source) for tests that fix it. */
  random?: () => number;
  /** @internal Catalog faults for tests (see CatalogOpenOptions). */
  catalogOptions?: Omit<CatalogOpenOptions, "deferredSync">;
  /** The catalog: `sqlite:DIR` (default: DIR/catalog.sqlite of `dir`) or `postgres://…` (docs/catalog-postgres.md). */
  catalog?: string;
  /** Several SPMs: elect a leader on etcd at these endpoints (`etcd://host:port[,…]`); alone without. */
  coordination?: string;
  /** The leader's etcd lease (default coordinationLimits.leaseTtlMsDefault): failover takes about this long. */
  leaseTtlMs?: number;
  /** Before serving, rebuild a lost catalog from these peers' manifests and chunks (rebuild.ts). */
  rebuild?: { peers: string[]; force: boolean };
}

/** The ops only the leader takes (a standby refuses them, naming the leader); every other op any SPM answers. */
const leaderOps = [
  "ball.begin", "ball.abandon", "ball.reserve", "ball.reserveMany", "ball.place", "ball.touch", "ball.commit", "ball.commitMany", "ball.stageChunks",
  "ball.delete", "ball.deletePrefix", "bucket.create", "bucket.delete", "bucket.setSetting", "ball.setAcl", "replica.corrupt",
  "peer.drain", "peer.undrain", "peer.remove", "key.create", "key.revoke",
] as const satisfies ReadonlyArray<keyof typeof spmOps>;

/**
 * The catalog `--catalog` names (default: sqlite in the data dir). sqlite takes the test-only
 * fault options; PostgreSQL's secrets.key lives in the data dir (every SPM sharing the catalog
 * must hold the same one: docs/catalog-postgres.md).
 */
async function openCatalog(options: SpmOptions): Promise<CatalogStore> {
  const url = parseCatalogUrl(options.catalog ?? `sqlite:${options.dir}`);
  if (url.engine === "sqlite") return SqliteStore.open(url.path, { ...(options.catalogOptions ?? {}) });
  return openCatalogStore(url.url, { secretsKeyPath: options.catalogOptions?.secretsKeyPath ?? join(options.dir, secretsKeyFile) });
}

export interface RunningSpm {
  port: number;
  address: string;
  metricsAddress?: string;
  vssId: string;
  status(): VssStatus;
  /** Read the certificate files again (SIGHUP): new connections, both ways, use them. */
  reloadTls(): void;
  stop(): Promise<void>;
}

export async function startSpm(options: SpmOptions): Promise<RunningSpm> {
  const advertisedAt = advertisedAddressFor("spm", options.host, options.advertise);
  mkdirSync(options.dir, { recursive: true });
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const deadlineNowMs = anchoredWallMs(clock);
  if (options.rebuild) await rebuildFirst(options, options.rebuild);
  // Deferred sync: the write batcher fsyncs the WAL off the event loop before it acknowledges.
  const catalog = await openCatalog(options);
  // Alone, this SPM leads; with --coordination it is made once its address is known (below).
  let leadership: Leadership = soloLeadership();
  const startedMonoMs = clock.monoMs();
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? vssTimings.heartbeatIntervalMs;
  const timings = { suspectAfterMs: options.suspectAfterMs ?? vssTimings.suspectAfterMs, downAfterMs: options.downAfterMs ?? vssTimings.downAfterMs };
  const events = new EventLog(clock, options.log);
  const event = (kind: string, message: string) => events.add(kind, message);
  const writes = new WriteBatcher(catalog, (count) => metrics.groupDone(count), () => leadership.term());
  const audit = new AuditTrail({ catalog, writes, clock, event });
  const registry = new Registry({
    catalog,
    known: await catalog.listPeers(),
    timings,
    clock,
    persist: (write) => writes.submit(write),
    persisting: () => leadership.leading() || leadership.term() !== undefined,
    emit: (registryEvent) => event(registryEvent.kind, registryEvent.message),
    onArrival: (peerId, why) => reconciler.schedule(peerId, why),
  });
  const routers = new RouterTable(clock, timings);
  const readerGraceMs = options.readerGraceMs ?? vssTimings.readerGraceMsDefault;
  const retireNow = () => ({ atMs: deadlineNowMs(), readerGraceMs });
  const nodeSecurity = options.security ? { security: { tls: options.security.tls } } : {};
  if (options.security) checkOwnCertificate(options.security.tls, "spm", undefined);
  const spmId = options.security?.tls.current.own?.node?.id ?? `pid ${process.pid}`;
  const peerPool = new RpcPool({ role: "peer", expectRole: "peer", connectAttempts: 2, identity: { role: "spm", id: spmId }, ...nodeSecurity });
  const manifests = new Manifests({ clock, transport: peerManifestTransport(registry, peerPool) });
  const uploads = new Uploads({
    catalog,
    registry,
    writes,
    clock,
    deadlineNowMs,
    retireNow,
    intentTtlMs: options.intentTtlMs ?? vssTimings.intentTtlMs,
    random,
    manifests,
  });
  const maintenance = new Maintenance(catalog, registry, {
    pool: peerPool,
    healBytesPerSec: options.healBytesPerSec ?? vssLimits.healBytesPerSecDefault,
    random,
    clock,
    event,
    persist: (write) => writes.submit(write),
  });
  const reconciler: Reconciler = new Reconciler({
    pool: peerPool,
    catalog,
    registry,
    clock,
    intervalMs: options.reconcileIntervalMs ?? vssTimings.reconcileIntervalMsDefault,
    orphanGraceMs: options.orphanGraceMs ?? vssTimings.orphanGraceMsDefault,
    persist: (write) => writes.submit(write),
    isBusy: (objectId, index) => maintenance.isBusy(objectId, index),
    repair: (objectId, index, peerId, detail) => maintenance.repairCorrupt(objectId, index, peerId, detail),
    event,
  });
  let address = advertisedAt(options.port);

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
      lastHeartbeatAgeMs: Math.round(clock.monoMs() - peer.lastSeenMonoMs),
      opsPerSec: peer.opsPerSec,
    }));

  const certificates = new CertificateExpiries(clock);
  const noteOwnCertificate = () => {
    const own = options.security?.tls.current.own;
    if (own?.node) certificates.note("spm", own.node.id, own.notAfterMs);
  };
  // The catalog's counts and health as of the last tick (status() is read by every metrics
  // gauge, synchronously); `vss.status` reads them afresh first.
  let catalogNow: { stats: CatalogStats; health: { writable: boolean; problem?: string } } = { stats: await catalog.stats(), health: await catalog.health() };
  const readCatalogNow = async () => {
    catalogNow = { stats: await catalog.stats(), health: await catalog.health() };
  };
  const status = (): VssStatus => {
    noteOwnCertificate();
    const stats = catalogNow.stats;
    return {
      spm: address,
      leadership: leadership.view(),
      uptimeMs: Math.round(clock.monoMs() - startedMonoMs),
      vssId: catalog.vssId,
      catalog: catalogNow.health,
      peers: peerStatuses(),
      routers: routers.status(),
      balls: stats.balls,
      buckets: stats.buckets,
      bytes: stats.bytes,
      chunks: stats.chunks,
      underReplicated: stats.underReplicated,
      garbage: stats.garbage,
      pendingUploads: stats.intents,
      pendingUploadBytes: stats.intentBytes,
      healing: maintenance.status(),
      drains: maintenance.drainStatus(),
      reconcile: reconciler.status(),
      events: events.recent(50),
      insecure: options.security === undefined,
      certificates: certificates.list(),
      certificateWarnings: certificates.warnings(clock.wallMs()),
    };
  };

  const locate = async (bucket: string, key: string) => {
    const head = await catalog.getBallHead(bucket, key);
    if (!head) throw new NotFoundError(`${bucket}/${key} does not exist`);
    return locateBall(head, registry);
  };

  const handlers: Handlers<typeof spmOps> = {
    "peer.heartbeat": async ({ certificateNotAfterMs, ...report }) => {
      await registry.heartbeat(report);
      certificates.note("peer", report.id, certificateNotAfterMs);
      return { heartbeatIntervalMs, vssId: catalog.vssId, leadership: leadership.view() };
    },
    "router.heartbeat": ({ address: routerAddress, certificateNotAfterMs, ...counters }, context) => {
      routers.heartbeat(routerAddress, counters);
      certificates.note("router", context.principal.kind === "node" ? context.principal.id : routerAddress, certificateNotAfterMs);
      return { heartbeatIntervalMs, leadership: leadership.view() };
    },
    "ball.begin": async ({ bucket, key, rf, ifAbsent, chunkBytes }) => {
      const { objectId } = await uploads.reserve({ bucket, key, rf, ...(ifAbsent === undefined ? {} : { ifAbsent }), ...(chunkBytes === undefined ? {} : { chunkBytes }), count: 0 });
      return { objectId };
    },
    "ball.abandon": ({ objectId }) => uploads.abandon(objectId),
    "ball.reserve": (args) => uploads.reserve(args),
    "ball.place": (args) => uploads.place(args),
    "ball.touch": ({ objectId }) => uploads.touch(objectId),
    "ball.commit": (args) => uploads.commit(args),
    "ball.commitMany": async ({ items }) => ({ results: (await uploads.commitMany(items)).map(settledOf) }),
    "ball.reserveMany": async ({ items }) => ({ results: (await uploads.reserveMany(items)).map(settledOf) }),
    "ball.get": ({ bucket, key }) => locate(bucket, key),
    "ball.getMany": async ({ items }) => ({ results: withinBatchBytes(await Promise.all(items.map((item) => settle(() => locate(item.bucket, item.key)))), ballLocatedWireBytes) }),
    "ball.chunks": async ({ objectId, fromIndex, limit, bucket }) => {
      await checkObjectBucket(catalog, objectId, bucket);
      return chunksOf(catalog, registry, objectId, fromIndex, limit, readerGraceMs);
    },
    "ball.stageChunks": async ({ objectId, chunks, bucket }) => {
      await checkObjectBucket(catalog, objectId, bucket);
      return uploads.stage(objectId, chunks);
    },
    "chunk.locate": ({ objectId, index }) => locateChunk(catalog, registry, objectId, index, readerGraceMs),
    "ball.delete": async ({ bucket, key, actor }, context) => {
      const entry = { actor: deleteActorOf(context, actor), action: "ball.delete", target: `${bucket}/${key}` };
      const timing = retireNow(); // once: the batcher may run the write again
      const deleted = await audit.write(entry, (tx) => manifests.deleteBall(tx, bucket, key, timing), (done) => (done ? "ok" : "not_found"));
      if (!deleted) throw new NotFoundError(`${bucket}/${key} does not exist`);
      await manifests.deliver([deleted.tombstone]); // durable on a peer before the delete is acknowledged
      return ballToWire(deleted.ball);
    },
    "ball.list": async (query) => {
      const page = await catalog.listBalls(query);
      // An empty page of a bucket that is not there says so (exit 4), not "no balls".
      if (page.balls.length === 0 && (await catalog.getBucket(query.bucket)) === undefined) throw noSuchBucket(query.bucket);
      return { balls: page.balls.map(ballToWire), ...(page.next === undefined ? {} : { next: page.next }) };
    },
    "bucket.list": (query) => catalog.listBuckets(query),
    "bucket.create": async ({ bucket }) => {
      const createdMs = clock.wallMs();
      if (!(await writes.submit((tx) => tx.createBucket(bucket, createdMs)))) throw new ConflictError(`bucket ${bucket} already exists`);
      return { name: bucket, balls: 0, bytes: 0, createdMs };
    },
    "bucket.delete": async ({ bucket, actor }, context) => {
      const entry = { actor: deleteActorOf(context, actor), action: "bucket.delete", target: bucket };
      if (!(await audit.write(entry, (tx) => tx.deleteBucket(bucket), (deleted) => (deleted ? "ok" : "not_found")))) throw noSuchBucket(bucket);
      return { bucket };
    },
    "ball.count": async ({ bucket, prefix }) => (await catalog.countBalls(bucket, prefix, limits.ballCountMax)) ?? throwNoSuchBucket(bucket),
    "ball.deletePrefix": async ({ bucket, prefix, after, limit, actor }, context) => {
      const query = { bucket, ...(prefix === undefined ? {} : { prefix }), ...(after === undefined ? {} : { after }), limit: limit ?? limits.deleteBatchBallsMax, chunksMax: limits.deleteBatchChunksMax };
      const timing = retireNow(); // computed once: the same if the batcher runs the write again
      const entry = { actor: deleteActorOf(context, actor), action: "ball.deletePrefix", target: `${bucket}/${prefix ?? ""}*` };
      const done = await audit.write(entry, (tx) => deleteBallsWithTombstones(tx, manifests, query, timing), (batch) => (batch ? "ok" : "not_found"));
      if (!done) throwNoSuchBucket(bucket);
      await manifests.deliver(done.tombstones);
      return done.result;
    },
    "replica.corrupt": async ({ objectId, index, peerId, detail, problem }) => {
      const what = problem === "missing" ? "missing" : "corrupt";
      event(`${what}_reported`, `${what} replica of object ${objectId} chunk ${index} on ${peerId}: ${detail}`);
      return { accepted: await maintenance.repairCorrupt(objectId, index, peerId, detail) };
    },
    "peers.list": () => ({ peers: peerStatuses() }),
    "peer.drain": ({ id }, context) => audit.around({ actor: actorOf(context), action: "peer.drain", target: id }, async () => {
      await checkDrainCanFinish(catalog, registry, id);
      await registry.setDraining(id, true);
      const chunks = await catalog.countReplicasOnPeer(id);
      event("peer_draining", `peer ${id} is draining; its chunks move to other peers`);
      return { id, chunks };
    }),
    "peer.undrain": ({ id }, context) => audit.around({ actor: actorOf(context), action: "peer.undrain", target: id }, async () => {
      await registry.setDraining(id, false);
      event("peer_undrained", `peer ${id} is no longer draining; it takes new data again`);
      return { id };
    }),
    "peer.remove": ({ id }, context) => audit.around({ actor: actorOf(context), action: "peer.remove", target: id }, async () => {
      const peer = registry.get(id);
      if (!peer) throw new NotFoundError(`no peer "${id}" is registered; see mictlanx status`);
      if (peer.state === "up" && !peer.draining) {
        throw new ConflictError(`peer ${id} is up and takes data; drain it first (mictlanx peer drain ${id}), or stop it, then remove it`);
      }
      const replicas = (await catalog.chunksOnPeer(id, { limit: limits.listPageMax })).chunks.length;
      await registry.remove(id);
      event("peer_removed", `peer ${id} was removed${replicas > 0 ? `; the replicas it held are healed from other peers` : ""}`);
      return { id, replicas };
    }),
    "vss.status": async () => {
      await readCatalogNow();
      return status();
    },
    "peer.healthOf": async ({ id }) => {
      const peer = registry.get(id);
      if (!peer) throw new NotFoundError(`no peer ${id} is registered; mictlanx status lists them`);
      return new ServiceClient(peerOps, peerPool, parseAddress(peer.address)).call("peer.health", {});
    },
    ...keyHandlers({ catalog, audit, clock }),
    ...auditHandlers(catalog),
    ...bucketSettingHandlers({ catalog, writes, manifests }),
  };
  // A standby takes no write: it says who leads (routers and clients retry, and find the leader).
  for (const op of leaderOps) {
    const handler = handlers[op] as (args: unknown, context: unknown) => unknown;
    (handlers as Record<string, (args: unknown, context: unknown) => unknown>)[op] = (args, context) => {
      if (!leadership.leading()) throw leadership.refusal();
      return handler(args, context);
    };
  }

  const metrics = spmMetrics(status);
  const server = new RpcServer({
    host: options.host,
    port: options.port,
    role: "spm",
    ops: spmOps,
    handlers,
    ...(options.security ? { security: { tls: options.security.tls, access: spmAccess, keys: catalogKeys(catalog) } } : {}),
    onRequestDone: metrics.requestDone,
    onInternalError: (error, op) => event("internal_error", `internal error in ${op}: ${error.message}`),
  });
  // What a leader does before it acts: a VSS is never without an admin key, and uploads under way
  // when the last leader stopped get a whole lifetime before the first look at intents.
  const leaderStart = async () => {
    await bootstrapAdminKey({ catalog, writes, clock, path: options.credentialsPath ?? join(options.dir, "credentials.json"), ...(options.caPath === undefined ? {} : { caPath: options.caPath }), ...(options.log ? { log: options.log } : {}) });
    await uploads.renewAll();
  };
  if (options.coordination === undefined) await leaderStart(); // before the first request
  server.listen();
  refusalMetrics(metrics.registry, "spm", server.stats);
  address = advertisedAt(server.port);
  const metricsServer = options.metricsPort === undefined ? undefined : serveMetrics(options.metricsHost ?? limits.metricsHostDefault, options.metricsPort, metrics.registry);
  if (options.coordination !== undefined) {
    leadership = electedLeadership({
      endpoints: options.coordination,
      vssId: catalog.vssId,
      id: spmId,
      address,
      ...(options.leaseTtlMs === undefined ? {} : { leaseTtlMs: options.leaseTtlMs }),
      clock,
      claim: async () => writes.submit(async () => undefined), // an empty group, fenced with the new term
      onPromoted: async () => {
        await registry.promote(await catalog.listPeers());
        await leaderStart();
      },
      event,
    });
    leadership.start();
  }
  const healIntervalMs = options.healIntervalMs ?? vssTimings.healIntervalMs;
  // AbortIncompleteMultipartUpload: each enabled rule's uploads begun before uploadsBegunBeforeMs(rule.abortIncompleteDays, now), under its prefix.
  const abortIncompleteUploads = abortIncompleteUploadsIn((write) => writes.submit(write), retireNow);
  const lifecycle = new LifecyclePass({ catalog, audit, clock, retireNow, event, intervalMs: options.lifecycleIntervalMs ?? limits.lifecycleIntervalMsDefault, abortIncompleteUploads, manifests });
  let lastReconcileMonoMs = clock.monoMs();
  const timer = setInterval(() => {
    // None throws (each counts and reports its own errors); the catch is for a bug.
    registry.tick().catch((error) => event("internal_error", `peer state tick: ${toMictlanxError(error).message}`));
    readCatalogNow().catch((error) => event("catalog_error", `reading the catalog's counts: ${toMictlanxError(error).message}`));
    if (!leadership.leading()) return; // what follows writes on the SPM's own initiative: the leader's
    maintenance.pass(clock.monoMs(), deadlineNowMs()).catch((error) => event("internal_error", `maintenance: ${toMictlanxError(error).message}`));
    void lifecycle.tick(); // never throws; paced by its own interval
    if (clock.monoMs() - lastReconcileMonoMs >= vssTimings.slowPassIntervalMs) {
      lastReconcileMonoMs = clock.monoMs();
      reconciler.step().catch((error) => event("internal_error", `reconciliation: ${toMictlanxError(error).message}`));
    }
  }, healIntervalMs);

  return {
    port: server.port,
    address,
    vssId: catalog.vssId,
    ...(metricsServer ? { metricsAddress: `${options.metricsHost ?? limits.metricsHostDefault}:${metricsServer.port}` } : {}),
    status,
    reloadTls: () => server.reloadTls(),
    stop: async () => {
      clearInterval(timer);
      await leadership.stop(); // resigning hands over at once instead of a lease later
      metricsServer?.stop();
      server.stop();
      maintenance.close();
      reconciler.close();
      await catalog.close();
    },
  };
}

/**
 * One batch of a bulk delete and its balls' tombstones, in one catalog write: the balls it
 * retires are the first of the same listing, looked at (chunk 0's holders) before they go.
 */
async function deleteBallsWithTombstones(tx: CatalogCalls, manifests: Manifests, query: DeleteBallsQuery, timing: RetireTiming) {
  const { bucket, prefix, after, limit } = query;
  const listed = (await tx.getBucket(bucket)) === undefined ? [] : (await tx.listBalls({ bucket, limit, ...(prefix === undefined ? {} : { prefix }), ...(after === undefined ? {} : { after }) })).balls;
  const before: Array<Awaited<ReturnType<Manifests["current"]>>> = [];
  for (const ball of listed) before.push(await manifests.current(tx, bucket, ball.key));
  const result = await tx.deleteBalls(query, timing);
  if (!result) return undefined;
  const tombstones: PendingManifest[] = [];
  for (const old of before.slice(0, result.deleted)) if (old) tombstones.push(await manifests.tombstone(tx, old, "deleted"));
  return { result, tombstones };
}

/** The catalog rebuilt from the peers, over a pool that speaks to them as this SPM. */
async function rebuildFirst(options: SpmOptions, rebuild: { peers: string[]; force: boolean }): Promise<void> {
  const spmId = options.security?.tls.current.own?.node?.id ?? `pid ${process.pid}`;
  const pool = new RpcPool({ role: "peer", expectRole: "peer", connectAttempts: 2, identity: { role: "spm", id: spmId }, ...(options.security ? { security: { tls: options.security.tls } } : {}) });
  try {
    await rebuildCatalogFromPeers({ catalogPath: join(options.dir, "catalog.sqlite"), peers: rebuild.peers, force: rebuild.force, pool, log: options.log ?? (() => {}) });
  } finally {
    pool.close();
  }
}

function noSuchBucket(bucket: string): NotFoundError {
  return new NotFoundError(`no such bucket ${bucket}; mictlanx ls lists the buckets, mictlanx mb ${bucket} makes it`);
}

function throwNoSuchBucket(bucket: string): never {
  throw noSuchBucket(bucket);
}

/** A drain that could never finish is refused up front: the other peers must hold every chunk at its rf. */
async function checkDrainCanFinish(catalog: CatalogCalls, registry: Registry, id: string): Promise<void> {
  if (!registry.get(id)) throw new NotFoundError(`no peer "${id}" is registered; see mictlanx status`);
  const needed = await catalog.maxRfOnPeer(id);
  const others = registry.candidates().filter((peer) => peer.id !== id).length;
  if (needed > others) {
    throw new ConflictError(
      `draining ${id} could not finish: it holds chunks kept at rf ${needed}, and only ${others} other peers take data; start another peer first, or lower those balls' rf`,
    );
  }
}

/**
 * Where a chunk of a version is now. A version retired (overwritten, deleted) while a reader
 * streams it is still found while its replicas wait out the readers' grace; after that the
 * reader is told the version was replaced, not that a ball it can see does not exist.
 */
async function locateChunk(catalog: CatalogCalls, registry: Registry, objectId: string, index: number, readerGraceMs: number) {
  const where = (ids: string[]) =>
    ids.flatMap((id) => {
      const peer = registry.get(id);
      return peer ? [{ id, address: peer.address, state: peer.state }] : [];
    });
  const chunk = (await catalog.findChunk(objectId, index)) ?? (await catalog.findRetiredChunk(objectId, index));
  if (chunk) return { size: chunk.size, checksum: chunk.checksum, peers: where(chunk.peers) };
  const retired = await catalog.retiredObject(objectId);
  if (retired && retired.reason !== "abandoned") {
    throw new ConflictError(
      `the version being read (object ${objectId}) was ${retired.reason} ${new Date(retired.retiredMs).toISOString()} and its chunks are gone ` +
        `(they stay ${Math.round(readerGraceMs / 1000)} s for reads under way); read the ball again`,
    );
  }
  throw new NotFoundError(`chunk ${index} of object ${objectId} does not exist`);
}

/** A page of a version's chunks: a live one's, or a retired one's during the readers' grace. */
/** The SPM checks clients' keys (admins running the VSS) against its own catalog, always current. */
function catalogKeys(catalog: CatalogCalls): KeyVerifier {
  return {
    lookup: async (accessKey) => {
      const key = await catalog.getAccessKey(accessKey);
      return key && { accessKey, secretKey: key.secretKey, grants: key.grants, admin: key.admin, revoked: key.revokedMs !== undefined };
    },
  };
}

/** An object named by id alone must be of the bucket the caller named (when it named one); told as not found otherwise. */
async function checkObjectBucket(catalog: CatalogCalls, objectId: string, bucket: string | undefined): Promise<void> {
  if (bucket === undefined) return;
  const actual = await catalog.bucketOfObject(objectId);
  if (actual !== undefined && actual !== bucket) throw new NotFoundError(`object ${objectId} is not in bucket ${bucket}`);
}

async function chunksOf(catalog: CatalogCalls, registry: Registry, objectId: string, fromIndex: number, limit: number | undefined, readerGraceMs: number) {
  const page = (await catalog.chunksPage(objectId, fromIndex, limit)) ?? (await catalog.retiredChunksPage(objectId, fromIndex, limit));
  if (!page) {
    await locateChunk(catalog, registry, objectId, fromIndex, readerGraceMs); // throws the error that says why
    throw new NotFoundError(`chunk ${fromIndex} of object ${objectId} does not exist`);
  }
  return { ...locateChunks(page.chunks, registry), ...(page.next === undefined ? {} : { next: page.next }) };
}

/**
 * A batch reply bounded by bytes: once the items so far pass spmBatchBytesMax, the rest are
 * answered `overloaded`, and the router asks for each of them alone (see batching.ts).
 */
function withinBatchBytes<T>(outcomes: Array<{ ok: true; value: T } | { ok: false; code: string; message: string }>, bytesOf: (value: T) => number) {
  let bytes = 0;
  return outcomes.map((outcome) => {
    if (!outcome.ok) return outcome;
    bytes += bytesOf(outcome.value);
    if (bytes <= limits.spmBatchBytesMax || bytes === bytesOf(outcome.value)) return outcome;
    return { ok: false as const, code: "overloaded", message: batchFullMessage };
  });
}

/** One item of a batch: its value, or its own typed error for the caller that sent it. */
/** A batch item's answer as the wire carries it. */
function settledOf<T>(answer: T | MictlanxError): { ok: true; value: T } | { ok: false; code: string; message: string } {
  return answer instanceof MictlanxError ? { ok: false, code: answer.code, message: answer.message } : { ok: true, value: answer };
}

async function settle<T>(work: () => Promise<T> | T): Promise<{ ok: true; value: T } | { ok: false; code: string; message: string }> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    const typed = toMictlanxError(error);
    return { ok: false, code: typed.code, message: typed.message };
  }
}
