// Who is alive. Peers report by heartbeat; their state follows the time since the last one:
// up → suspect (suspectAfterMs) → down (downAfterMs, the grace period before healing).
// After an SPM restart every known peer starts as suspect — not down (that would start a
// healing storm) and not up (trimming counts only peers seen alive since this start).
import type { Catalog, PeerRecord } from "../../catalog/index.ts";
import type { PeerState } from "../../protocol/spm.ts";
import type { Candidate } from "./placement.ts";

export interface RegistryTimings {
  suspectAfterMs: number;
  downAfterMs: number;
}

interface Live {
  record: PeerRecord;
  lastSeenMs: number;
  seenSinceStart: boolean;
  opsTotal: number;
  opsPerSec: number;
  liveBytes: number;
  /** Placements since the last heartbeat, halved at each heartbeat: recent load the SPM caused. */
  recentPlacements: number;
}

export interface PeerReportIn {
  id: string;
  address: string;
  capacityBytes: number;
  usedBytes: number;
  freeBytes: number;
  liveBytes: number;
  chunks: number;
  puts: number;
  gets: number;
}

export type RegistryEvent = { kind: "peer_up" | "peer_down" | "peer_suspect" | "peer_joined"; peerId: string; message: string };

export class Registry {
  private readonly peers = new Map<string, Live>();

  constructor(
    private readonly catalog: Catalog,
    private readonly timings: RegistryTimings,
    private readonly emit: (event: RegistryEvent) => void,
    nowMs: number,
  ) {
    for (const record of catalog.listPeers()) {
      const state: PeerState = record.state === "down" ? "down" : "suspect";
      this.peers.set(record.id, { record: { ...record, state }, lastSeenMs: nowMs, seenSinceStart: false, opsTotal: 0, opsPerSec: 0, liveBytes: 0, recentPlacements: 0 });
    }
  }

  heartbeat(report: PeerReportIn, nowMs: number): void {
    const known = this.peers.get(report.id);
    const record: PeerRecord = {
      id: report.id,
      address: report.address,
      capacityBytes: report.capacityBytes,
      usedBytes: report.usedBytes,
      freeBytes: report.freeBytes,
      chunks: report.chunks,
      state: "up",
      lastHeartbeatMs: nowMs,
      registeredMs: known?.record.registeredMs ?? nowMs,
      draining: known?.record.draining ?? false,
    };
    const opsTotal = report.puts + report.gets;
    const elapsedMs = known ? nowMs - known.lastSeenMs : 0;
    const opsPerSec = known && elapsedMs > 0 && opsTotal >= known.opsTotal ? ((opsTotal - known.opsTotal) * 1000) / elapsedMs : 0;
    const recentPlacements = (known?.recentPlacements ?? 0) / 2;
    this.peers.set(report.id, { record, lastSeenMs: nowMs, seenSinceStart: true, opsTotal, opsPerSec, liveBytes: report.liveBytes, recentPlacements });
    const changed = !known || known.record.state !== "up" || known.record.address !== report.address;
    if (changed) this.catalog.upsertPeer(record);
    if (!known) this.emit({ kind: "peer_joined", peerId: report.id, message: `peer ${report.id} joined at ${report.address}` });
    else if (known.record.state === "down") this.emit({ kind: "peer_up", peerId: report.id, message: `peer ${report.id} is back up` });
  }

  /** Move peers along up → suspect → down as their heartbeats age. */
  tick(nowMs: number): void {
    for (const live of this.peers.values()) {
      const ageMs = nowMs - live.lastSeenMs;
      const state: PeerState = ageMs >= this.timings.downAfterMs ? "down" : ageMs >= this.timings.suspectAfterMs || !live.seenSinceStart ? "suspect" : "up";
      if (state === live.record.state) continue;
      if (state === "suspect" && live.record.state === "down") continue; // down stays down until a heartbeat
      live.record = { ...live.record, state };
      this.catalog.setPeerState(live.record.id, state);
      if (state === "down") this.emit({ kind: "peer_down", peerId: live.record.id, message: `peer ${live.record.id} is down (no heartbeat for ${Math.round(ageMs / 1000)} s)` });
      if (state === "suspect") this.emit({ kind: "peer_suspect", peerId: live.record.id, message: `peer ${live.record.id} is suspect` });
    }
  }

  setDraining(id: string, draining: boolean): void {
    const live = this.peers.get(id);
    if (!live) return;
    live.record = { ...live.record, draining };
    this.catalog.setDraining(id, draining);
  }

  get(id: string): (PeerRecord & { opsPerSec: number; liveBytes: number; lastSeenMs: number }) | undefined {
    const live = this.peers.get(id);
    return live ? { ...live.record, opsPerSec: live.opsPerSec, liveBytes: live.liveBytes, lastSeenMs: live.lastSeenMs } : undefined;
  }

  all(): Array<PeerRecord & { opsPerSec: number; liveBytes: number; lastSeenMs: number }> {
    return [...this.peers.keys()].map((id) => this.get(id)).filter((peer) => peer !== undefined);
  }

  state(id: string): PeerState | undefined {
    return this.peers.get(id)?.record.state;
  }

  /** Peers that may take new data: up and not draining. */
  candidates(): Candidate[] {
    return [...this.peers.values()]
      .filter((live) => live.record.state === "up" && !live.record.draining)
      .map((live) => ({
        id: live.record.id,
        address: live.record.address,
        freeBytes: live.record.freeBytes,
        capacityBytes: live.record.capacityBytes,
        load: live.recentPlacements + live.opsPerSec / 100,
      }));
  }

  /** A chunk moved: shift its bytes now so rebalance does not overshoot while heartbeats catch up. */
  noteMove(fromId: string, toId: string, bytes: number): void {
    const from = this.peers.get(fromId);
    const to = this.peers.get(toId);
    if (from) from.liveBytes = Math.max(0, from.liveBytes - bytes);
    if (to) to.liveBytes += bytes;
  }

  /** Count placements so the next choices see the load before the next heartbeat shows it. */
  notePlacements(ids: string[]): void {
    for (const id of ids) {
      const live = this.peers.get(id);
      if (live) live.recentPlacements += 1;
    }
  }
}
