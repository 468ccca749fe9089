// The peer role: a ChunkStore behind an RpcServer. It stores and serves chunks and knows
// nothing of the cluster; with an SPM address it registers and sends heartbeats.
import { mkdirSync } from "node:fs";
import pkg from "../../../package.json" with { type: "json" };
import { ChunkStore, type ChunkMeta, type ChunkRef, type ManifestWrite, type StoredManifest } from "../../storage/index.ts";
import { RpcServer, refusalMetrics, type Handlers } from "../../net/server.ts";
import { checkOwnCertificate, type TlsSource } from "../../net/tls.ts";
import { peerAccess } from "../../protocol/access.ts";
import { RpcPool, ServiceClient } from "../../net/pool.ts";
import { parseAddress } from "../../net/address.ts";
import { peerOps, type ChunkMetaWire, type ListedManifestWire, type ManifestWire, type PeerHealth } from "../../protocol/peer.ts";
import { SpmSet } from "../../net/spm-set.ts";
import { leaderLine, startHeartbeats } from "./heartbeats.ts";
import { limits, vssLimits, vssTimings } from "../../lib/limits.ts";
import { GcPacer } from "../../lib/gc-pacer.ts";
import { MictlanxError, toMictlanxError } from "../../lib/errors.ts";
import { checksumFromHex, checksumHex } from "../../lib/checksum.ts";
import { CorruptError } from "../../lib/errors.ts";
import { PeerIdentity } from "./identity.ts";
import { peerMetrics } from "./metrics.ts";
import { serveMetrics } from "../../net/metrics-server.ts";
import { startScrub } from "./scrub-reports.ts";
import { advertisedAddressFor, type Advertise } from "../../lib/advertise.ts";

export interface PeerOptions {
  /** What it binds; a wildcard (0.0.0.0, ::) needs `advertise`. */
  host: string;
  port: number;
  /** What the SPM and routers dial, and what it registers and heartbeats (default host:port). */
  advertise?: Advertise;
  dir: string;
  id?: string;
  capacityBytes?: number;
  shardBytes?: number;
  compactionIntervalMs?: number;
  /** Register with these SPMs (`--spm a,b,c`: several share one catalog) and send each its heartbeats. */
  spm?: string[];
  /** Serve Prometheus metrics on this port (0: any free port); none when undefined. */
  metricsPort?: number;
  /** …on this address (default limits.metricsHostDefault, the loopback: metrics are for this host's scraper unless said otherwise). */
  metricsHost?: string;
  /** Bytes per second the background scrub reads (default limits.scrubBytesPerSecDefault); 0 turns it off. */
  scrubBytesPerSec?: number;
  /** A scrub pass starts at most this often (default limits.scrubPassIntervalMsDefault). */
  scrubPassIntervalMs?: number;
  /** TLS with this peer's certificate (which must name it); plain TCP without (--insecure). */
  security?: { tls: TlsSource };
  log?: (line: string) => void;
}

export interface RunningPeer {
  id: string;
  port: number;
  address: string;
  metricsAddress?: string;
  store: ChunkStore;
  health(): PeerHealth;
  /** Read the certificate files again (SIGHUP): new connections, both ways, use them. */
  reloadTls(): void;
  stop(): Promise<void>;
}

const compactionIntervalMsDefault = 30_000;
const recentErrorsKept = vssLimits.peerRecentErrorsKept;
const operatorErrorCodes = new Set(["corrupt", "full", "internal", "overloaded"]);

