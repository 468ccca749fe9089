// The dashboard's data side, without Ink: one state object and a pure reducer that folds
// samples from the SPM (`vss.status`), poll errors, key presses, peer-health replies and
// terminal resizes into it. Rates come from counters between polls; the sparkline history keeps
// the last minute; the connection state says whether the numbers are live or stale.
import type { PeerHealth } from "../protocol/peer.ts";
import type { PeerStatus, VssStatus } from "../protocol/spm.ts";
import type { SpmEntry } from "../net/spm-status.ts";

/** One poll's answer: the status, and with several SPMs what part each plays. */
export type Sample = VssStatus & { spms?: SpmEntry[] };

/** How much throughput history the sparkline shows. */
export const historyWindowMs = 60_000;
/** A hard cap on history points, whatever the interval (10 points a second for a minute). */
export const historyPointsMax = 600;

export interface Size {
  columns: number;
  rows: number;
}

export type Connection =
  /** No answer yet since the start. */
  | { state: "connecting"; sinceMs: number }
  | { state: "up"; sinceMs: number }
  /** The last poll failed; `failures` counts consecutive failed polls, `sinceMs` the first of them. */
  | { state: "down"; sinceMs: number; failures: number; error: string };

/** The numbers in the header, each explained where it is computed. */
export interface Rates {
  /**
   * Chunk operations per second at the peers (puts + gets, replicas and healing copies
   * included), summed over the peers that are not down. The SPM derives each peer's rate from
   * the put/get counters in two consecutive heartbeats.
   */
  peerOpsPerSec: number;
  /**
   * Client requests per second through the routers, summed. Derived here from each router's
   * request counter between two polls (see `routerRate`).
   */
  routerRequestsPerSec: number;
  /**
   * Change per second of the bytes stored in the catalog (the sum of the live balls' sizes,
   * counted once, not per replica) between the previous poll and this one: what puts add net of
   * deletes. Negative when deletes outpace puts; 0 on the first sample or after an SPM restart.
   */
  storedBytesPerSec: number;
  /** Bytes per second that healing copies between peers: the SPM's own measurement. */
  healBytesPerSec: number;
  /**
   * Balls put and got per second through all routers, and the chunk bytes they carried from
   * and to clients: the SPM's rates between each router's last two heartbeats, summed.
   */
  putsPerSec: number;
  getsPerSec: number;
  putBytesPerSec: number;
  getBytesPerSec: number;
}

/** One poll's rates, kept for the sparkline. */
export interface HistoryPoint {
  atMs: number;
  opsPerSec: number;
  requestsPerSec: number;
  /** Stored-bytes growth (≥ 0) plus healing: the bytes per second being written. */
  bytesPerSec: number;
}

/** A router's request counter as last seen, stamped with when the router reported it. */
interface RouterCounter {
  requests: number;
  counterAtMs: number;
  requestsPerSec: number;
}

export type PeerDetail =
  | { peerId: string; address: string; phase: "loading" }
  | { peerId: string; address: string; phase: "ok"; health: PeerHealth; atMs: number }
  | { peerId: string; address: string; phase: "error"; error: string; atMs: number };

export interface DashboardState {
  /** The SPM address as given (shown even before it answers). */
  spm: string;
  intervalMs: number;
  size: Size;
  /** The time of the last action: the view's "now" (ages, "last data 12 s ago"). */
  nowMs: number;
  connection: Connection;
  /** The last good answer, peers sorted by id; stale while the connection is down. */
  status: VssStatus | null;
  /** With several SPMs: each one's part (leader, standby, down), from the last good answer; empty with one. */
  spms: SpmEntry[];
  sampleAtMs: number | null;
  rates: Rates;
  /** Requests per second per router address (see `routerRate`). */
  routerRates: Record<string, number>;
  routerCounters: Record<string, RouterCounter>;
  history: HistoryPoint[];
  /** The selected row of the peers table; always a valid index (0 when there are no peers). */
  selected: number;
  selectedId: string | null;
  /** The detail pane, open on the selected peer, or null when closed. */
  detail: PeerDetail | null;
}

export type Action =
  | { type: "sample"; status: Sample }
  | { type: "error"; message: string }
  | { type: "move"; delta: number }
  | { type: "open" }
  | { type: "close" }
  | { type: "peerHealth"; peerId: string; health: PeerHealth }
  | { type: "peerHealthError"; peerId: string; message: string }
  | { type: "resize"; size: Size };

