// Which panels fit and how many rows each gets, from the terminal size and the data. The
// peers table comes first; then replication, throughput, routers, events, each condensed or
// dropped when the terminal is short, and widened back as rows allow. Pure: tested on its own.
import type { PeerStatus } from "../protocol/spm.ts";
import type { DashboardState } from "./model.ts";
import { age, count, formatBytes, intervalText } from "./format.ts";

export const headerRows = 2;
export const footerRows = 1;
/** Rule with the title, then the column names. */
export const peersOverhead = 2;
const replicationRows = 3;
const eventsRowsMin = 3;
const detailRowsMin = 6;

export interface Layout {
  banner: number;
  /** 1: the SPMs line (several SPMs, the leader and standbys), 0: one SPM, or no room. */
  spms: number;
  /** Peer lines shown (not counting the title and column names) and the first one shown. */
  peerLines: number;
  peerFirst: number;
  /** Whether the table's title rule is shown (dropped first when rows are short). */
  peersTitle: boolean;
  detail: number;
  replication: number;
  /** 0 hidden, 1 one line for all routers, else a title plus one line per router. */
  routers: number;
  /** 0 hidden, 1 ops/s sparkline titled inline, 3 a title plus ops/s and MiB/s. */
  throughput: number;
  /** Rows for the events log, title included (0 hidden). */
  events: number;
}

export function bannerText(state: DashboardState): string | null {
  const connection = state.connection;
  if (connection.state === "up") return certificateBanner(state);
  if (connection.state === "connecting") return `connecting to SPM ${state.spm}…`;
  const stale = state.sampleAtMs === null ? "no data yet" : `showing data from ${age(state.nowMs - state.sampleAtMs)} ago`;
  const polls = connection.failures === 1 ? "1 failed poll" : `${connection.failures} failed polls`;
  // Connection errors name the SPM already ("spm 127.0.0.1:7200 refused…"): say it once.
  const prefix = `spm ${state.spm} `;
  const error = connection.error.startsWith(prefix) ? connection.error.slice(prefix.length) : connection.error;
  return `SPM ${state.spm} unreachable: ${error} — retrying every ${intervalText(state.intervalMs)} (${polls}; ${stale})`;
}

/** The SPM's warnings of certificates about to expire (30 days ahead), shown in the banner while the SPM answers. */
function certificateBanner(state: DashboardState): string | null {
  const warnings = state.status?.certificateWarnings ?? [];
  if (warnings.length === 0) return null;
  const more = warnings.length > 1 ? ` (and ${warnings.length - 1} more: mictlanx status)` : "";
  return `certificate: ${warnings[0]}${more}`;
}

export function computeLayout(state: DashboardState): Layout {
  const { columns, rows } = state.size;
  const banner = bannerRows(bannerText(state), columns);
  let left = Math.max(0, rows - headerRows - footerRows - banner);
  // Who leads among several SPMs comes before the peers, unless it would cost the table its last row.
  const spms = state.spms.length > 1 && left > peersOverhead + 1 ? 1 : 0;
  left -= spms;
  const peers = state.status?.peers ?? [];
  const peerLinesWanted = Math.max(1, peers.length);
  const take = (wanted: number): number => {
    const got = Math.min(wanted, left);
    left -= got;
    return got;
  };

  let peersTitle = true;
  let peerLines: number;
  let detail = 0;
  let replication = 0;
  let routers = 0;
  let throughput = 0;
  let events = 0;

  if (state.detail) {
    peerLines = Math.min(peerLinesWanted, Math.max(1, left - peersOverhead - detailRowsMin));
    left -= peersOverhead + peerLines;
    if (left < detailRowsMin) {
      peersTitle = false; // one more row for the pane
      left += 1;
    }
    detail = Math.max(0, left);
    left = 0;
  } else {
    // Keep room for the replication panel unless the peers need every row.
    peerLines = Math.min(peerLinesWanted, Math.max(1, left - peersOverhead - replicationRows));
    left -= peersOverhead + peerLines;
    if (left < replicationRows) {
      peersTitle = false; // one more row for replication, or for the table itself
      left += 1;
    }
    left = Math.max(0, left);
    // One more line per drain under way, when they fit.
    replication = left >= replicationRows ? take(replicationRows + (state.status?.drains.length ?? 0)) : 0;
    throughput = take(1);
    routers = take(1);
    events = left >= eventsRowsMin ? eventsRowsMin : 0;
    left -= events;
    const routerCount = state.status?.routers.length ?? 0;
    // Widen, in order, while rows remain: routers one per line, throughput in MiB/s too, events.
    if (routers === 1 && routerCount > 0 && left >= routerCount) {
      left -= routerCount;
      routers = 1 + routerCount;
    }
    if (throughput === 1 && left >= 2) {
      left -= 2;
      throughput = 3;
    }
    if (events > 0 || left >= eventsRowsMin) {
      const eventCount = state.status?.events.length ?? 0;
      const wanted = Math.max(eventsRowsMin, 1 + eventCount);
      const extra = Math.min(left, Math.max(0, wanted - events));
      events += extra;
      left -= extra;
    }
  }

  const peerFirst = scrollWindow(state.selected, peers.length, peerLines);
  return { banner, spms, peerLines, peerFirst, peersTitle, detail, replication, routers, throughput, events };
}

function bannerRows(text: string | null, columns: number): number {
  if (text === null) return 0;
  return Math.min(3, Math.max(1, Math.ceil(text.length / Math.max(1, columns))));
}

/** The first row shown so that the selected row is inside a window of `shown` rows. */
export function scrollWindow(selected: number, total: number, shown: number): number {
  if (total <= shown) return 0;
  const first = selected - Math.floor(shown / 2);
  return Math.min(Math.max(0, first), total - shown);
}

export interface PeerColumns {
  marker: number;
  id: number;
  /** 0 when the terminal is too narrow for it. */
  address: number;
  state: number;
  /** The capacity bar and, when it fits, "used / capacity" in text. */
  bar: number;
  usedText: number;
  chunks: number;
  ops: number;
  heartbeat: number;
}

export const barWidthMax = 24;

export function usedText(peer: PeerStatus): string {
  return `${formatBytes(peer.usedBytes)}/${formatBytes(peer.capacityBytes)}`;
}

export function stateText(peer: PeerStatus): string {
  return peer.draining ? `${peer.state}·drain` : peer.state;
}

/** Column widths for the peers table (each includes one space of gutter). */
export function peerColumns(columns: number, peers: PeerStatus[]): PeerColumns {
  const longest = (values: string[], floor: number) => values.reduce((max, value) => Math.max(max, value.length), floor);
  const id = Math.min(16, longest(peers.map((peer) => peer.id), 4)) + 1;
  const wantAddress = Math.min(21, longest(peers.map((peer) => peer.address), 7)) + 1;
  const state = Math.max(7, longest(peers.map(stateText), 5)) + 1;
  const chunks = Math.max(6, longest(peers.map((peer) => count(peer.chunks)), 6)) + 1;
  const ops = 7;
  const heartbeat = 8;
  const marker = 2;
  const fixed = marker + id + state + chunks + ops + heartbeat;
  const address = columns - fixed - wantAddress >= 12 ? wantAddress : 0;
  const rest = Math.max(0, columns - fixed - address);
  const textWidth = longest(peers.map(usedText), 9) + 1;
  const withText = rest - textWidth >= 6;
  const bar = Math.max(0, Math.min(barWidthMax, (withText ? rest - textWidth : rest) - 1));
  return { marker, id, address, state, bar, usedText: withText ? textWidth : 0, chunks, ops, heartbeat };
}

