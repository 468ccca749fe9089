// The peer's side of the scrub (src/storage/scrub.ts does the reading): start it on the store,
// and for each corrupt chunk it finds, keep it among the peer's recent errors (peer.health,
// the TUI's detail pane) and tell the SPM with `replica.corrupt`, which rewrites the replica
// from a good one (chunk.pull); the store keeps refusing the bad bytes until then. The engine
// logs every finding itself. Reports are fire and forget, a bounded number at once: a finding
// that cannot be reported now is logged and reported again by the next pass.
import { limits, vssLimits } from "../../lib/limits.ts";
import { toMictlanxError } from "../../lib/errors.ts";
import { objectId } from "../../protocol/ball.ts";
import type { SpmOps } from "../../protocol/spm.ts";
import type { RpcPool } from "../../net/pool.ts";
import type { ServiceCaller } from "../../net/spm-set.ts";
import { refLabel, type ChunkStore, type ScrubFinding } from "../../storage/index.ts";

/** The peer's options the scrub reads (PeerOptions has them). */
export interface PeerScrubFlags {
  /** Bytes per second (default limits.scrubBytesPerSecDefault); 0 turns the scrub off. */
  scrubBytesPerSec?: number;
  scrubPassIntervalMs?: number;
  log?: (line: string) => void;
}

export interface PeerScrubContext {
  peerId: string;
  pool: RpcPool;
  /** Add to the peer's recent errors. */
  remember: (op: string, code: string, message: string) => void;
  /** The SPMs to report to (the leader first, when heartbeats have said which); without, findings are only logged and kept. */
  spm?: ServiceCaller<SpmOps>;
}

/** replica.corrupt takes a detail of at most 1024 characters. */
const reportDetailCharsMax = 1000;

export function startScrub(store: ChunkStore, flags: PeerScrubFlags, peer: PeerScrubContext): void {
  const bytesPerSec = flags.scrubBytesPerSec ?? limits.scrubBytesPerSecDefault;
  if (bytesPerSec === 0) return;
  store.startScrub({
    bytesPerSec,
    ...(flags.scrubPassIntervalMs === undefined ? {} : { passIntervalMs: flags.scrubPassIntervalMs }),
    onCorrupt: scrubReporter(flags, peer),
  });
}

/** What happens to each finding (exported for its test). */
export function scrubReporter(flags: PeerScrubFlags, peer: PeerScrubContext): (finding: ScrubFinding) => void {
  const spm = peer.spm;
  const log = flags.log ?? (() => undefined);
  let inFlight = 0;
  return (finding) => {
    peer.remember("scrub", "corrupt", finding.detail);
    if (!spm) return;
    const label = refLabel(finding.ref);
    if (!objectId.safeParse(finding.ref.ball).success) {
      log(`scrub: chunk ${label} is not named by a VSS object id, so the SPM cannot repair it; not reported`);
      return;
    }
    if (inFlight >= vssLimits.scrubReportsInFlightMax) {
      log(`scrub: ${inFlight} reports to the SPM already in flight; chunk ${label} is reported again next pass`);
      return;
    }
    inFlight += 1;
    const detail = `scrub pass ${finding.pass}: ${finding.detail}`.slice(0, reportDetailCharsMax);
    spm
      .call("replica.corrupt", { objectId: finding.ref.ball, index: finding.ref.index, peerId: peer.peerId, detail })
      .then((reply) => {
        if (!reply.accepted) log(`scrub: the SPM could not repair chunk ${label} here (no good replica, or it no longer lists this one)`);
      })
      .catch((error: unknown) => {
        log(`scrub: could not report chunk ${label} to the SPM: ${toMictlanxError(error).message}; the next pass reports it again`);
      })
      .finally(() => (inFlight -= 1));
  };
}
