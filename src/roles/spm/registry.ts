// Who is alive. Peers report by heartbeat; their state follows the time since the last one, on
// the monotonic clock: up → suspect (suspectAfterMs) → down (downAfterMs, the grace period
// before healing). After an SPM restart every known peer starts as suspect — not down (that
// would start a healing storm) and not up (trimming counts only peers seen alive since this start).
//
// Nothing a heartbeat says is believed unchecked:
//   - a peer carries the VSS id it joined; one from another VSS (or reporting to an SPM started
//     on an empty or wrong catalog) is refused, and nothing of it is recorded;
//   - a peer's data dir has an instance id. A known id with a new instance while the old one
//     still heartbeats (within suspectAfterMs) is a twin (a copied data dir, a mistaken --id)
//     and is refused: nothing moves. A new instance after the old one went silent is a replaced
//     disk: what the old one held is forgotten, and healing copies it back. After an SPM
//     restart nothing has been heard yet, so the old one counts as silent only after the whole
//     down grace (downAfterMs) without its report.
// Every change the catalog must keep (a new peer, its address, its state, its instance, drain)
// is durable before memory changes, so the registry never says what the catalog does not; and
// the changes for one peer run one at a time (heartbeats, the tick and drain), in order.
import type { CatalogStore, GroupWrite, PeerRecord } from "../../catalog/index.ts";
import type { PeerState } from "../../protocol/spm.ts";
import type { Clock } from "../../lib/clock.ts";
import { ConflictError, NotFoundError, toMictlanxError } from "../../lib/errors.ts";
import { assert } from "../../lib/assert.ts";
import type { Candidate } from "./placement.ts";
import { Lru } from "../../lib/lru.ts";

export interface RegistryTimings {
  suspectAfterMs: number;
  downAfterMs: number;
}

interface Live {
  record: PeerRecord;
  /** Monotonic time of the last heartbeat taken (the SPM's start for peers not heard from since). */
  lastSeenMonoMs: number;
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
  /** The identity of the peer's data dir. */
  instanceId: string;
  /** The VSS the peer joined, once it has joined one. */
  vssId?: string;
  capacityBytes: number;
  usedBytes: number;
  freeBytes: number;
  liveBytes: number;
  chunks: number;
  puts: number;
  gets: number;
}

/** What a heartbeat from a peer this SPM had not heard from since it started, or since it was down, is. */
export type ArrivalKind = "joined" | "replaced" | "returned";

export type RegistryEventKind = "peer_up" | "peer_down" | "peer_suspect" | "peer_joined" | "peer_replaced" | "peer_refused" | "catalog_error";
export type RegistryEvent = { kind: RegistryEventKind; peerId: string; message: string };

export interface RegistryOptions {
  catalog: Pick<CatalogStore, "vssId">;
  /** The peers the catalog holds (listPeers), read before the registry is made. */
  known: readonly PeerRecord[];
  timings: RegistryTimings;
  clock: Clock;
  /** Make a catalog write durable (the SPM's write batcher); memory changes only once it resolves. */
  persist: <T>(write: GroupWrite<T>) => Promise<T>;
  /**
   * Whether this SPM records peers' changes (it leads, or is alone). A standby keeps peers'
   * liveness in memory only; the leader records, and a standby promoted reads the catalog's
   * view again (`promote`). Default: always.
   */
  persisting?: () => boolean;
  emit: (event: RegistryEvent) => void;
  /** A peer whose holdings the SPM should check against the catalog: it joined, came back, or was replaced. */
  onArrival?: (peerId: string, why: ArrivalKind) => void;
}

export type PeerView = PeerRecord & { opsPerSec: number; liveBytes: number; lastSeenMonoMs: number };

/** How long the same refusal of the same process is not repeated in the event log, and how many are remembered. */
const refusalEventEveryMs = 60_000;
const refusalsKept = 1024;