export async function startPeer(options: PeerOptions): Promise<RunningPeer> {
  const advertisedAt = advertisedAddressFor("peer", options.host, options.advertise);
  mkdirSync(options.dir, { recursive: true });
  // Under TLS a peer is the peer its certificate names: that is its id unless --id says one.
  const identity = PeerIdentity.loadOrCreate(options.dir, options.id ?? options.security?.tls.current.own?.node?.id);
  const id = identity.id;
  if (options.security) checkOwnCertificate(options.security.tls, "peer", id);
  // Metrics exist before the store so its group commits can report their batch sizes.
  let fsyncDone: (writes: number) => void = () => {};
  const store = await ChunkStore.open({
    dir: options.dir,
    onFsync: (writes) => fsyncDone(writes),
    ...(options.capacityBytes === undefined ? {} : { capacityBytes: options.capacityBytes }),
    ...(options.shardBytes === undefined ? {} : { shardBytes: options.shardBytes }),
  });
  const startedMs = Date.now();
  const counters = { puts: 0, gets: 0, errors: 0 };
  const recentErrors: PeerHealth["recentErrors"] = [];
  const pool = new RpcPool({ role: "peer", identity: { role: "peer", id }, ...(options.security ? { security: { tls: options.security.tls } } : {}) });
  const gcPacer = new GcPacer(vssLimits.gcEveryBytes);

  const health = (): PeerHealth => {
    const stats = store.stats();
    return {
      id,
      version: pkg.version,
      uptimeMs: Date.now() - startedMs,
      capacityBytes: stats.capacityBytes,
      usedBytes: stats.usedBytes,
      freeBytes: stats.freeBytes,
      liveBytes: stats.liveBytes,
      chunks: stats.chunks,
      shards: stats.shards,
      ...counters,
      recentErrors: [...recentErrors],
      scrub: stats.scrub,
    };
  };
  const remember = (op: string, code: string, message: string) => {
    recentErrors.push({ atMs: Date.now(), op, code, message });
    if (recentErrors.length > recentErrorsKept) recentErrors.shift();
  };

  const handlers: Handlers<typeof peerOps> = {
    "chunk.put": async ({ data, checksum, key, ...ref }) => {
      counters.puts += 1;
      gcPacer.note(data.byteLength);
      const [meta] = await store.putMany([{ ref, bytes: data, ...(key === undefined ? {} : { key }), ...(checksum === undefined ? {} : { checksum: checksumFromHex(checksum) }) }]);
      if (!meta) throw new MictlanxError("internal", "a put stored no chunk");
      return { size: meta.size, checksum: checksumHex(meta.checksum) };
    },
    "chunk.putMany": async ({ items }) => {
      counters.puts += items.length;
      const metas = await store.putMany(
        items.map(({ data, checksum, key, ...ref }) => ({ ref, bytes: data, ...(key === undefined ? {} : { key }), ...(checksum === undefined ? {} : { checksum: checksumFromHex(checksum) }) })),
      );
      return { results: metas.map((meta) => ({ size: meta.size, checksum: checksumHex(meta.checksum) })) };
    },
    "chunk.get": async ({ offset, length, ...ref }) => {
      counters.gets += 1;
      const meta = store.stat(ref);
      if (offset === undefined && length === undefined) {
        const { bytes, key } = await store.getWithKey(ref); // whole: a copy (chunk.pull) keeps its key
        gcPacer.note(bytes.byteLength * 2); // the read buffer, and the encoded reply
        return { data: bytes, size: meta.size, checksum: checksumHex(meta.checksum), ...(key === undefined ? {} : { key }) };
      }
      const data = await store.get(ref, { offset: offset ?? 0, length: length ?? meta.size - (offset ?? 0) });
      gcPacer.note(data.byteLength * 2);
      return { data, size: meta.size, checksum: checksumHex(meta.checksum) };
    },
    "chunk.getMany": async ({ refs }) => {
      counters.gets += refs.length;
      const results = await store.getMany(refs);
      return {
        results: results.map((result) =>
          result.ok ? { ok: true as const, data: result.bytes, size: result.meta.size, checksum: checksumHex(result.meta.checksum) } : result,
        ),
      };
    },
    "chunk.delete": async ({ vssId, ...ref }) => {
      identity.checkOrder(`deleting ${describe(ref)}`, vssId, options.spm !== undefined);
      return { deleted: await store.delete(ref) };
    },
    "chunk.stat": (ref) => metaToWire(store.stat(ref)),
    "chunk.statMany": ({ refs }) => ({
      results: refs.map((ref) => {
        try {
          return { ok: true as const, ...metaToWire(store.stat(ref)) };
        } catch (error) {
          const typed = toMictlanxError(error);
          return { ok: false as const, code: typed.code, message: typed.message };
        }
      }),
    }),
    "chunk.list": (query) => {
      const page = store.list(query);
      return { chunks: page.chunks.map(metaToWire), ...(page.next === undefined ? {} : { next: page.next }) };
    },
    "chunk.pull": async ({ from, checksum, vssId, ...ref }) => {
      identity.checkOrder(`copying ${describe(ref)} from ${from}`, vssId, options.spm !== undefined);
      const source = new ServiceClient(peerOps, pool, parseAddress(from));
      const reply = await source.call("chunk.get", ref);
      if (reply.checksum !== checksum) {
        throw new CorruptError(`peer ${from} holds ${describe(ref)} with checksum ${reply.checksum}, expected ${checksum}`);
      }
      const [meta] = await store.putMany([{ ref, bytes: reply.data, checksum: checksumFromHex(checksum), ...(reply.key === undefined ? {} : { key: reply.key }) }]);
      if (!meta) throw new MictlanxError("internal", "a pull stored no chunk");
      if (ref.index === 0) await copyManifests(source, store, ref, from, options.log);
      return { size: meta.size, checksum: checksumHex(meta.checksum) };
    },
    "peer.health": () => health(),
    "manifest.putMany": async ({ items }) => {
      await store.putManifests(items.map(manifestToStore));
      return { stored: items.length };
    },
    "manifest.ofObject": async ({ bucket, objectId }) => ({ manifests: (await store.manifestsOfObject(bucket, objectId)).map(manifestToWire) }),
    "manifest.list": async ({ after, limit }) => {
      const page = await store.listManifests({ limit, ...(after === undefined ? {} : { after }) });
      const manifests = page.manifests.map(manifestToWire);
      return { peerId: id, instanceId: identity.instanceId, ...(identity.vssId === undefined ? {} : { vssId: identity.vssId }), manifests, ...(page.next === undefined ? {} : { next: page.next }) };
    },
  };

  const metrics = peerMetrics(() => store.stats());
  fsyncDone = metrics.fsyncDone;
  const server = new RpcServer({
    host: options.host,
    port: options.port,
    role: "peer",
    ops: peerOps,
    handlers,
    ...(options.security ? { security: { tls: options.security.tls, access: peerAccess } } : {}),
    onRequestDone: metrics.requestDone,
    onInternalError: (error, op) => options.log?.(`internal error in ${op}: ${error.message}`),
    onHandlerError: (error, op) => {
      counters.errors += 1;
      if (!operatorErrorCodes.has(error.code)) return; // not_found and bad input are the callers' business
      remember(op, error.code, error.message);
    },
  });
  server.listen();
  refusalMetrics(metrics.registry, "peer", server.stats);
  store.startBackgroundCompaction(options.compactionIntervalMs ?? compactionIntervalMsDefault);
  // Scrub reports and heartbeats share one view of the SPMs: reports go to the leader heartbeats learn of.
  const spmPool = new RpcPool({ role: "spm", expectRole: "spm", identity: { role: "peer", id }, ...(options.security ? { security: { tls: options.security.tls } } : {}) });
  // With one SPM there is no choosing, so nothing to log.
  const several = (options.spm?.length ?? 0) > 1;
  const spms = options.spm ? new SpmSet(spmPool, options.spm, several ? { onLeaderChanged: (leader, term) => options.log?.(leaderLine(leader, term)) } : {}) : undefined;
  startScrub(store, options, { peerId: id, pool, remember, ...(spms ? { spm: spms } : {}) }); // stopped by store.close()
  const address = advertisedAt(server.port);
  const metricsServer = options.metricsPort === undefined ? undefined : serveMetrics(options.metricsHost ?? limits.metricsHostDefault, options.metricsPort, metrics.registry);
  // Said with every heartbeat (read afresh: SIGHUP may have renewed it), for status's warnings.
  const certificateExpiry = () => {
    const notAfterMs = options.security?.tls.current.own?.notAfterMs;
    return notAfterMs === undefined ? {} : { certificateNotAfterMs: notAfterMs };
  };
  const heartbeats = spms ? startHeartbeats({ spms, address, identity, health, certificateExpiry, ...(options.log ? { log: options.log } : {}) }) : undefined;

  return {
    id,
    port: server.port,
    address,
    ...(metricsServer ? { metricsAddress: `${options.metricsHost ?? limits.metricsHostDefault}:${metricsServer.port}` } : {}),
    store,
    health,
    reloadTls: () => server.reloadTls(),
    stop: async () => {
      heartbeats?.stop();
      metricsServer?.stop();
      server.stop();
      pool.close();
      spmPool.close();
      await store.close();
    },
  };
}