const zeroRates: Rates = { peerOpsPerSec: 0, routerRequestsPerSec: 0, storedBytesPerSec: 0, healBytesPerSec: 0, putsPerSec: 0, getsPerSec: 0, putBytesPerSec: 0, getBytesPerSec: 0 };

export function initialState(options: { spm: string; intervalMs: number; size: Size; nowMs: number }): DashboardState {
  return {
    spm: options.spm,
    intervalMs: options.intervalMs,
    size: options.size,
    nowMs: options.nowMs,
    connection: { state: "connecting", sinceMs: options.nowMs },
    status: null,
    spms: [],
    sampleAtMs: null,
    rates: zeroRates,
    routerRates: {},
    routerCounters: {},
    history: [],
    selected: 0,
    selectedId: null,
    detail: null,
  };
}

/** The reducer: the whole screen follows from the state it returns. */
export function next(state: DashboardState, action: Action, nowMs: number): DashboardState {
  const at = { ...state, nowMs };
  switch (action.type) {
    case "sample":
      return onSample(at, action.status, nowMs);
    case "error":
      return {
        ...at,
        connection:
          state.connection.state === "down"
            ? { ...state.connection, failures: state.connection.failures + 1, error: action.message }
            : { state: "down", sinceMs: nowMs, failures: 1, error: action.message },
      };
    case "move":
      return moveSelection(at, action.delta);
    case "open": {
      const peer = selectedPeer(at);
      return peer ? { ...at, detail: { peerId: peer.id, address: peer.address, phase: "loading" } } : at;
    }
    case "close":
      return { ...at, detail: null };
    case "peerHealth":
      if (state.detail?.peerId !== action.peerId) return at; // a late reply for a pane since closed
      return { ...at, detail: { peerId: state.detail.peerId, address: state.detail.address, phase: "ok", health: action.health, atMs: nowMs } };
    case "peerHealthError":
      if (state.detail?.peerId !== action.peerId) return at;
      return { ...at, detail: { peerId: state.detail.peerId, address: state.detail.address, phase: "error", error: action.message, atMs: nowMs } };
    case "resize":
      return { ...at, size: action.size };
  }
}

function onSample(state: DashboardState, sample: Sample, nowMs: number): DashboardState {
  const { spms, ...raw } = sample;
  const status: VssStatus = { ...raw, peers: [...raw.peers].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) };
  const previous = state.status;
  // Counters restart with the SPM (or a different SPM answered): no deltas across that.
  const sameEpoch = previous !== null && state.sampleAtMs !== null && previous.spm === status.spm && status.uptimeMs >= previous.uptimeMs;
  const elapsedMs = sameEpoch && state.sampleAtMs !== null ? nowMs - state.sampleAtMs : 0;

  const routerCounters: Record<string, RouterCounter> = {};
  const routerRates: Record<string, number> = {};
  for (const router of status.routers) {
    const counter = routerRate(sameEpoch ? state.routerCounters[router.address] : undefined, router, nowMs);
    routerCounters[router.address] = counter;
    routerRates[router.address] = counter.requestsPerSec;
  }

  const rates: Rates = {
    peerOpsPerSec: status.peers.filter((peer) => peer.state !== "down").reduce((sum, peer) => sum + peer.opsPerSec, 0),
    routerRequestsPerSec: Object.values(routerRates).reduce((sum, rate) => sum + rate, 0),
    storedBytesPerSec: previous && elapsedMs > 0 ? ((status.bytes - previous.bytes) * 1000) / elapsedMs : 0,
    healBytesPerSec: status.healing.bytesPerSec,
    putsPerSec: sum(status.routers, (router) => router.putsPerSec),
    getsPerSec: sum(status.routers, (router) => router.getsPerSec),
    putBytesPerSec: sum(status.routers, (router) => router.bytesInPerSec),
    getBytesPerSec: sum(status.routers, (router) => router.bytesOutPerSec),
  };
  const point: HistoryPoint = {
    atMs: nowMs,
    opsPerSec: rates.peerOpsPerSec,
    requestsPerSec: rates.routerRequestsPerSec,
    bytesPerSec: Math.max(0, rates.storedBytesPerSec) + rates.healBytesPerSec,
  };
  const history = [...state.history, point].filter((entry) => entry.atMs > nowMs - historyWindowMs).slice(-historyPointsMax);

  // Keep the same peer selected when the list changes; if it is gone, keep the row in bounds.
  const byId = state.selectedId === null ? -1 : status.peers.findIndex((peer) => peer.id === state.selectedId);
  const selected = byId >= 0 ? byId : clamp(state.selected, 0, Math.max(0, status.peers.length - 1));
  const detailPeer = state.detail ? status.peers.find((peer) => peer.id === state.detail?.peerId) : undefined;

  return {
    ...state,
    connection: state.connection.state === "up" ? state.connection : { state: "up", sinceMs: nowMs },
    status,
    spms: spms ?? [],
    sampleAtMs: nowMs,
    rates,
    routerRates,
    routerCounters,
    history,
    selected,
    selectedId: status.peers[selected]?.id ?? null,
    // The pane follows the peer to a new address; it stays open if the peer left the list.
    detail: state.detail && detailPeer && detailPeer.address !== state.detail.address ? { ...state.detail, address: detailPeer.address } : state.detail,
  };
}