export class Registry {
  private readonly peers = new Map<string, Live>();
  private readonly queues = new Map<string, Promise<unknown>>();
  /** When each refused (peer, data dir, address) was last said in the event log; bounded, oldest out. */
  private readonly lastRefusal = new Lru<string, number>(refusalsKept);
  private ticking = false;

  constructor(private readonly options: RegistryOptions) {
    const nowMonoMs = options.clock.monoMs();
    for (const record of options.known) {
      const state: PeerState = record.state === "down" ? "down" : "suspect";
      this.peers.set(record.id, { record: { ...record, state }, lastSeenMonoMs: nowMonoMs, seenSinceStart: false, opsTotal: 0, opsPerSec: 0, liveBytes: 0, recentPlacements: 0 });
    }
  }

  /** Take a heartbeat; a refused one throws a ConflictError that says why, and changes nothing. */
  heartbeat(report: PeerReportIn): Promise<void> {
    return this.serially(report.id, () => this.take(report));
  }

  private async take(report: PeerReportIn): Promise<void> {
    const { catalog, clock } = this.options;
    const nowMonoMs = clock.monoMs();
    const known = this.peers.get(report.id);
    if (report.vssId !== undefined && report.vssId !== catalog.vssId) this.refuse(report, foreignVssMessage(report, catalog.vssId));
    const arrival = this.arrivalOf(known, report, nowMonoMs);
    const record: PeerRecord = {
      id: report.id,
      address: report.address,
      capacityBytes: report.capacityBytes,
      usedBytes: report.usedBytes,
      freeBytes: report.freeBytes,
      chunks: report.chunks,
      state: "up",
      lastHeartbeatMs: clock.wallMs(),
      registeredMs: arrival === "joined" || arrival === "replaced" || !known ? clock.wallMs() : known.record.registeredMs,
      draining: arrival === "replaced" ? false : (known?.record.draining ?? false),
      instanceId: report.instanceId,
    };
    // Only down ⇄ not down changes what the catalog derives (live counts); suspect is memory's
    // alone (a restarted SPM starts every peer as suspect anyway), so a blip costs no fsync.
    const durableChange =
      !known || arrival !== "same" || known.record.state === "down" || known.record.address !== report.address || known.record.instanceId !== report.instanceId;
    if (arrival === "replaced" && !this.persisting()) {
      this.emit("peer_replaced", report.id, `peer ${report.id} came back at ${report.address} with another data dir (the leader SPM forgets what its old disk held)`);
    } else if (arrival === "replaced") {
      const { forgotten, kept } = await this.options.persist((tx) => tx.replacePeerInstance(record));
      const lost = kept > 0 ? `; ${kept} chunks had no other replica and are lost` : "";
      this.emit("peer_replaced", report.id, `peer ${report.id} came back at ${report.address} with another data dir: ${forgotten} replicas its old disk held are forgotten and healed from other peers${lost}`);
    } else if (durableChange && this.persisting()) {
      await this.options.persist((tx) => tx.upsertPeer(record));
    }
    this.remember(known, record, report, nowMonoMs);
    this.lastRefusal.delete(refusalKey(report));
    if (!known) this.emit("peer_joined", report.id, `peer ${report.id} joined at ${report.address}`);
    else if (known.record.state === "down" && arrival !== "replaced") this.emit("peer_up", report.id, `peer ${report.id} is back up`);
    if (!known) this.options.onArrival?.(report.id, "joined");
    else if (arrival === "replaced") this.options.onArrival?.(report.id, "replaced");
    else if (!known.seenSinceStart || known.record.state === "down") this.options.onArrival?.(report.id, "returned");
  }

  /** What this heartbeat is: the same instance, a first one, a replaced disk; a twin is refused here. */
  private arrivalOf(known: Live | undefined, report: PeerReportIn, nowMonoMs: number): "joined" | "same" | "replaced" {
    if (!known) return "joined";
    const before = known.record.instanceId;
    if (before === undefined || before === report.instanceId) return "same"; // undefined: recorded before instances existed
    // Silent means silent since the SPM last heard it; a peer not heard from since this SPM
    // started may only be slow to report back, so it gets the whole down grace, not suspectAfterMs.
    const silentMs = nowMonoMs - known.lastSeenMonoMs;
    const silenceNeededMs = known.seenSinceStart ? this.options.timings.suspectAfterMs : this.options.timings.downAfterMs;
    if (silentMs < silenceNeededMs) this.refuse(report, twinMessage(known, report, silentMs));
    return "replaced";
  }

