// `mictlanx spm`: run the control plane until SIGINT/SIGTERM.
import { resolve } from "node:path";
import { parsePort } from "../lib/defaults.ts";
import { parseDuration, parseSize } from "../lib/size.ts";
import { stopOnSignals } from "./signals.ts";
import { announceRole, nodeSecurity, type TlsFlags } from "./security-flags.ts";
import { prepareDataDir } from "../lib/data-dir.ts";
import { metricsPortFor } from "../net/metrics-server.ts";
import { resolveAdvertise } from "../lib/advertise.ts";
import { UsageError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";

export interface SpmFlags extends TlsFlags {
  port: string;
  data: string;
  host: string;
  advertise?: string;
  downAfter?: string;
  suspectAfter?: string;
  healRate?: string;
  readerGrace?: string;
  uploadTtl?: string;
  reconcileEvery?: string;
  orphanGrace?: string;
  lifecycleEvery?: string;
  metricsPort?: string;
  metricsHost?: string;
  credentials?: string;
  catalog?: string;
  coordination?: string;
  leaseTtl?: string;
  rebuildCatalog?: boolean;
  fromPeers?: boolean;
  peers?: string;
  force?: boolean;
}

/** `--rebuild-catalog --from-peers --peers a,b,c [--force]`, checked before anything starts. */
export function rebuildOf(flags: Pick<SpmFlags, "rebuildCatalog" | "fromPeers" | "peers" | "force">): { peers: string[]; force: boolean } | undefined {
  if (!flags.rebuildCatalog) {
    if (flags.fromPeers || flags.peers !== undefined || flags.force) throw new UsageError("--from-peers, --peers and --force go with --rebuild-catalog");
    return undefined;
  }
  if (!flags.fromPeers) throw new UsageError("--rebuild-catalog rebuilds from the peers only: add --from-peers --peers host:port,…");
  const peers = (flags.peers ?? "").split(",").map((peer) => peer.trim()).filter((peer) => peer.length > 0);
  if (peers.length === 0) throw new UsageError("--rebuild-catalog --from-peers needs --peers host:port,… naming every peer of the VSS");
  for (const peer of peers) if (!/^[^\s:]+:\d{1,5}$/.test(peer)) throw new UsageError(`--peers: ${JSON.stringify(peer)} is not host:port`);
  if (new Set(peers).size !== peers.length) throw new UsageError("--peers names a peer twice");
  if (peers.length > limits.peersMax) throw new UsageError(`--peers names ${peers.length} peers; a VSS has at most ${limits.peersMax}`);
  return { peers, force: flags.force === true };
}

export async function runSpmCommand(flags: SpmFlags): Promise<void> {
  const rebuild = rebuildOf(flags);
  const { startSpm } = await import("../roles/spm/spm.ts");
  const port = parsePort(flags.port);
  const advertise = resolveAdvertise("spm", flags.host, flags.advertise, port);
  const security = nodeSecurity("spm", flags);
  const metricsPort = metricsPortFor(flags.metricsPort, port);
  const spm = await startSpm({
    host: flags.host,
    port,
    ...(advertise === undefined ? {} : { advertise }),
    ...(metricsPort === undefined ? {} : { metricsPort }),
    ...(flags.metricsHost === undefined ? {} : { metricsHost: flags.metricsHost }),
    dir: prepareDataDir(flags.data),
    ...(flags.downAfter === undefined ? {} : { downAfterMs: parseDuration(flags.downAfter) }),
    ...(flags.suspectAfter === undefined ? {} : { suspectAfterMs: parseDuration(flags.suspectAfter) }),
    ...(flags.healRate === undefined ? {} : { healBytesPerSec: parseSize(flags.healRate) }),
    ...(flags.readerGrace === undefined ? {} : { readerGraceMs: parseDuration(flags.readerGrace) }),
    ...(flags.uploadTtl === undefined ? {} : { intentTtlMs: parseDuration(flags.uploadTtl) }),
    ...(flags.reconcileEvery === undefined ? {} : { reconcileIntervalMs: parseDuration(flags.reconcileEvery) }),
    ...(flags.orphanGrace === undefined ? {} : { orphanGraceMs: parseDuration(flags.orphanGrace) }),
    ...(flags.lifecycleEvery === undefined ? {} : { lifecycleIntervalMs: parseDuration(flags.lifecycleEvery) }),
    ...(security ? { security, caPath: resolve(security.tls.files.caPath ?? "") } : {}),
    ...(flags.credentials === undefined ? {} : { credentialsPath: resolve(flags.credentials) }),
    ...(flags.catalog === undefined ? {} : { catalog: flags.catalog }),
    ...(flags.coordination === undefined ? {} : { coordination: flags.coordination, leaseTtlMs: parseDuration(flags.leaseTtl ?? "5s") }),
    ...(rebuild ? { rebuild } : {}),
    log: (line) => process.stderr.write(`spm: ${line}\n`),
  });
  announceRole("spm", "spm", spm, flags.host, security);
  await stopOnSignals(() => spm.stop());
}
