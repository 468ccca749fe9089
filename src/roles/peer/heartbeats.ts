// A peer's heartbeats: one loop per SPM of its `--spm` list, since each SPM keeps its own
// registry of peer health (a standby must know which peers are up to serve status and reads, and
// to take over as leader with a view of its own). Every reply must name this peer's VSS (the
// identity adopts the first, and refuses another: see identity.ts), and says who leads, which
// the SpmSet learns from (so scrub reports go to the leader) and logs when it changes.
import type { PeerHealth } from "../../protocol/peer.ts";
import { vssTimings } from "../../lib/limits.ts";
import { toMictlanxError } from "../../lib/errors.ts";
import type { SpmSet } from "../../net/spm-set.ts";
import type { PeerIdentity } from "./identity.ts";

export interface HeartbeatOptions {
  spms: SpmSet;
  address: string;
  identity: PeerIdentity;
  health: () => PeerHealth;
  /** The certificate's expiry to report, if the peer has one. */
  certificateExpiry: () => { certificateNotAfterMs?: number };
  log?: (line: string) => void;
}

export function startHeartbeats(options: HeartbeatOptions): { stop(): void } {
  const loops = options.spms.addresses.map((spmAddress) => heartbeatLoop(spmAddress, options));
  return { stop: () => loops.forEach((loop) => loop.stop()) };
}

/** The peer's log line when the leader its heartbeats hear of changes. */
export function leaderLine(leader: string | undefined, term: number | undefined): string {
  if (leader === undefined) return "no leader SPM known now (an election may be under way)";
  return `the leader SPM is ${leader}${term === undefined ? "" : ` (term ${term})`}`;
}

/**
 * Report to one SPM every heartbeat interval; log once when it goes away, once when it is back,
 * and once for each new reason it refuses this peer (a twin, another VSS): a refused peer keeps
 * serving what it holds and keeps asking, so it joins once the reason is gone.
 */
function heartbeatLoop(spmAddress: string, { spms, address, identity, health, certificateExpiry, log }: HeartbeatOptions): { stop(): void } {
  const spm = spms.at(spmAddress);
  const several = spms.addresses.length > 1;
  const named = `SPM ${spmAddress}`;
  let stopped = false;
  let intervalMs: number = vssTimings.heartbeatIntervalMs;
  let reachable = true;
  let refusal: string | undefined;
  const loop = async () => {
    while (!stopped) {
      // A steady cadence: the next heartbeat is due an interval after this one started, not
      // after its reply, so a slow reply does not stretch the gap the SPM measures.
      const startedMs = performance.now();
      const now = health();
      try {
        const reply = await spm.call("peer.heartbeat", {
          id: now.id,
          address,
          instanceId: identity.instanceId,
          ...(identity.vssId === undefined ? {} : { vssId: identity.vssId }),
          capacityBytes: now.capacityBytes,
          usedBytes: now.usedBytes,
          freeBytes: now.freeBytes,
          liveBytes: now.liveBytes,
          chunks: now.chunks,
          puts: now.puts,
          gets: now.gets,
          ...certificateExpiry(),
        }, { timeoutMs: intervalMs * 3 });
        intervalMs = reply.heartbeatIntervalMs;
        identity.adoptVss(reply.vssId); // another VSS's SPM throws a conflict: its word on leadership is not taken
        spms.noteLeadership(spmAddress, reply.leadership);
        if (!reachable) log?.(`${named} is reachable again`);
        if (refusal !== undefined) log?.(`${named} accepted this peer`);
        reachable = true;
        refusal = undefined;
      } catch (error) {
        const typed = toMictlanxError(error);
        if (typed.code === "conflict") {
          if (refusal !== typed.message) log?.(`${several ? named : "the SPM"} refused this peer: ${typed.message}; still serving, asking again`);
          refusal = typed.message;
        } else {
          if (reachable) log?.(`cannot reach ${several ? named : "the SPM"}: ${typed.message}; still serving, retrying`);
          reachable = false;
        }
      }
      await Bun.sleep(Math.max(0, intervalMs - (performance.now() - startedMs)));
    }
  };
  void loop();
  return { stop: () => (stopped = true) };
}