  private remember(known: Live | undefined, record: PeerRecord, report: PeerReportIn, nowMonoMs: number): void {
    const opsTotal = report.puts + report.gets;
    const elapsedMs = known ? nowMonoMs - known.lastSeenMonoMs : 0;
    const opsPerSec = known && known.seenSinceStart && elapsedMs > 0 && opsTotal >= known.opsTotal ? ((opsTotal - known.opsTotal) * 1000) / elapsedMs : 0;
    const recentPlacements = (known?.recentPlacements ?? 0) / 2;
    this.peers.set(report.id, { record, lastSeenMonoMs: nowMonoMs, seenSinceStart: true, opsTotal, opsPerSec, liveBytes: report.liveBytes, recentPlacements });
  }

  private refuse(report: PeerReportIn, message: string): never {
    const nowMonoMs = this.options.clock.monoMs();
    const key = refusalKey(report);
    const lastMonoMs = this.lastRefusal.get(key);
    if (lastMonoMs === undefined || nowMonoMs - lastMonoMs >= refusalEventEveryMs) {
      this.lastRefusal.set(key, nowMonoMs);
      this.emit("peer_refused", report.id, message);
    }
    throw new ConflictError(message);
  }

  /** Move peers along up → suspect → down as their heartbeats age. Never throws; never overlaps itself. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      for (const id of [...this.peers.keys()]) await this.serially(id, () => this.settle(id));
    } catch (error) {
      this.emit("catalog_error", "", `could not record a peer's state change: ${toMictlanxError(error).message}; retrying`);
    } finally {
      this.ticking = false;
    }
  }

  private async settle(id: string): Promise<void> {
    const live = this.peers.get(id);
    if (!live) return;
    const ageMs = this.options.clock.monoMs() - live.lastSeenMonoMs;
    const { suspectAfterMs, downAfterMs } = this.options.timings;
    const state: PeerState = ageMs >= downAfterMs ? "down" : ageMs >= suspectAfterMs || !live.seenSinceStart ? "suspect" : "up";
    if (state === live.record.state) return;
    if (state === "suspect" && live.record.state === "down") return; // down stays down until a heartbeat
    if (state === "down" && this.persisting()) await this.options.persist((tx) => tx.setPeerState(id, state));
    live.record = { ...live.record, state };
    if (state === "down") this.emit("peer_down", id, `peer ${id} is down (no heartbeat for ${Math.round(ageMs / 1000)} s)`);
    if (state === "suspect") this.emit("peer_suspect", id, `peer ${id} is suspect`);
  }

  private persisting(): boolean {
    return this.options.persisting?.() ?? true;
  }

  /**
   * A standby becomes leader: the catalog's records (`records`, read now) are the truth for
   * what only a leader changes (draining, registration, removal); what this SPM heard itself
   * (liveness, address, instance) is recorded where the catalog differs. A peer the catalog no
   * longer has was removed: forgotten here too (if it still runs, its next heartbeat registers
   * it again, as after any `peer remove`).
   */
  async promote(records: readonly PeerRecord[]): Promise<void> {
    const nowMonoMs = this.options.clock.monoMs();
    const recorded = new Set(records.map((record) => record.id));
    for (const id of [...this.peers.keys()]) if (!recorded.has(id)) this.peers.delete(id);
    for (const record of records) {
      const live = this.peers.get(record.id);
      if (!live) {
        const state: PeerState = record.state === "down" ? "down" : "suspect";
        this.peers.set(record.id, { record: { ...record, state }, lastSeenMonoMs: nowMonoMs, seenSinceStart: false, opsTotal: 0, opsPerSec: 0, liveBytes: 0, recentPlacements: 0 });
        continue;
      }
      live.record = { ...live.record, draining: record.draining, registeredMs: record.registeredMs };
      const differs = (live.record.state === "down") !== (record.state === "down") || live.record.address !== record.address || live.record.instanceId !== record.instanceId;
      const mine = live.record;
      if (differs) await this.options.persist((tx) => tx.upsertPeer(mine));
    }
  }

