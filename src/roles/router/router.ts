// The router: a stateless gateway. Puts: each chunk is written to rf peers in parallel (bytes
// in flight bounded), a failed peer is replaced by a fresh placement, the SPM commits at the
// end. Gets: each chunk is read from the least-busy live replica, its checksum verified, and
// on an error or a mismatch the next replica is tried; a corrupt replica is reported for repair.
// Whatever a router knows is a cache of the SPM's catalog; any router can serve any step.
import { RpcServer, refusalMetrics, type Handlers, type RequestContext } from "../../net/server.ts";
import { checkOwnCertificate, type TlsSource } from "../../net/tls.ts";
import { bucketFilter } from "../../net/authorize.ts";
import { routerAccess } from "../../protocol/access.ts";
import { RouterKeys } from "./keys.ts";
import { accessKeyIdPattern } from "../../lib/access-keys.ts";
import { RpcPool } from "../../net/pool.ts";
import { SpmSet } from "../../net/spm-set.ts";
import { routerOps } from "../../protocol/router.ts";
import type { RouterCounters } from "../../protocol/spm.ts";
import type { BallLocated, ChunkRecordWire, PeerLocation } from "../../protocol/ball.ts";
import { limits, vssLimits, vssTimings } from "../../lib/limits.ts";
import { ByteBudget } from "../../lib/byte-budget.ts";
import { GcPacer } from "../../lib/gc-pacer.ts";
import { CorruptError, MictlanxError, toMictlanxError } from "../../lib/errors.ts";
import { chunkChecksum, checksumHex } from "../../lib/checksum.ts";
import { ChunkReader } from "./reader.ts";
import { BallCache, SpmAway } from "./ball-cache.ts";
import { ChunkWriter, type ChunkWrite } from "./writer.ts";
import { PlacementsAhead } from "./placements-ahead.ts";
import { UploadLeases } from "./upload-leases.ts";
import { PeerBatches, spmBatches } from "./batching.ts";
import { MetricsRegistry, requestMetrics } from "../../lib/metrics.ts";
import { serveMetrics } from "../../net/metrics-server.ts";
import { advertisedAddressFor, type Advertise } from "../../lib/advertise.ts";
import type { ArgsOf, ParsedArgsOf, ResultOf } from "../../protocol/envelope.ts";
import type { RouterOps } from "../../protocol/router.ts";
import type { KeyRecord } from "../../net/authorize.ts";
import { startS3Gateway, type RunningS3Gateway } from "./s3/gateway.ts";

export interface RouterOptions {
  /** What it binds; a wildcard (0.0.0.0, ::) needs `advertise`. */
  host: string;
  port: number;
  /** What clients dial and what it heartbeats to the SPM (default host:port). */
  advertise?: Advertise;
  /** The SPMs of this VSS (`--spm a,b,c`): calls go to the leader when known, the others when it cannot be reached; heartbeats go to each. */
  spm: string[];
  /** Serve Prometheus metrics on this port (0: any free port); none when undefined. */
  metricsPort?: number;
  /** …on this address (default limits.metricsHostDefault, the loopback: metrics are for this host's scraper unless said otherwise). */
  metricsHost?: string;
  /** TLS with the router's certificate, clients' access keys checked; plain TCP believing everyone without (--insecure). */
  security?: { tls: TlsSource };
  /** Serve S3 (path-style) on this port (0: any free one); none when undefined. */
  s3Port?: number;
  /** The SigV4 region the S3 endpoint signs for (default limits.s3RegionDefault). */
  s3Region?: string;
  /** Virtual-hosted-style S3: a Host of `bucket.s3Domain` names the bucket; path-style only when undefined. */
  s3Domain?: string;
  /** How long an S3 multipart upload lives (default and most: limits.s3MultipartUploadMsMax). */
  s3MultipartUploadMs?: number;
  /**
   * While no SPM can be reached, answer gets and stats from what this router served last
   * (ball-cache.ts). Off by default: a delete or overwrite made through another router meanwhile
   * is not seen, which a reader of that router would take for a stale read.
   */
  serveHeldReads?: boolean;
  log?: (line: string) => void;
}

