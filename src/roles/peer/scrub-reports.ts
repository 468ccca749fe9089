// The peer's side of the scrub (src/storage/scrub.ts does the reading): start it on the store,
// and for each corrupt chunk it finds, keep it among the peer's recent errors (peer.health,
// the TUI's detail pane) and tell the SPM with `replica.corrupt`, which rewrites the replica
// from a good one (chunk.pull); the store keeps refusing the bad bytes until then. The engine
// logs every finding itself. Reports are fire and forget, a bounded number at once: a finding
// that cannot be reported now is logged and reported again by the next pass.
import { vssLimits } from "../../lib/limits.ts";
import { toMictlanxError } from "../../lib/errors.ts";
import { objectId } from "../../protocol/ball.ts";
import { spmOps } from "../../protocol/spm.ts";
import { parseAddress } from "../../net/address.ts";
import { ServiceClient, type RpcPool } from "../../net/pool.ts";
import { refLabel, type ChunkStore, type ScrubFinding } from "../../storage/index.ts";

export interface PeerScrubOptions {
  /** Bytes per second; 0 turns the scrub off. */
  bytesPerSec: number;
  passIntervalMs?: number;
  peerId: string;
  /** The SPM to report to; without one, findings are only logged and kept. */
  spm?: string;
  pool: RpcPool;
  /** Add to the peer's recent errors. */
  remember: (op: string, code: string, message: string) => void;
  log?: (line: string) => void;
}

/** replica.corrupt takes a detail of at most 1024 characters. */
const reportDetailCharsMax = 1000;

export function startScrub(store: ChunkStore, options: PeerScrubOptions): void {
  if (options.bytesPerSec === 0) return;
  store.startScrub({
    bytesPerSec: options.bytesPerSec,
    ...(options.passIntervalMs === undefined ? {} : { passIntervalMs: options.passIntervalMs }),
    onCorrupt: reporter(options),
  });
}

function reporter(options: PeerScrubOptions): (finding: ScrubFinding) => void {
  const spm = options.spm === undefined ? undefined : new ServiceClient(spmOps, options.pool, parseAddress(options.spm));
  const log = options.log ?? (() => undefined);
  let inFlight = 0;
  return (finding) => {
    options.remember("scrub", "corrupt", finding.detail);
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
      .call("replica.corrupt", { objectId: finding.ref.ball, index: finding.ref.index, peerId: options.peerId, detail })
      .then((reply) => {
        if (!reply.accepted) log(`scrub: the SPM could not repair chunk ${label} here (no good replica, or it no longer lists this one)`);
      })
      .catch((error: unknown) => {
        log(`scrub: could not report chunk ${label} to the SPM: ${toMictlanxError(error).message}; the next pass reports it again`);
      })
      .finally(() => (inFlight -= 1));
  };
}