  /** Durable before it is said: resolves once the catalog has it. NotFoundError for an unknown peer. */
  setDraining(id: string, draining: boolean): Promise<void> {
    return this.serially(id, async () => {
      const live = this.peers.get(id);
      if (!live) throw new NotFoundError(`no peer "${id}" is registered; see mictlanx status`);
      if (live.record.draining === draining) return;
      await this.options.persist((tx) => tx.setDraining(id, draining));
      live.record = { ...live.record, draining };
    });
  }

  /**
   * Forget a peer and the replicas it holds (healing puts them elsewhere); the catalog refuses
   * while it holds a chunk's only replica. NotFoundError for an unknown peer.
   */
  remove(id: string): Promise<void> {
    return this.serially(id, async () => {
      if (!this.peers.has(id)) throw new NotFoundError(`no peer "${id}" is registered; see mictlanx status`);
      await this.options.persist((tx) => tx.removePeer(id, { forgetReplicas: true }));
      this.peers.delete(id);
    });
  }

  get(id: string): PeerView | undefined {
    const live = this.peers.get(id);
    return live ? { ...live.record, opsPerSec: live.opsPerSec, liveBytes: live.liveBytes, lastSeenMonoMs: live.lastSeenMonoMs } : undefined;
  }

  all(): PeerView[] {
    return [...this.peers.keys()].map((id) => this.get(id)).filter((peer) => peer !== undefined);
  }

  state(id: string): PeerState | undefined {
    return this.peers.get(id)?.record.state;
  }

  /** Milliseconds since the peer's last heartbeat (monotonic). */
  ageMs(id: string): number | undefined {
    const live = this.peers.get(id);
    return live ? this.options.clock.monoMs() - live.lastSeenMonoMs : undefined;
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

  /** Run `work` after whatever is already running for this peer; the queue holds only the tail. */
  private serially<T>(id: string, work: () => Promise<T>): Promise<T> {
    const before = this.queues.get(id) ?? Promise.resolve();
    const run = before.then(work, work);
    const tail = run.catch(() => {});
    this.queues.set(id, tail);
    void tail.then(() => {
      if (this.queues.get(id) === tail) this.queues.delete(id);
    });
    return run;
  }

  private emit(kind: RegistryEventKind, peerId: string, message: string): void {
    assert(message.length > 0, "an event needs a message");
    this.options.emit({ kind, peerId, message });
  }
}

function refusalKey(report: PeerReportIn): string {
  return `${report.id} ${report.instanceId} ${report.address} ${report.vssId ?? ""}`;
}

function shortId(id: string | undefined): string {
  return id === undefined ? "none" : id.slice(0, 8);
}

function twinMessage(known: Live, report: PeerReportIn, silentMs: number): string {
  return (
    `peer id ${report.id} is in use by another process at ${known.record.address} (data dir ${shortId(known.record.instanceId)}, heard from ${Math.round(silentMs)} ms ago); ` +
    `the one at ${report.address} (data dir ${shortId(report.instanceId)}) is refused: give it another --id, or another --data if its data dir is a copy`
  );
}

function foreignVssMessage(report: PeerReportIn, vssId: string): string {
  return (
    `peer ${report.id} at ${report.address} belongs to VSS ${report.vssId}, but this SPM's catalog is VSS ${vssId}: ` +
    "is this SPM running on an empty or wrong catalog? Point the peer at its own SPM, or start this SPM on its own catalog; the peer's data is left as it is"
  );
}