export interface RunningRouter {
  port: number;
  address: string;
  metricsAddress?: string;
  /** The S3 endpoint, https://host:port (http:// under --insecure), when it serves one. */
  s3Url?: string;
  /** Read the certificate files again (SIGHUP): new connections, both ways, use them. */
  reloadTls(): void;
  stop(): Promise<void>;
}

/** Who a delete is for, as the SPM's audit log records it: the client's key and address, not this router. */
function actorFor(context: RequestContext): { accessKey?: string; remote: string } {
  const principal = context.principal;
  return { ...(principal.kind === "key" ? { accessKey: principal.accessKey } : {}), remote: context.remote };
}

export async function startRouter(options: RouterOptions): Promise<RunningRouter> {
  const advertisedAt = advertisedAddressFor("router", options.host, options.advertise);
  const startedMs = Date.now();
  if (options.security) checkOwnCertificate(options.security.tls, "router", undefined);
  // Under TLS a router is the router its certificate names; without, its pid tells it apart.
  const identity = { role: "router", id: options.security?.tls.current.own?.node?.id ?? `pid ${process.pid}` };
  const nodeSecurity = options.security ? { security: { tls: options.security.tls } } : {};
  // With several SPMs an unreachable one is passed over after one backoff, not four: the next may answer.
  const spmConnectAttempts = options.spm.length > 1 ? limits.spmSetConnectAttempts : limits.connectAttemptsMax;
  const spmPool = new RpcPool({ role: "spm", expectRole: "spm", identity, connectAttempts: spmConnectAttempts, ...nodeSecurity });
  const peerPool = new RpcPool({ role: "peer", expectRole: "peer", connectAttempts: 2, identity, ...nodeSecurity });
  // With one SPM there is no choosing, so nothing to log.
  const spm = new SpmSet(spmPool, options.spm, options.spm.length > 1 ? { onLeaderChanged: (leader, term) => options.log?.(leaderLine(leader, term)) } : {});
  const budget = new ByteBudget(vssLimits.routerInFlightBytesMax);
  const batches = spmBatches(spm);
  const peerBatches = new PeerBatches(peerPool);
  const leases = new UploadLeases(spm);
  const ahead = new PlacementsAhead(spm, (objectId, intentTtlMs) => leases.renewed(objectId, intentTtlMs));
  const writer = new ChunkWriter(spm, peerPool, budget, peerBatches, ahead, leases);
  const reader = new ChunkReader(spm, peerPool, peerBatches, options.log);
  const served = new BallCache();
  const heldReads = options.serveHeldReads === true;
  const spmAway = new SpmAway();
  const counters: RouterCounters = { requests: 0, errors: 0, puts: 0, gets: 0, bytesIn: 0, bytesOut: 0 };
  const gcPacer = new GcPacer(vssLimits.gcEveryBytes);
  const metrics = new MetricsRegistry();
  const requestDone = requestMetrics(metrics, "router");
  const bytes = metrics.counter("mictlanx_router_bytes_total", "Chunk bytes through this router, by direction (in: from clients, out: to clients).");
  metrics.gauge("mictlanx_router_write_bytes_in_flight", "Chunk bytes being written to peers now.", () => budget.inUse);
  metrics.gauge("mictlanx_router_served_cache_bytes", "Bytes of ball metadata and chunk pages held to serve gets while no SPM answers.", () => served.bytes);
  const offline = metrics.counter("mictlanx_router_offline_lookups_total", "Ball and chunk-page lookups answered from what this router served last, because no SPM could be reached.");

  const putChunk = async (chunk: ChunkWrite, placed?: PeerLocation[]): Promise<ChunkRecordWire> => {
    const { index, data, checksum, rf } = chunk;
    const actual = checksumHex(chunkChecksum(data));
    if (actual !== checksum) throw new CorruptError(`chunk ${index} arrived damaged (checksum ${actual}, the client sent ${checksum}); retry the put`);
    bytes.inc({ direction: "in" }, data.byteLength);
    counters.bytesIn += data.byteLength;
    gcPacer.note(data.byteLength * (1 + rf)); // the request, and one encoded copy per replica
    return writer.write(chunk, placed);
  };

  /**
   * A one-chunk put whose chunk could not be written gives its upload up at once (its client
   * cannot: it never learnt the object id), so replicas that did land are deleted now and a
   * retry begins afresh. The put fails with the write's error, or says the abandon failed too.
   */
  const abandonOnFailure = async <T>(objectId: string, work: Promise<T>): Promise<T> => {
    try {
      return await work;
    } catch (error) {
      const typed = toMictlanxError(error);
      try {
        await spm.call("ball.abandon", { objectId });
      } catch (abandonError) {
        throw new MictlanxError(typed.code, `${typed.message}; the upload could not be abandoned (${toMictlanxError(abandonError).message}): its chunks are deleted when it expires`, { cause: error });
      }
      throw typed;
    }
  };

  /**
   * A ball's metadata from the SPM, held as what this router served last; when the SPM cannot
   * be reached, what was held (ball-cache.ts says why that is safe). A not_found forgets it.
   */
  const locate = async (ref: { bucket: string; key: string }, ask: () => Promise<BallLocated>): Promise<BallLocated> => {
    const heldNow = heldReads && spmAway.now() ? served.lookup(ref.bucket, ref.key) : undefined;
    if (heldNow) {
      offline.inc({}, 1);
      return heldNow;
    }
    try {
      const ball = await ask();
      served.remember(ball);
      return ball;
    } catch (error) {
      const typed = toMictlanxError(error);
      if (typed.code === "not_found") served.forget(ref.bucket, ref.key);
      const held = heldReads && spmAway.noted(typed) ? served.lookup(ref.bucket, ref.key) : undefined;
      if (!held) throw error;
      offline.inc({}, 1);
      return held;
    }
  };

  const handlers: Handlers<typeof routerOps> = {
    "ball.begin": (args) => spm.call("ball.begin", args),
    "ball.putChunk": (chunk) => putChunk(chunk),
    "ball.abandon": ({ objectId }) => {
      ahead.forget(objectId);
      leases.forget(objectId);
      return spm.call("ball.abandon", { objectId });
    },
    "ball.commit": async ({ objectId, ...rest }) => {
      ahead.forget(objectId);
      leases.forget(objectId);
      served.forget(rest.bucket, rest.key); // whatever the outcome: the next get asks the SPM
      const committed = await batches.commit.call({ objectId, ...rest });
      counters.puts += 1;
      return { version: committed.version, objectId };
    },
    "ball.put": async ({ data, requestId, ...declaration }) => {
      served.forget(declaration.bucket, declaration.key);
      // One SPM round trip for the object id and the chunk's placement.
      const count = data.byteLength === 0 ? 0 : 1;
      const { objectId, placements, committed: done } = await batches.reserve.call({
        bucket: declaration.bucket,
        key: declaration.key,
        rf: declaration.rf,
        count,
        chunkBytes: data.byteLength,
        ...(declaration.ifAbsent ? { ifAbsent: true } : {}),
        ...(requestId === undefined ? {} : { requestId }),
      });
      if (done) return { version: done.version, objectId }; // a retry whose first try committed
      const chunk = { bucket: declaration.bucket, key: declaration.key, objectId, index: 0, rf: declaration.rf, data, checksum: checksumHex(chunkChecksum(data)) };
      const chunks = count === 0 ? [] : [await abandonOnFailure(objectId, putChunk(chunk, placements[0]?.peers))];
      const committed = await batches.commit.call({ ...declaration, objectId, chunks });
      counters.puts += 1;
      return { version: committed.version, objectId };
    },
    "ball.stat": async (ref) => {
      const ball = await locate(ref, () => spm.call("ball.get", ref));
      reader.remember(ball);
      return ball;
    },
    "ball.chunks": async (args) => {
      const heldNow = heldReads && spmAway.now() ? served.page(args.objectId, args.fromIndex, args.limit) : undefined;
      if (heldNow) {
        offline.inc({}, 1);
        return heldNow;
      }
      let page;
      try {
        page = await spm.call("ball.chunks", args);
      } catch (error) {
        const held = heldReads && spmAway.noted(toMictlanxError(error)) ? served.page(args.objectId, args.fromIndex, args.limit) : undefined;
        if (!held) throw error;
        offline.inc({}, 1);
        return held;
      }
      reader.rememberChunks(args.objectId, page);
      served.rememberPage(args.objectId, args.fromIndex, args.limit, page);
      return page;
    },
    "ball.stageChunks": ({ objectId, chunks, bucket }) => spm.call("ball.stageChunks", { objectId, chunks, bucket }),
    "ball.getChunk": async ({ bucket, objectId, index }) => {
      const chunk = await reader.read(bucket, objectId, index);
      bytes.inc({ direction: "out" }, chunk.size);
      counters.bytesOut += chunk.size;
      gcPacer.note(chunk.size * 2); // the peer's reply, and the encoded reply to the client
      return chunk;
    },
    "ball.get": async ({ cachedObjectId, ...ref }) => {
      const ball = await locate(ref, () => batches.get.call(ref));
      reader.remember(ball);
      const { chunks, peers: _peers, chunksNext, ...meta } = ball;
      counters.gets += 1;
      const more = chunksNext === undefined ? {} : { chunksNext };
      if (meta.numChunks !== 1 || cachedObjectId === ball.objectId) return { meta, chunks, ...more };
      const chunk = await reader.read(ball.bucket, ball.objectId, 0);
      bytes.inc({ direction: "out" }, chunk.size);
      counters.bytesOut += chunk.size;
      return { meta, chunks, data: chunk.data };
    },
    "ball.delete": (ref, context) => {
      served.forget(ref.bucket, ref.key);
      return spm.call("ball.delete", { ...ref, actor: actorFor(context) });
    },
    "ball.list": (query) => spm.call("ball.list", query),
    "bucket.list": async (query, context) => {
      // A key sees the buckets it may list; `next` still walks the whole list, page by page.
      const page = await spm.call("bucket.list", query);
      const shown = bucketFilter(context.principal, "list");
      return { ...page, buckets: page.buckets.filter((bucket) => shown(bucket.name)) };
    },
    "bucket.create": (args) => spm.call("bucket.create", args),
    "bucket.delete": (args, context) => {
      served.forgetPrefix(args.bucket, "");
      return spm.call("bucket.delete", { ...args, actor: actorFor(context) });
    },
    "ball.count": (args) => spm.call("ball.count", args),
    "ball.deletePrefix": (args, context) => {
      served.forgetPrefix(args.bucket, args.prefix ?? "");
      return spm.call("ball.deletePrefix", { ...args, actor: actorFor(context) });
    },
    "bucket.getSetting": (args) => spm.call("bucket.getSetting", args),
    "bucket.setSetting": (args) => spm.call("bucket.setSetting", args),
    "ball.setAcl": (args) => spm.call("ball.setAcl", args),
    "router.health": () => ({ address, spm: spm.addresses.join(","), spms: [...spm.addresses], ...(spm.leader === undefined ? {} : { spmLeader: spm.leader }), uptimeMs: Date.now() - startedMs, ...counters }),
  };

  // Access keys from the SPM, over this router's mTLS link; kept in memory only.
  const keys = new RouterKeys(async (accessKey) => {
    if (!accessKeyIdPattern.test(accessKey)) return undefined; // not one this VSS could have made
    const found = await spm.call("key.lookup", { accessKey });
    return found.found ? { accessKey: found.accessKey, secretKey: found.secretKey, grants: found.grants, admin: found.admin, revoked: found.revoked } : undefined;
  });
  const server = new RpcServer({
    host: options.host,
    port: options.port,
    role: "router",
    ops: routerOps,
    handlers,
    ...(options.security ? { security: { tls: options.security.tls, access: routerAccess, keys } } : {}),
    onInternalError: (error, op) => options.log?.(`internal error in ${op}: ${error.message}`),
    onRequestDone: requestDone,
  });
  server.listen();
  refusalMetrics(metrics, "router", server.stats);
  const address = advertisedAt(server.port);
  const s3 = options.s3Port === undefined ? undefined : await startS3(options, handlers, keys);
  const metricsServer = options.metricsPort === undefined ? undefined : serveMetrics(options.metricsHost ?? limits.metricsHostDefault, options.metricsPort, metrics);

  let stopped = false;
  // Every SPM keeps its own router table (for its status): each gets every heartbeat, and each
  // reply says who leads, which is where the set learns whom to ask first.
  const heartbeatTo = async (spmAddress: string) => {
    counters.requests = server.stats.requests;
    counters.errors = server.stats.errors;
    const notAfterMs = options.security?.tls.current.own?.notAfterMs; // read afresh: SIGHUP may have renewed it
    const reply = await spm.at(spmAddress).call("router.heartbeat", { address, ...counters, ...(notAfterMs === undefined ? {} : { certificateNotAfterMs: notAfterMs }) }, { timeoutMs: vssTimings.heartbeatIntervalMs * 3 });
    spm.noteLeadership(spmAddress, reply.leadership);
  };
  const heartbeat = async () => {
    while (!stopped) {
      // An SPM that is away is passed over quietly; requests that need one fail naming those tried.
      await Promise.allSettled(spm.addresses.map(heartbeatTo));
      await Bun.sleep(vssTimings.heartbeatIntervalMs);
    }
  };
  void heartbeat();

  return {
    port: server.port,
    address,
    ...(s3 ? { s3Url: s3.url } : {}),
    ...(metricsServer ? { metricsAddress: `${options.metricsHost ?? limits.metricsHostDefault}:${metricsServer.port}` } : {}),
    reloadTls: () => {
      server.reloadTls(); // reads and checks the files; throws, changing nothing, on a bad one
      s3?.reloadTls();
    },
    stop: async () => {
      stopped = true;
      metricsServer?.stop();
      s3?.stop();
      server.stop();
      spmPool.close();
      peerPool.close();
    },
  };
}