/** The manifest goes to the engine as it came: the body is the SPM's, opaque here. */
function manifestToStore({ bucket, key, objectId, generation, dead, body }: ManifestWire): ManifestWrite {
  return { bucket, key, objectId, generation, dead, body };
}

function manifestToWire({ bucket, key, objectId, generation, dead, createdMs, body }: StoredManifest): ListedManifestWire {
  return { bucket, key, objectId, generation, dead, createdMs, body };
}

/**
 * A copy of chunk 0 takes its ball's manifests with it (docs/recovery.md), so a ball healed away
 * from every peer that held chunk 0 can still be rebuilt. The chunk is stored first: a copy that
 * fails here leaves the pull done and says so; reconciliation's next copy of chunk 0 tries again.
 */
async function copyManifests(source: ServiceClient<typeof peerOps>, store: ChunkStore, ref: ChunkRef, from: string, log: ((line: string) => void) | undefined): Promise<void> {
  try {
    const { manifests } = await source.call("manifest.ofObject", { bucket: ref.bucket, objectId: ref.ball });
    if (manifests.length > 0) await store.putManifests(manifests.map(manifestToStore));
  } catch (error) {
    log?.(`copied ${describe(ref)} from ${from} but not its manifest: ${toMictlanxError(error).message}`);
  }
}

function metaToWire(meta: ChunkMeta): ChunkMetaWire {
  return {
    bucket: meta.bucket,
    ball: meta.ball,
    index: meta.index,
    size: meta.size,
    checksum: checksumHex(meta.checksum),
    shardId: meta.shardId,
    createdMs: meta.createdMs,
  };
}

function describe(ref: ChunkRef): string {
  return `chunk ${ref.bucket}/${ref.ball}_${ref.index}`;
}