/**
 * A router's request rate from its counter. The SPM relays the counter from the router's last
 * heartbeat, which is `lastHeartbeatAgeMs` old: stamping each value with when the router sent it
 * makes the rate exact even though polls and heartbeats are not in step. With no new heartbeat
 * since the last poll the previous rate stands; on first sight or a counter that went backwards
 * (the router restarted) the SPM's own per-heartbeat rate is used.
 */
export function routerRate(
  previous: RouterCounter | undefined,
  router: { requests: number; requestsPerSec: number; lastHeartbeatAgeMs: number },
  nowMs: number,
): RouterCounter {
  const counterAtMs = nowMs - router.lastHeartbeatAgeMs;
  if (!previous || router.requests < previous.requests) {
    return { requests: router.requests, counterAtMs, requestsPerSec: router.requestsPerSec };
  }
  const elapsedMs = counterAtMs - previous.counterAtMs;
  // Under a tenth of a second apart: the same heartbeat seen twice (clock noise), nothing new.
  if (elapsedMs < 100) return previous;
  return { requests: router.requests, counterAtMs, requestsPerSec: ((router.requests - previous.requests) * 1000) / elapsedMs };
}

function moveSelection(state: DashboardState, delta: number): DashboardState {
  const peers = state.status?.peers ?? [];
  if (peers.length === 0) return { ...state, selected: 0, selectedId: null };
  const selected = clamp(state.selected + delta, 0, peers.length - 1);
  const peer = peers[selected];
  const detail = state.detail && peer && peer.id !== state.detail.peerId ? ({ peerId: peer.id, address: peer.address, phase: "loading" } as const) : state.detail;
  return { ...state, selected, selectedId: peer?.id ?? null, detail };
}

export function selectedPeer(state: DashboardState): PeerStatus | undefined {
  return state.status?.peers[state.selected];
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

const blocks = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"] as const;

/**
 * The last minute as `width` characters, oldest left. Each character covers an equal slice of
 * the minute, aligned to the clock so the line scrolls instead of jittering; its height is the
 * mean of the points in that slice relative to the largest slice. A slice with no point (before
 * the first sample, or while the SPM was unreachable) is a space.
 */
export function sparkline(history: HistoryPoint[], pick: (point: HistoryPoint) => number, nowMs: number, width: number): { line: string; max: number } {
  if (width <= 0) return { line: "", max: 0 };
  const sliceMs = historyWindowMs / width;
  const last = Math.floor(nowMs / sliceMs);
  const sums = new Array<number>(width).fill(0);
  const counts = new Array<number>(width).fill(0);
  for (const point of history) {
    const slot = width - 1 - (last - Math.floor(point.atMs / sliceMs));
    if (slot < 0 || slot >= width) continue;
    sums[slot] = (sums[slot] ?? 0) + pick(point);
    counts[slot] = (counts[slot] ?? 0) + 1;
  }
  const means = sums.map((sum, slot) => ((counts[slot] ?? 0) > 0 ? sum / (counts[slot] ?? 1) : null));
  const max = means.reduce<number>((high, value) => (value !== null && value > high ? value : high), 0);
  const line = means
    .map((value) => {
      if (value === null) return " ";
      if (max <= 0 || value <= 0) return blocks[0];
      const level = Math.min(blocks.length, Math.max(1, Math.ceil((value / max) * blocks.length)));
      return blocks[level - 1];
    })
    .join("");
  return { line, max };
}

/** Healing progress: chunks healed since the SPM started against those plus the queue. */
export function healProgress(status: VssStatus): { done: number; total: number; fraction: number } {
  const done = status.healing.healedChunks;
  const total = done + status.healing.queued;
  return { done, total, fraction: total === 0 ? 1 : done / total };
}

function sum<T>(items: T[], pick: (item: T) => number): number {
  return items.reduce((total, item) => total + pick(item), 0);
}