/** The router's log line when the SPM it asks first changes. */
function leaderLine(leader: string | undefined, term: number | undefined): string {
  if (leader === undefined) return "no leader SPM known now: asking the SPMs in turn";
  return `the leader SPM is ${leader}${term === undefined ? "" : ` (term ${term})`}: asking it first`;
}

/**
 * The S3 endpoint, on the same handlers the RPC server runs: each S3 operation calls them in
 * process with arguments parsed by the op's schema, as the key that signed the request.
 */
function startS3(options: RouterOptions, handlers: Handlers<typeof routerOps>, keys: RouterKeys): Promise<RunningS3Gateway> {
  const call = async <K extends keyof RouterOps>(op: K, args: ArgsOf<RouterOps, K>, record: KeyRecord | undefined): Promise<ResultOf<RouterOps, K>> => {
    const parsed = routerOps[op].args.parse(args) as ParsedArgsOf<RouterOps, K>;
    const principal = record === undefined ? { kind: "anonymous" as const } : { kind: "key" as const, accessKey: record.accessKey, record };
    const context: RequestContext = { remote: "s3", principal, markNode: () => false };
    const handler = handlers[op] as (args: ParsedArgsOf<RouterOps, K>, context: RequestContext) => Promise<ResultOf<RouterOps, K>> | ResultOf<RouterOps, K>;
    return handler(parsed, context);
  };
  return startS3Gateway({
    host: options.host,
    port: options.s3Port ?? 0,
    region: options.s3Region ?? limits.s3RegionDefault,
    ...(options.s3Domain === undefined ? {} : { domain: options.s3Domain }),
    ...(options.s3MultipartUploadMs === undefined ? {} : { multipartUploadMs: options.s3MultipartUploadMs }),
    ...(options.security ? { security: { tls: options.security.tls, keys } } : {}),
    call,
    ...(options.log ? { log: options.log } : {}),
  });
}
